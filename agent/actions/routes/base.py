"""What every message route shares: the interface a route implements, its declaration for the
registry (`RouteType`), the kinds of message the outbox carries, and how a route is reached for one
dialplan (`Via`).

A route raises `RouteError`; `retryable` says whether trying again later can help.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Generic, Protocol, TypeVar

from agent.dialogue.dialplan import Dialplan
from agent.yamlnode import Node

NO_ROUTE: Final = "none"
"""`sms.route: none`: nothing is sent (the call's actions say so)."""


class MessageKind(StrEnum):
    """What an outbox message is (its `kind` column); a route declares which it carries."""

    ARTISAN = "artisan"
    """The lead card."""
    ARTISAN_UNREACHED = "artisan_unreached"
    """A critical call the artisan did not answer."""
    ARTISAN_MOVED = "artisan_moved"
    ARTISAN_CANCELLED = "artisan_cancelled"
    DIGEST = "digest"
    """The day's normal leads in one message."""
    CALLER = "caller"
    """The caller's confirmation (a mobile number)."""
    TEST = "test"
    """The dashboard's test message to the artisan."""
    EVENT = "event"
    EVENT_CANCELLED = "event_cancelled"
    """Calendar writes (the calendar route)."""


TO_ARTISAN: Final = frozenset({MessageKind.ARTISAN, MessageKind.ARTISAN_UNREACHED, MessageKind.ARTISAN_MOVED,
                               MessageKind.ARTISAN_CANCELLED, MessageKind.DIGEST, MessageKind.TEST})
TO_PHONES: Final = TO_ARTISAN | {MessageKind.CALLER}
"""What an SMS route carries: the artisan's messages and the caller's confirmation."""


class RouteError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Route(Protocol):
    name: str

    async def send(self, key: str, to: str, body: str, kind: str = "") -> None:
        """Deliver `body` to `to` (an E.164 number, a PJSIP/endpoint, an address: what the route's
        `artisan` gave, or the caller's mobile) or raise RouteError. `key` is the message's
        idempotency key: the same key is never a second message where the route allows."""

    async def close(self) -> None:
        """Release what the route holds (connections)."""


Request = Callable[..., Awaitable[Any]]
"""AriClient.request: (method, path, *, params=..., body=...) -> JSON."""


@dataclass(frozen=True)
class Probe:
    """One line of `standardiste doctor` about a route: ok (None: a warning) and what it found."""

    ok: bool | None
    line: str


S = TypeVar("S")


@dataclass(frozen=True)
class RouteType(Generic[S]):
    """A route, declared once: config, the assembly, doctor and the dashboard read this."""

    name: str
    parse: Callable[[Node], S]
    """Its settings from the service config's `sms.<name>` section (errors name file and key)."""
    build: Callable[[S, Request], Route]
    """The route itself (the request reaches Asterisk, for the routes through it)."""
    check: Callable[[S], Awaitable[list[Probe]]]
    """What `standardiste doctor` tries (reach the provider, write the spool...)."""
    describe: Callable[[S], str]
    """Where messages go, for the Réglages page (no secret)."""
    kinds: frozenset[MessageKind] = TO_PHONES
    artisan: Callable[[S, Dialplan], str | None] = lambda _settings, plan: plan.sms.artisan_to
    """Where the artisan's messages go for a dialplan (None: nowhere)."""
    asterisk_modules: tuple[str, ...] = ()
    """Asterisk modules the route needs running (doctor checks them)."""


@dataclass(frozen=True)
class Via:
    """How a dialplan's messages leave: the route's name, the artisan's address on it, what it carries."""

    route: str = NO_ROUTE
    artisan: str | None = None
    kinds: frozenset[MessageKind] = frozenset()

    @property
    def enabled(self) -> bool:
        return self.route != NO_ROUTE


def is_endpoint(to: str) -> bool:
    return to.startswith("PJSIP/")


def national(number: str) -> str:
    """+33612345678 -> 0612345678 (what some French gateways want)."""
    return "0" + number[3:] if number.startswith("+33") else number
