"""Issue 25: the e-mail route, added as one module of the route registry, against a real local SMTP
server (aiosmtpd): the config, the lead card and the digest queued to the artisan's address (never
the caller's confirmation, which needs a mobile), delivered, refused, unreachable, and doctor's check."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from agent.actions import sms as rules
from agent.actions.delivery import Outbox, Sender
from agent.actions.routes import REGISTRY, RouteError
from agent.actions.routes.email import EmailRoute, EmailSettings
from agent.config import parse_config
from agent.store.db import Store
from agent.store.outbox import messages
from agent.yamlnode import ConfigError
from tests.unit.test_sms import FAST, MOBILE, PLAN, _call

ARTISAN = "artisan@plomberie-martin.fr"


class Inbox:
    """An aiosmtpd handler keeping what it receives; `refuse` answers RCPT TO with that reply."""

    def __init__(self) -> None:
        self.mail: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse = ""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.mail.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), _free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        yield inbox, port
    finally:
        server.stop()


def _settings(port: int) -> EmailSettings:
    return EmailSettings(host="127.0.0.1", port=port, security="none", sender="standardiste@plomberie-martin.fr",
                         to=ARTISAN, timeout_s=5.0)


def _config(tmp_path: Path, email_yaml: str) -> object:
    secret = tmp_path / "ari"
    secret.write_text("s3cret-Horse-Battery-42")
    secret.chmod(0o600)
    text = (f"ari:\n  password_file: {secret}\ndialplans:\n  default: plombier\nsms:\n  route: email\n  email:\n"
            + "".join(f"    {line}\n" for line in email_yaml.strip().splitlines()))
    import yaml
    return parse_config(yaml.safe_load(text), "standardiste.yaml")


def test_the_email_route_is_configured_in_its_own_section(tmp_path: Path) -> None:
    pw = tmp_path / "smtp-password"
    pw.write_text("s3cret\n")
    pw.chmod(0o600)
    cfg = _config(tmp_path, f"host: smtp.example.fr\nfrom: box@example.fr\nto: {ARTISAN}\n"
                            f"username: box\npassword_file: {pw}\n")
    settings = cfg.sms.settings  # type: ignore[attr-defined]
    assert settings == EmailSettings(host="smtp.example.fr", sender="box@example.fr", to=ARTISAN, port=587,
                                     security="starttls", username="box", password="s3cret")
    assert cfg.sms.via(PLAN).artisan == ARTISAN  # type: ignore[attr-defined]
    tls = _config(tmp_path, f"host: smtp.example.fr\nsecurity: tls\nfrom: box@example.fr\nto: {ARTISAN}\n")
    assert tls.sms.settings.port == 465  # type: ignore[attr-defined]


@pytest.mark.parametrize(("yaml_text", "where", "expected"), [
    (f"from: box@example.fr\nto: {ARTISAN}\n", "sms.email.host", "expected"),
    ("host: smtp.example.fr\nfrom: box@example.fr\nto: artisan\n", "sms.email.to", "one e-mail address"),
    ("host: smtp.example.fr\nfrom: box@example.fr\nto: a@b.fr\npassword: x\n", "sms.email.password",
     "no SMTP password in the YAML"),
    ("host: smtp.example.fr\nfrom: box@example.fr\nto: a@b.fr\nusername: box\n", "sms.email.password_file",
     "a file holding the SMTP password"),
    ("host: smtp.example.fr\nfrom: box@example.fr\nto: a@b.fr\nsecurity: ssl\n", "sms.email.security",
     "one of starttls, tls, none"),
    ("host: smtp.example.fr\nfrom: box@example.fr\nto: a@b.fr\nport: 99999\n", "sms.email.port", "65535"),
])
def test_a_wrong_email_setting_names_its_key(tmp_path: Path, yaml_text: str, where: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, yaml_text)
    assert f"standardiste.yaml: {where}:" in str(err.value) and expected in str(err.value)


def test_a_lead_card_arrives_by_email(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    route = EmailRoute(_settings(port))
    body = "[URGENT] Zoé Lefèvre, 06 12 34 56 78, 3 rue de la Paix, 06000 Nice : fuite sous l'évier. RDV à convenir"
    asyncio.run(route.send("41:artisan", ARTISAN, body, "artisan"))
    asyncio.run(route.send("41:artisan", ARTISAN, body, "artisan"))  # sent again after a crash
    assert [e for e in inbox.envelopes] == [("standardiste@plomberie-martin.fr", [ARTISAN])] * 2
    first, again = inbox.mail
    assert first["Subject"] == "Nouvelle demande - [URGENT] Zoé Lefèvre, 06 12 34 56 78, 3 rue de la Paix, 06000 Nice"
    assert first.get_payload(decode=True).decode(first.get_content_charset()).strip() == body
    assert first["Message-ID"] == again["Message-ID"]  # the same message to the artisan's mail client
    assert first["Message-ID"] != route.message("42:artisan", ARTISAN, body, "artisan")["Message-ID"]


def test_a_refused_recipient_is_given_up_and_a_busy_server_tried_again(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    route = EmailRoute(_settings(port))
    inbox.refuse = "550 5.1.1 no such user"
    with pytest.raises(RouteError) as refused:
        asyncio.run(route.send("1:artisan", ARTISAN, "carte", "artisan"))
    assert not refused.value.retryable and "550" in str(refused.value)
    inbox.refuse = "451 4.3.0 try again later"
    with pytest.raises(RouteError) as busy:
        asyncio.run(route.send("1:artisan", ARTISAN, "carte", "artisan"))
    assert busy.value.retryable
    with pytest.raises(RouteError) as down:
        asyncio.run(EmailRoute(_settings(_free_port())).send("1:artisan", ARTISAN, "carte", "artisan"))
    assert down.value.retryable and not inbox.mail


def test_the_call_queues_the_card_to_the_artisans_address_and_no_sms_to_the_caller(
        tmp_path: Path, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    settings = _settings(port)
    store = Store(tmp_path / "s.db")
    call_id = _call(store, caller=MOBILE, urgency="urgent")  # a booking from a mobile: SMS routes confirm it
    store.end_call(call_id, "hangup", [], then=Outbox("email", settings=settings).after_call(PLAN, call_id)).result()
    queued = store.read(lambda c: messages(c, call_id))
    assert [(m["kind"], m["route"], m["recipient"]) for m in queued] == [("artisan", "email", ARTISAN)]

    async def deliver() -> None:
        sender = Sender(store, EmailRoute(settings), FAST, [PLAN], settings=settings)
        await sender.tick()
    asyncio.run(deliver())
    assert [m["state"] for m in store.read(lambda c: messages(c, call_id))] == ["sent"]
    assert len(inbox.mail) == 1 and "évier bouché" in inbox.mail[0].get_payload(decode=True).decode("utf-8")
    store.close()


def test_the_days_digest_goes_by_email(tmp_path: Path, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    settings = _settings(port)
    plan = dataclasses.replace(PLAN, sms=dataclasses.replace(PLAN.sms, digest=datetime(2026, 1, 1, 18).time()))
    store = Store(tmp_path / "s.db")
    call_id = _call(store, urgency="normal")
    store.end_call(call_id, "hangup", [], then=Outbox("email", settings=settings).after_call(plan, call_id)).result()
    assert store.read(lambda c: messages(c, call_id)) == []  # a normal lead waits for the digest
    now = datetime.now(plan.timezone)
    if now.hour >= 18:
        now += timedelta(days=1)
    at = now.replace(hour=18, minute=1)
    sender = Sender(store, EmailRoute(settings), FAST, [plan], clock=at.timestamp, settings=settings)
    assert asyncio.run(sender.tick()) == 1
    assert inbox.mail[0]["Subject"].startswith("Demandes du jour - Plomberie Martin")
    assert "1 demande(s) normale(s)" in inbox.mail[0].get_payload(decode=True).decode("utf-8")
    assert not store.submit(lambda c: rules.digest(c, plan, at, Outbox("email", settings=settings).via(plan))).result()
    store.close()


def test_doctor_reaches_the_smtp_server(smtp: tuple[Inbox, int]) -> None:
    _inbox, port = smtp
    check = REGISTRY["email"].check
    ok = asyncio.run(check(_settings(port)))
    assert [p.ok for p in ok] == [True] and f"127.0.0.1:{port} answers (none)" in ok[0].line
    down = asyncio.run(check(_settings(_free_port())))
    assert [p.ok for p in down] == [False] and "unreachable" in down[0].line
