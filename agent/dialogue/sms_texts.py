"""The dialplan's SMS texts (`sms:`): who gets what, the templates, and their length in SMS terms.

A template's placeholders are checked when the dialplan is read; its length with typical values is
measured in GSM 03.38 units (the `gsm0338` codec): over one SMS (160 GSM-7 characters, or 70 when a
character has no GSM-7 form) it is flagged by `check-config`. What is sent is folded to GSM-7 where
a letter has a plain form ("fenêtre" -> "fenetre"), so a caller's accent never turns a message
into three.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import time
from typing import Final

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

from agent.dialogue.text import phone_number
from agent.yamlnode import Node

PLACEHOLDERS: Final = ("business", "name", "address", "phone", "problem", "urgency", "slot", "trade")
GSM_SINGLE: Final = 160
GSM_PART: Final = 153
UCS2_SINGLE: Final = 70
UCS2_PART: Final = 67

DEFAULT_CALLER: Final = "{business} : RDV confirmé {slot}, {address}. Pour le déplacer, rappelez-nous."
DEFAULT_CALLER_CALLBACK: Final = ("{business} : nous avons bien reçu votre demande. L'artisan vous rappelle "
                                  "au plus vite.")
DEFAULT_ARTISAN: Final = "[{urgency}] {name}, {phone}, {address} : {problem}. RDV {slot}"
DEFAULT_ARTISAN_UNREACHED: Final = "URGENT non joint : {name}, {phone}, {address} : {problem}"
DEFAULT_ARTISAN_MOVED: Final = "RDV déplacé au {slot} : {name}, {phone}, {address}"
DEFAULT_ARTISAN_CANCELLED: Final = "RDV annulé ({slot}) : {name}, {phone}, {address}"

TYPICAL: Final = {"business": "", "name": "Jean-Pierre Martin", "address": "12 rue de la République, 06000 Nice",
                  "phone": "06 12 34 56 78", "problem": "fuite d'eau : ça coule sous l'évier depuis ce matin",
                  "urgency": "URGENT", "slot": "mercredi 2 décembre à 14 h 30", "trade": "plombier"}
"""Values of a usual length, to measure a template with (business: the dialplan's own)."""
CUT: Final = {"name": 40, "address": 70, "problem": 70}
"""A value longer than this is cut (with "…") before it goes into a message."""


@dataclass(frozen=True)
class SmsTexts:
    caller: str
    """To the caller after a booking: {slot} is the date and time."""
    caller_callback: str
    """To the caller when the artisan will call back (a message left, a transfer that failed)."""
    artisan: str
    """The lead card, to the artisan."""
    artisan_unreached: str
    """To the artisan at once when a critical call could not be put through."""
    artisan_moved: str
    """To the artisan when a returning caller moved their booking ({slot}: the new one)."""
    artisan_cancelled: str
    """To the artisan when a returning caller cancelled their booking."""
    artisan_to: str | None
    """The artisan's mobile (E.164), or a SIP endpoint ("PJSIP/artisan"); None: no SMS to the artisan."""
    to_caller: bool
    digest: time | None
    """Normal leads go in one SMS at this time of day instead of one each; None: one each."""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Length:
    encoding: str
    """"GSM-7" or "UCS-2"."""
    units: int
    """GSM-7 septets (an escaped character counts two) or UTF-16 units."""
    parts: int


def to_gsm(text: str) -> str:
    """Letters without a GSM-7 form lose their accent ("ê" -> "e", "œ" -> "oe"); the rest is kept."""
    out = []
    for ch in text:
        if _gsm(ch):
            out.append(ch)
            continue
        plain = {"œ": "oe", "Œ": "OE", "’": "'", "‘": "'", "«": '"', "»": '"', "…": "...", "–": "-", "—": "-",
                 "\u00a0": " ", "\u202f": " "}.get(ch)
        if plain is None:
            base = unicodedata.normalize("NFD", ch)[0]
            plain = base if _gsm(base) else ch
        out.append(plain)
    return "".join(out)


def _gsm(ch: str) -> bool:
    try:
        ch.encode("gsm03.38")
    except UnicodeEncodeError:
        return False
    return True


def length(text: str) -> Length:
    try:
        units = len(text.encode("gsm03.38"))
    except UnicodeEncodeError:
        units = len(text.encode("utf-16-le")) // 2
        return Length("UCS-2", units, 1 if units <= UCS2_SINGLE else -(-units // UCS2_PART))
    return Length("GSM-7", units, 1 if units <= GSM_SINGLE else -(-units // GSM_PART))


def render(template: str, values: dict[str, str]) -> str:
    """The template with its placeholders filled (long values cut), folded to GSM-7 where it can be."""
    def value(m: re.Match[str]) -> str:
        key = m.group(1)
        text = " ".join((values.get(key) or "").split()) or "?"
        limit = CUT.get(key)
        return text if limit is None or len(text) <= limit else text[:limit - 1].rstrip() + "…"
    return to_gsm(re.sub(r"{(\w+)}", value, template))


def parse_sms(node: Node, business: str) -> SmsTexts:
    texts = {}
    for key, default in (("caller", DEFAULT_CALLER), ("caller_callback", DEFAULT_CALLER_CALLBACK),
                         ("artisan", DEFAULT_ARTISAN), ("artisan_unreached", DEFAULT_ARTISAN_UNREACHED),
                         ("artisan_moved", DEFAULT_ARTISAN_MOVED), ("artisan_cancelled", DEFAULT_ARTISAN_CANCELLED)):
        text = node.text(key, default)
        for ph in re.findall(r"{([^{}]*)}", text):
            if ph not in PLACEHOLDERS:
                raise node.error(key, "placeholders among " + ", ".join("{" + a + "}" for a in PLACEHOLDERS),
                                 "{" + ph + "}")
        texts[key] = text
    warnings = []
    for key, text in texts.items():
        slot = TYPICAL["slot"] if key.startswith("caller") else "mer 2/12 14h30"  # the artisan's short form
        size = length(render(text, {**TYPICAL, "business": business, "slot": slot}))
        if size.parts > 1:
            limit = GSM_SINGLE if size.encoding == "GSM-7" else UCS2_SINGLE
            warnings.append(f"{node.file}: {node.path}.{key}: about {size.units} "
                            f"{size.encoding} characters with typical values, over one SMS ({limit}): "
                            f"sent as {size.parts} parts")
    to = node.opt_str("artisan_to")
    artisan_to = None
    if to:
        if re.fullmatch(r"PJSIP/[A-Za-z0-9_.+-]+", to):
            artisan_to = to
        else:
            artisan_to = phone_number(to)
            if artisan_to is None:
                raise node.error("artisan_to", "the artisan's mobile number (06…, +336…) or a SIP endpoint "
                                 "(PJSIP/name)", to)
    digest = None
    raw_digest = node.opt_str("digest")
    if raw_digest:
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", raw_digest.strip())
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise node.error("digest", 'a time of day "HH:MM" for one SMS of the day\'s normal leads', raw_digest)
        digest = time(int(m.group(1)), int(m.group(2)))
    return SmsTexts(caller=texts["caller"], caller_callback=texts["caller_callback"], artisan=texts["artisan"],
                    artisan_unreached=texts["artisan_unreached"], artisan_moved=texts["artisan_moved"],
                    artisan_cancelled=texts["artisan_cancelled"], artisan_to=artisan_to,
                    to_caller=node.flag("to_caller", True), digest=digest, warnings=tuple(warnings))
