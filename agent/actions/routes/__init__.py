"""How the outbox's messages leave the box: the registry of routes, one of which the service config
chooses (`sms.route`). Each route is one module that declares itself as a `RouteType` (its settings
parser, its sender, its doctor check, the kinds of message it carries, where the artisan's messages
go); config, the assembly, doctor and the dashboard read this registry.

- `sip`: a SIP MESSAGE through Asterisk to a PJSIP endpoint (a GSM gateway, the artisan's SIP phone);
- `http`: a POST to an SMS provider;
- `spool`: a file in a gammu-smsd or smstools spool directory;
- `email`: the artisan's messages by e-mail (SMTP), where no SMS gateway exists.

A new route: a module beside these with its `TYPE`, and one line in `REGISTRY`.
"""

from __future__ import annotations

from typing import Any, Final

from agent.actions.routes import email, http, sip, spool
from agent.actions.routes.base import (
    NO_ROUTE,
    MessageKind,
    Probe,
    Request,
    Route,
    RouteError,
    RouteType,
    Via,
    is_endpoint,
)
from agent.dialogue.dialplan import Dialplan

REGISTRY: Final[dict[str, RouteType[Any]]] = {t.name: t for t in (sip.TYPE, http.TYPE, spool.TYPE, email.TYPE)}
ROUTE_NAMES: Final = (NO_ROUTE, *REGISTRY)


def via(route: str, settings: object, plan: Dialplan) -> Via:
    """How `plan`'s messages leave through the configured route."""
    kind = REGISTRY.get(route)
    if kind is None:
        return Via()
    return Via(route, kind.artisan(settings, plan), kind.kinds)


__all__ = ["NO_ROUTE", "REGISTRY", "ROUTE_NAMES", "MessageKind", "Probe", "Request", "Route", "RouteError",
           "RouteType", "Via", "is_endpoint", "via"]
