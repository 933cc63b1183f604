"""The `email` route: the artisan's messages (the lead card, "URGENT non joint", a moved or cancelled
booking, the day's digest) by e-mail through an SMTP server, where no SMS gateway exists. The caller's
confirmation needs a mobile, so this route does not carry it.

The message's idempotency key gives it a stable Message-ID: a message sent again after a crash is the
same message to the artisan's mail client, which shows it once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from textwrap import shorten
from typing import Final

import aiosmtplib

from agent.actions.routes.base import TO_ARTISAN, MessageKind, Probe, Request, RouteError, RouteType
from agent.yamlnode import Node

SECURITY: Final = ("starttls", "tls", "none")
DEFAULT_PORT: Final = {"starttls": 587, "tls": 465, "none": 25}
ADDRESS: Final = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+")
SUBJECTS: Final = {MessageKind.ARTISAN: "Nouvelle demande", MessageKind.ARTISAN_UNREACHED: "URGENT : appel non joint",
                   MessageKind.ARTISAN_MOVED: "Rendez-vous déplacé",
                   MessageKind.ARTISAN_CANCELLED: "Rendez-vous annulé", MessageKind.DIGEST: "Demandes du jour",
                   MessageKind.TEST: "Message de test"}


@dataclass(frozen=True)
class EmailSettings:
    host: str
    sender: str
    """The From address (an address the SMTP server lets the box send as)."""
    to: str
    """The artisan's address."""
    port: int = 587
    security: str = "starttls"
    """starttls (port 587), tls (465) or none (a relay on the box or the LAN, port 25)."""
    username: str = ""
    password: str = ""
    timeout_s: float = 20.0


class EmailRoute:
    name = "email"

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    def message(self, key: str, to: str, body: str, kind: str) -> EmailMessage:
        s = self.settings
        msg = EmailMessage()
        msg["From"] = s.sender
        msg["To"] = to
        subject = SUBJECTS.get(kind, "Standardiste")  # type: ignore[call-overload]
        gist = shorten(body.split(" : ")[0], 80, placeholder="…")  # the card's head: urgency, name
        msg["Subject"] = subject if kind == MessageKind.TEST else f"{subject} - {gist}"
        msg["Date"] = formatdate(localtime=True)
        digest = hashlib.sha256(f"{key}|{s.sender}".encode()).hexdigest()[:24]
        msg["Message-ID"] = f"<standardiste.{digest}@{s.sender.rpartition('@')[2] or 'localhost'}>"
        msg.set_content(body)
        return msg

    async def send(self, key: str, to: str, body: str, kind: str = "") -> None:
        s = self.settings
        try:
            await aiosmtplib.send(self.message(key, to, body, kind), hostname=s.host, port=s.port,
                                  use_tls=s.security == "tls", start_tls=True if s.security == "starttls" else False,
                                  username=s.username or None, password=s.password or None, timeout=s.timeout_s)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise RouteError(f"SMTP recipient refused ({', '.join(map(str, codes))})",
                             retryable=all(c < 500 for c in codes)) from None
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx is a refusal for good (a bad login, a sender the server will not relay for).
            raise RouteError(f"SMTP {exc.code}", retryable=exc.code < 500) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RouteError(f"SMTP: {type(exc).__name__}", retryable=True) from None

    async def close(self) -> None:
        pass  # one connection per message: a few a day


def _address(n: Node, key: str) -> str:
    value = n.text(key, required=True)
    if not ADDRESS.fullmatch(value):
        raise n.error(key, "one e-mail address, e.g. artisan@example.fr", value)
    return value


def parse(n: Node) -> EmailSettings:
    host = n.text("host", required=True)
    security = n.choice("security", EmailSettings.security, SECURITY)
    username = n.text("username", "")
    password = n.secret("SMTP password", "password")
    if username and not password:
        raise n.error("password_file", "a file holding the SMTP password (or password_env), with username set")
    settings = EmailSettings(host=host, sender=_address(n, "from"), to=_address(n, "to"),
                             port=n.integer("port", DEFAULT_PORT[security], lo=1, hi=65535), security=security,
                             username=username, password=password,
                             timeout_s=n.number("timeout_seconds", EmailSettings.timeout_s, lo=1.0, hi=120.0))
    n.close()
    return settings


async def check(settings: EmailSettings) -> list[Probe]:
    s = settings
    where = f"SMTP server {s.host}:{s.port}"
    smtp = aiosmtplib.SMTP(hostname=s.host, port=s.port, use_tls=s.security == "tls",
                           start_tls=True if s.security == "starttls" else False, timeout=min(s.timeout_s, 10.0))
    try:
        await smtp.connect()
        if s.username:
            await smtp.login(s.username, s.password)
        await smtp.quit()
    except aiosmtplib.SMTPAuthenticationError:
        return [Probe(False, f"{where} refused the login: check sms.email.username and password_file")]
    except (aiosmtplib.SMTPException, OSError) as exc:
        return [Probe(False, f"{where} unreachable ({type(exc).__name__}): check sms.email host, port, security")]
    out = [Probe(True, f"{where} answers ({s.security}{', login accepted' if s.username else ''})")]
    if s.security == "none" and s.username:
        out.append(Probe(None, f"{where}: the SMTP password goes in clear (security: none); use starttls or tls"))
    return out


def _build(settings: EmailSettings, _request: Request) -> EmailRoute:
    return EmailRoute(settings)


TYPE = RouteType(name="email", parse=parse, build=_build, check=check, kinds=TO_ARTISAN,
                 describe=lambda s: f"{s.to} par {s.host}", artisan=lambda s, _plan: s.to)
