"""Dialplans: one YAML per business, validated once into frozen objects.

A dialplan names its trade; the trade's built-in profile (agent/dialogue/profiles/<trade>.yaml)
brings the vocabulary, typical problems, emergency triggers and average basket, and the dialplan
adds the business, its hours, questions, rules and texts. Every error names the file, the key path
and what was expected; `standardiste check-config` runs this same code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.dialogue.places import DEPARTMENT, communes
from agent.dialogue.profiles import (
    TradeProfile,
    Trigger,
    load_profile,
    parse_trigger,
    phrases_at,
    shared_rules,
)
from agent.dialogue.sms_texts import SmsTexts, parse_sms
from agent.dialogue.state import Action, DialplanMode, TransferMode, TransferWhen
from agent.dialogue.text import fold
from agent.dialogue.times import HOLIDAY_REGIONS, public_holidays
from agent.yamlnode import Node, read_yaml

TRADES: Final = ("plombier", "electricien", "serrurier", "chauffagiste", "couvreur", "vitrier", "paysagiste",
                 "nettoyage")
DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LEAD_FIELDS: Final = ("problem", "name", "address", "phone")
AI_DISCLOSURE: Final = ("assistant automatique", "assistant virtuel", "intelligence artificielle",
                        "agent conversationnel", "repondeur automatique", "assistante automatique",
                        "assistante virtuelle")
"""One of these must be in the greeting: the caller is told a machine answers (EU AI Act art. 50)."""
MAX_GREETING_CHARS: Final = 400
"""About 25 s spoken: a caller waits through the greeting before saying anything."""
MAX_RECORDING_DAYS: Final = 183
"""CNIL: call recordings are kept six months at most."""


@dataclass(frozen=True)
class Field:
    name: str
    question: str
    confirm: bool


@dataclass(frozen=True)
class Transfer:
    when: TransferWhen
    """critical: only critical emergencies; urgent: urgent ones too; never."""
    targets: tuple[str, ...]
    """Asterisk dial strings tried in order (PJSIP/artisan, PJSIP/0612345678@trunk)."""
    mode: TransferMode
    ring_timeout_s: int
    key_timeout_s: int
    """After the whisper, how long the artisan has to press 1 (take the call) or 2 (refuse), seconds."""
    on_failure: Action
    """MESSAGE: take a voice message; BOOKING: go on to offer an appointment."""
    after_hours: bool
    """Transfer critical emergencies outside opening hours too."""
    on_request: bool
    """Put through a caller who asks for the artisan by name or role."""

    @property
    def endpoint(self) -> str:
        return self.targets[0]


@dataclass(frozen=True)
class Booking:
    enabled: bool
    duration_min: int
    urgent_duration_min: int
    buffer_min: int
    min_notice_min: int
    horizon_days: int
    slots_offered: int
    hours: dict[int, tuple[tuple[time, time], ...]]
    """Weekday (0 = Monday) -> working windows for appointments."""


@dataclass(frozen=True)
class Faq:
    keywords: tuple[str, ...]
    answer: str


@dataclass(frozen=True)
class Dialplan:
    file: str
    business: str
    trade: TradeProfile
    area: tuple[str, ...]
    timezone: ZoneInfo
    hours: dict[int, tuple[tuple[time, time], ...]]
    holidays: frozenset[date]
    greeting: str
    fields: tuple[Field, ...]
    extra_triggers: tuple[Trigger, ...]
    transfer: Transfer
    booking: Booking
    after_hours_action: Action
    sms: SmsTexts
    faq: tuple[Faq, ...]
    recordings_days: int
    leads_days: int
    max_retries: int
    mode: DialplanMode = DialplanMode.CONVERSATION

    @property
    def triggers(self) -> tuple[Trigger, ...]:
        return self.extra_triggers + self.trade.emergencies + shared_rules().emergencies


# --- helpers -------------------------------------------------------------------------------------
def _hours(node: Node, key: str) -> dict[int, tuple[tuple[time, time], ...]]:
    hours = node.node(key, required=True)
    out: dict[int, tuple[tuple[time, time], ...]] = {}
    for day in DAYS:
        raw = hours.raw(day, [])
        if not isinstance(raw, list):
            raise hours.error(day, 'a list of "HH:MM-HH:MM" ranges (empty when closed)', raw)
        windows = []
        for i, item in enumerate(raw):
            m = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", str(item).strip())
            if not m or int(m.group(1)) > 23 or int(m.group(3)) > 24 or int(m.group(2)) > 59 or int(m.group(4)) > 59:
                raise hours.error(f"{day}[{i}]", 'a range "HH:MM-HH:MM" (24 h clock)', item)
            start = time(int(m.group(1)), int(m.group(2)))
            end = time(23, 59) if int(m.group(3)) == 24 else time(int(m.group(3)), int(m.group(4)))
            if end <= start:
                raise hours.error(f"{day}[{i}]", "a range that ends after it starts", item)
            windows.append((start, end))
        out[DAYS.index(day)] = tuple(sorted(windows))
    hours.close()
    if not any(out.values()):
        raise node.error(key, "at least one opening window in the week")
    return out


DEFAULT_FIELDS: Final = (
    Field("problem", "Pouvez-vous me décrire votre problème ?", False),
    Field("name", "Quel est votre nom, s'il vous plaît ?", False),
    Field("address", "À quelle adresse faut-il intervenir ? Le numéro, la rue et la ville.", True),
    Field("phone", "À quel numéro l'artisan peut-il vous rappeler ?", True),
)

def parse_dialplan(data: Any, file: str) -> Dialplan:
    root = Node(file, "", data)
    biz = root.node("business", required=True)
    name = biz.text("name", required=True)
    trade = biz.choice("trade", "", TRADES)
    area = phrases_at(biz, "area", required=False)
    for i, place in enumerate(area):
        if not DEPARTMENT.fullmatch(place) and communes().named(fold(place)) is None:
            raise biz.error(f"area[{i}]", "a department code (06, 2A, 974) or the name of a French town", place)
    tz_name = biz.text("timezone", "Europe/Paris")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise biz.error("timezone", "an IANA time zone such as Europe/Paris", tz_name) from None
    hours = _hours(biz, "hours")
    region = biz.choice("public_holidays", "france", tuple(HOLIDAY_REGIONS))
    holidays_raw = biz.raw("holidays", [])
    if not isinstance(holidays_raw, list):
        raise biz.error("holidays", "a list of dates YYYY-MM-DD", holidays_raw)
    holidays = set(public_holidays(region, range(date.today().year - 1, date.today().year + 3)))
    for i, h in enumerate(holidays_raw):
        try:
            holidays.add(h if isinstance(h, date) else date.fromisoformat(str(h)))
        except ValueError:
            raise biz.error(f"holidays[{i}]", "a date YYYY-MM-DD", h) from None
    biz.close()

    # Short: a stressed caller wants to say what is wrong (4.5 s to the question, was 8.6 s).
    greeting = root.text("greeting", "Bonjour, {business}. Je suis l'assistant automatique de l'entreprise.",
                         max_chars=MAX_GREETING_CHARS)
    if not any(p in fold(greeting) for p in AI_DISCLOSURE):
        raise root.error("greeting", "a greeting that says an automated assistant answers (EU AI Act art. 50), "
                         "e.g. \"Je suis l'assistant automatique de l'entreprise\"", greeting)
    _placeholders(root, "greeting", greeting, ("business",))
    greeting = greeting.replace("{business}", name)

    fields: tuple[Field, ...] = DEFAULT_FIELDS
    if root.has("fields"):
        raw_fields = root.raw("fields")
        if not isinstance(raw_fields, list) or not raw_fields:
            raise root.error("fields", "a non-empty list of lead fields", raw_fields)
        parsed: list[Field] = []
        for i, raw in enumerate(raw_fields):
            f = Node(file, f"fields[{i}]", raw)
            fname = f.choice("name", "", LEAD_FIELDS)
            if any(p.name == fname for p in parsed):
                raise f.error("name", "each field once", fname)
            parsed.append(Field(fname, f.text("question", required=True), f.flag("confirm", fname in ("address",))))
            f.close()
        fields = tuple(parsed)

    urgency = root.node("urgency")
    extra = tuple(parse_trigger(Node(file, f"urgency.triggers[{i}]", raw))
                  for i, raw in enumerate(urgency.raw("triggers", []) or []))
    urgency.close()

    transfer = _transfer(root.node("transfer"))

    bk = root.node("booking")
    booking = Booking(enabled=bk.flag("enabled", True), duration_min=bk.integer("duration_minutes", 60, lo=15, hi=480),
                      urgent_duration_min=bk.integer("urgent_duration_minutes", 90, lo=15, hi=480),
                      buffer_min=bk.integer("buffer_minutes", 30, lo=0, hi=240),
                      min_notice_min=bk.integer("min_notice_minutes", 90, lo=0, hi=2880),
                      horizon_days=bk.integer("horizon_days", 14, lo=1, hi=90),
                      slots_offered=bk.integer("slots_offered", 2, lo=1, hi=4),
                      hours=_hours(bk, "hours") if bk.has("hours") else hours)
    bk.close()

    after = root.node("after_hours")
    after_action = Action(after.choice("action", "booking", ("booking", "message")))
    after.close()

    sms_node = root.node("sms")
    sms = parse_sms(sms_node, name)
    sms_node.close()

    faq = []
    raw_faq = root.raw("faq", []) or []
    if not isinstance(raw_faq, list):
        raise root.error("faq", "a list of {keywords, answer}", raw_faq)
    for i, raw in enumerate(raw_faq):
        q = Node(file, f"faq[{i}]", raw)
        faq.append(Faq(phrases_at(q, "keywords"), q.text("answer", required=True)))
        q.close()

    ret = root.node("retention")
    recordings = ret.integer("recordings_days", 90, lo=0, hi=MAX_RECORDING_DAYS)
    leads = ret.integer("leads_days", 1095, lo=1, hi=1095)
    ret.close()
    max_retries = root.integer("max_retries", 2, lo=1, hi=5)
    mode = DialplanMode(root.choice("mode", "conversation", tuple(m.value for m in DialplanMode)))
    root.close()
    return Dialplan(file=file, business=name, trade=load_profile(trade), area=area, timezone=tz, hours=hours,
                    holidays=frozenset(holidays), greeting=greeting, fields=fields, extra_triggers=extra,
                    transfer=transfer, booking=booking, after_hours_action=after_action, sms=sms, faq=tuple(faq),
                    recordings_days=recordings, leads_days=leads, max_retries=max_retries, mode=mode)


DIAL_STRING: Final = re.compile(r"(PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.+@-]+")
DIAL_STRING_EXPECTED: Final = "an Asterisk dial string such as PJSIP/artisan or PJSIP/0612345678@trunk"


def _transfer(tr: Node) -> Transfer:
    if tr.has("endpoint") and tr.has("targets"):
        raise tr.error("endpoint", "either endpoint (one target) or targets (a list), not both")
    if tr.has("targets"):
        targets = phrases_at(tr, "targets")
        for i, t in enumerate(targets):
            if not DIAL_STRING.fullmatch(t):
                raise tr.error(f"targets[{i}]", DIAL_STRING_EXPECTED, t)
    else:
        endpoint = tr.text("endpoint", "PJSIP/artisan")
        if not DIAL_STRING.fullmatch(endpoint):
            raise tr.error("endpoint", DIAL_STRING_EXPECTED, endpoint)
        targets = (endpoint,)
    transfer = Transfer(when=TransferWhen(tr.choice("when", "critical", tuple(w.value for w in TransferWhen))),
                        targets=targets,
                        mode=TransferMode(tr.choice("mode", "attended", tuple(m.value for m in TransferMode))),
                        ring_timeout_s=tr.integer("ring_timeout", 25, lo=5, hi=120),
                        key_timeout_s=tr.integer("key_timeout", 10, lo=2, hi=60),
                        on_failure=Action(tr.choice("on_failure", "message", ("message", "booking"))),
                        after_hours=tr.flag("after_hours", True), on_request=tr.flag("on_request", False))
    tr.close()
    return transfer


def _placeholders(node: Node, key: str, text: str, allowed: tuple[str, ...]) -> None:
    for ph in re.findall(r"{([^{}]*)}", text):
        if ph not in allowed:
            raise node.error(key, "placeholders among " + ", ".join("{" + a + "}" for a in allowed), "{" + ph + "}")


def load_dialplan(path: str | Path) -> Dialplan:
    return parse_dialplan(read_yaml(path), str(path))


def builtin_dialplan(trade: str) -> Dialplan:
    """A ready dialplan for a trade's built-in profile (the examples in agent/dialogue/dialplans/)."""
    return load_dialplan(Path(__file__).parent / "dialplans" / f"{trade}.yaml")
