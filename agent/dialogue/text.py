"""Text as the rules see it: folded words, their lemmas, numbers as digits, phone numbers.

Everything works on typed text and on what Vosk prints (lower case, no punctuation, numbers as
words). Lemmas come from simplemma (French data bundled), number words from text2num, phone
numbers from phonenumbers: the hand-made equivalents are gone.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import phonenumbers
import simplemma
from text_to_num import alpha2digit


def _lower(text: str) -> str:
    return text.lower().replace("œ", "oe").replace("æ", "ae")


def fold(text: str) -> str:
    """Lower case, no accents, apostrophes and dashes as spaces: what patterns match against."""
    text = unicodedata.normalize("NFKD", _lower(text))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[’'`]", " ", text)
    text = re.sub(r"[^a-z0-9+ ]", " ", text.replace("-", " "))
    return " ".join(text.split())


def has_any(folded: str, phrases: list[str] | tuple[str, ...]) -> bool:
    """Whole-word (or whole-phrase) match of any folded phrase; a trailing * matches a prefix."""
    return first_match(folded, phrases) is not None


def first_match(folded: str, phrases: list[str] | tuple[str, ...]) -> tuple[int, int] | None:
    """(position, -length) of the earliest, then longest, literal match of any phrase, or None."""
    best = None
    for phrase in phrases:
        p = fold(phrase.rstrip("*"))
        m = re.search(r"\b" + re.escape(p) + ("" if phrase.endswith("*") else r"\b"), folded)
        if m and (best is None or (m.start(), -len(p)) < best):
            best = (m.start(), -len(p))
    return best


# --- lemmas -----------------------------------------------------------------------------------
ENDINGS: Final = ("ees", "es", "ee", "er", "e", "s", "x")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """One key for every inflection of a word: simplemma's lemma, folded, without the endings
    of gender, number and the infinitive ("envolées", "s'envoler" -> "envol")."""
    lemma = fold(simplemma.lemmatize(word, lang="fr")) or fold(word)
    lemma = lemma.split()[0] if lemma else lemma
    for end in ENDINGS:
        if len(lemma) > 4 and lemma.endswith(end) and len(lemma) - len(end) >= 3:
            return lemma[: -len(end)]
    return lemma


COMPOUNDS: Final = re.compile(r"\b(grille|s[eè]che|lave|chauffe|porte|essuie|presse|ouvre|coupe)[- ]"
                              r"(pain|cheveux|linge|vaisselle|plat|serviettes?|agrumes|boite|circuit)\b")
"""Compound nouns kept whole, so their parts trigger nothing ("grille-pain" is not "grillé")."""


def words(text: str) -> list[str]:
    """The words of `text` with their accents (lower case), split as `fold` splits them (compound
    nouns such as "grille-pain" kept as one word)."""
    t = COMPOUNDS.sub(r"x\1\2", _lower(text))  # "xgrillepain": no trigger word starts like it
    t = re.sub(r"[’'`]", " ", t).replace("-", " ")
    return [w for w in re.split(r"[^\w+]+", t) if w]


NEGATIONS: Final = frozenset({"ne", "n", "pas", "rien", "jamais", "aucun", "aucune", "sans"})
PHRASE_STOP: Final = frozenset({"le", "la", "les", "l", "de", "d", "du", "des", "un", "une", "a", "au", "aux", "en",
                                "et", "y", "s", "se", "qu", "que", "qui", "il", "elle", "on", "c", "j", "je", "ca",
                                "est", "dans", "par"})


@dataclass(frozen=True)
class Phrase:
    """A trigger phrase: its content words as stems (a trailing * on a word matches any ending),
    found in any order within a few words of each other, not under a negation."""

    keys: tuple[tuple[str, bool, str], ...]
    """(stem, prefix match, folded word) of each word that counts."""
    negative: bool
    """The phrase itself holds a negation ("ne s'arrête pas"): it is never negated."""
    ordered: bool = False
    """A phrase that starts with "plus"/"pas" ("plus d'eau") is found in its order only
    ("l'eau ne descend plus" is not "plus d'eau")."""
    contiguous: bool = False

    @staticmethod
    def of(text: str) -> Phrase:
        keys = []
        every = []
        for raw in text.split():
            prefix = raw.endswith("*")
            for w in words(raw.rstrip("*")):
                every.append((stem(w), prefix, fold(w)))
                if fold(w) not in PHRASE_STOP:
                    keys.append((stem(w), prefix, fold(w)))
        contiguous = len(keys) < 2 < len(every) + 1
        if contiguous:
            keys = every  # "à la porte" is not "porte": such a phrase is matched word for word
        negative = any(fold(w.rstrip("*")) in NEGATIONS | {"plus"} for w in words(text))
        return Phrase(tuple(keys) or ((stem(text), False, fold(text)),), negative,
                      ordered=bool(words(text)) and fold(words(text)[0]) in NEGATIONS | {"plus"},
                      contiguous=contiguous)

    def find(self, stems: list[str], folded: list[str]) -> int | None:
        """Position of the first match in a text's stems (and its folded words), or None."""
        span = len(self.keys) + 3
        if self.contiguous:
            n = len(self.keys)
            return next((i for i in range(len(stems) - n + 1)
                         if all(_key_matches(k, stems[i + j], folded[i + j]) for j, k in enumerate(self.keys))), None)
        for i, s in enumerate(stems):
            if not _key_matches(self.keys[0], s, folded[i]):
                continue
            window = range(i if self.ordered else max(0, i - span + 1), min(len(stems), i + span))
            if all(any(_key_matches(k, stems[j], folded[j]) for j in window) for k in self.keys[1:]):
                start = min(j for j in window if any(_key_matches(k, stems[j], folded[j]) for k in self.keys))
                if not self.negative and NEGATIONS & set(folded[max(0, start - 2):start]):
                    continue
                return start
        return None


def _key_matches(key: tuple[str, bool, str], stem_: str, folded: str) -> bool:
    k, prefix, word = key
    if prefix:
        return folded.startswith(word) or stem_ == k or stem_.startswith(word)
    return stem_ == k or folded == word or stem_ == word or folded == k


# --- numbers and phone numbers -------------------------------------------------------------------
def digits(text: str) -> str:
    """Number words as digits ("zéro six douze" -> "06 12", "quinze rue" -> "15 rue"), folded."""
    t = re.sub(r"\bzero\b", "zéro", _lower(text))
    t = re.sub(r"(\d)\s*-\s*(\d)", r"\1 \2", t)
    try:
        t = alpha2digit(t, "fr", threshold=0)
    except (ValueError, IndexError):  # text2num is strict on odd input; keep the words then
        pass
    return fold(t)


PHONE_RUN: Final = re.compile(r"(?:\+33|0033|33|0)(?: ?\d){9}")
FOREIGN_RUN: Final = re.compile(r"\+(?!33)(?: ?\d){7,15}")
"""A number with another country code ("plus trente-deux ...", "00 41 ..."): E.164 allows 15 digits."""
MIN_FOREIGN_DIGITS: Final = 8


def phone_number(text: str) -> str | None:
    """A phone number said as digits, pairs or words, as E.164 (+33...): French, or foreign when said
    with its country code (a Belgian or Swiss caller, a Monaco mobile at a Nice artisan's)."""
    f = re.sub(r"\bplus ?(?=\d)", "+", digits(text)).replace("+ ", "+")
    f = re.sub(r"(?<![\d+])(?<!\d )00 ?(?=[1-9])", "+", f)  # "00 32 ..." (not the 00 of "06 00 12 ...")
    foreign = [m.span() for m in FOREIGN_RUN.finditer(f)]
    for start, end in foreign:
        run = f[start + 1:end].replace(" ", "")
        for n in range(len(run), MIN_FOREIGN_DIGITS - 1, -1):  # words said after it may have joined the run
            try:
                number = phonenumbers.parse("+" + run[:n], None)
            except phonenumbers.NumberParseException:
                break
            if phonenumbers.is_valid_number(number):
                return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    for m in PHONE_RUN.finditer(f):
        if any(start <= m.start() < end for start, end in foreign):
            continue  # the national part of a foreign number heard wrong is no French number
        run = m.group(0).replace(" ", "")
        try:
            number = phonenumbers.parse(run, "FR")
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


E164_MAX_CHARS: Final = 16
"""+ and at most 15 digits."""
MAX_CALLER_ID_CHARS: Final = 20
"""An E.164 number is at most 16 characters; a presented caller ID longer than this is not one."""


def caller_id_number(raw: str) -> str | None:
    """The caller ID a trunk presented, as E.164, when the whole of it is one valid phone number;
    None otherwise (withheld, a name, 200 characters of digits)."""
    text = raw.strip()
    if not text or len(text) > MAX_CALLER_ID_CHARS:
        return None
    try:
        number = phonenumbers.parse(text, "FR")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # libphonenumber takes +49 30 and 14 digits for a valid Berlin number: 16 digits, past E.164's 15.
    return e164 if len(e164) <= E164_MAX_CHARS else None


def format_phone(e164: str) -> str:
    """+33612345678 -> 06 12 34 56 78 (how it is read back to a caller); a foreign number keeps its
    country code (+32 470 12 34 56)."""
    try:
        number = phonenumbers.parse(e164, "FR")
    except phonenumbers.NumberParseException:
        return e164
    national = number.country_code == phonenumbers.country_code_for_region("FR")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL if national
                                      else phonenumbers.PhoneNumberFormat.INTERNATIONAL)


FRENCH_REGIONS: Final = frozenset({"FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "NC", "PF", "WF"})
"""France and its overseas territories (their mobiles are French mobiles too: +590 690, +262 692...)."""


def is_mobile(e164: str | None) -> bool:
    """A French mobile (06/07, and the overseas territories'): the only numbers an SMS is sent to;
    never a foreign mobile (costly, and a way to make the box send SMS abroad)."""
    if not e164:
        return False
    try:
        number = phonenumbers.parse(e164, "FR")
    except phonenumbers.NumberParseException:
        return False
    return (phonenumbers.region_code_for_number(number) in FRENCH_REGIONS
            and phonenumbers.number_type(number) in (phonenumbers.PhoneNumberType.MOBILE,
                                                     phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE))


# --- the caller's own spelling ---------------------------------------------------------------------
LOWER_WORDS: Final = frozenset({"de", "du", "des", "le", "la", "les", "d", "l", "van", "von", "da", "di", "el",
                                "sur", "sous", "en", "et", "aux", "au"})


def _cap(word: str) -> str:
    return "-".join(p[:1].upper() + p[1:] for p in word.split("-"))


def _fold_char(c: str) -> str:
    d = unicodedata.normalize("NFKD", _lower(c))
    d = "".join(x for x in d if not unicodedata.combining(x))
    if d in ("'", "’", "`"):
        return " "
    return d if re.fullmatch(r"[a-z0-9+]*", d) else " "


def original_case(text: str, folded_words: str, *, first_upper: bool = True) -> str:
    """The words of `text` that fold to `folded_words`, with their accents, hyphens and case
    (title case if they were all lower case, as ASR writes them; particles stay lower case)."""
    chars: list[str] = []
    index: list[int] = []
    for i, c in enumerate(text):
        for fc in _fold_char(c):
            chars.append(fc)
            index.append(i)
    folded = "".join(chars)
    pattern = r"(?<![a-z0-9])" + r"\s+".join(re.escape(w) for w in folded_words.split()) + r"(?![a-z0-9])"
    m = re.search(pattern, folded)
    if not m:
        return " ".join(_cap(w) if w not in LOWER_WORDS else w for w in folded_words.split())
    chunk = text[index[m.start()]:index[m.end() - 1] + 1]
    if any(c.isupper() for c in chunk):
        return chunk
    parts = re.split(r"(\s+)", chunk)
    out = "".join(w if w.isspace() or fold(w) in LOWER_WORDS else _cap(w) for w in parts)
    return out[:1].upper() + out[1:] if first_upper else out


def stems_of(text: str) -> tuple[list[str], list[str]]:
    """(stems, folded words) of a text, as `Phrase.find` takes them."""
    ws = words(text)
    return [stem(w) for w in ws], [fold(w) for w in ws]
