"""The `sip` route: ARI `PUT /endpoints/sendMessage`, a SIP MESSAGE through Asterisk to a PJSIP
endpoint (a GSM gateway, or the artisan's SIP phone)."""

from __future__ import annotations

from dataclasses import dataclass

from agent.actions.routes.base import Probe, Request, RouteError, RouteType, is_endpoint, national
from agent.yamlnode import Node


@dataclass(frozen=True)
class SipSettings:
    to: str = "pjsip:{number}"
    """Where a number goes: "pjsip:gsm-gateway/sip:{number}@192.168.1.50" for a GSM gateway."""
    sender: str = "sip:standardiste@localhost"


class SipRoute:
    name = "sip"

    def __init__(self, settings: SipSettings, request: Request) -> None:
        self.settings = settings
        self._request = request

    async def send(self, key: str, to: str, body: str, kind: str = "") -> None:
        from agent.telephony.ari import AriError

        dest = f"pjsip:{to.removeprefix('PJSIP/')}" if is_endpoint(to) else self.settings.to.format(
            number=to, national=national(to))
        try:
            await self._request("PUT", "/endpoints/sendMessage",
                                params={"to": dest, "from": self.settings.sender, "body": body})
        except AriError as exc:
            # 404: the endpoint is unknown or has no contact (phone not registered): may come back.
            raise RouteError(f"ARI sendMessage: {exc.status or 'unreachable'}",
                             retryable=exc.retryable or exc.status in (404, 503)) from None

    async def close(self) -> None:
        pass  # the AriClient is the service's own


def parse(n: Node) -> SipSettings:
    to = n.text("to", SipSettings.to)
    if not to.startswith("pjsip:"):
        raise n.error("to", 'a PJSIP message destination, e.g. "pjsip:gsm-gateway/sip:{number}@192.168.1.50"', to)
    settings = SipSettings(to=to, sender=n.text("from", SipSettings.sender))
    n.close()
    return settings


async def check(_settings: SipSettings) -> list[Probe]:
    return [Probe(True, "SMS through Asterisk (sip route): see the modules line")]


TYPE = RouteType(name="sip", parse=parse, build=SipRoute, check=check, describe=lambda s: s.to,
                 asterisk_modules=("res_pjsip_messaging",))
