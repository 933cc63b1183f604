"""Addresses and French towns, checked against the official list of communes.

The list (agent/dialogue/data/communes.tsv.gz) is Etalab's, converted by scripts/build_communes.py:
towns of any length are recognised, a postcode is checked against its town, a town heard
approximately is matched to the nearest real one, and a dialplan's `area:` may name towns or
departments.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

from rapidfuzz import fuzz, process

from agent.dialogue.text import digits, fold, original_case

COMMUNES_FILE: Final = Path(__file__).parent / "data" / "communes.tsv.gz"
FUZZY_CUTOFF: Final = 88.0
"""rapidfuzz ratio (0-100) a heard town must reach to be taken for a real one."""
BIG_TOWN: Final = 20000
"""A town named after a street without a pause or "à" is taken only when it is this big, or in the area."""


@dataclass(frozen=True)
class Commune:
    name: str
    department: str
    postcodes: tuple[str, ...]
    population: int


class Communes:
    def __init__(self, rows: list[tuple[str, Commune]]) -> None:
        """`rows`: (the name folded as `fold` does, the commune)."""
        self.by_name: dict[str, list[Commune]] = {}
        self.by_postcode: dict[str, list[Commune]] = {}
        for folded, c in rows:
            self.by_name.setdefault(folded, []).append(c)
            for pc in c.postcodes:
                self.by_postcode.setdefault(pc, []).append(c)
        self.names = list(self.by_name)
        self.max_words = max(len(n.split()) for n in self.names)

    def named(self, folded: str, departments: Sequence[str] = ()) -> Commune | None:
        """The commune of that exact (folded) name: in the given departments first, else the largest."""
        found = self.by_name.get(folded)
        if not found:
            return None
        return max(found, key=lambda c: (c.department in departments, c.population))

    def nearest(self, folded: str, departments: Sequence[str] = ()) -> Commune | None:
        """The commune whose name is nearest to what was heard, when near enough."""
        if len(folded) < 4:
            return None
        best = process.extractOne(folded, self.names, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
        return self.named(best[0], departments) if best else None


@lru_cache(maxsize=1)
def communes() -> Communes:
    rows = []
    with gzip.open(COMMUNES_FILE, "rt", encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, folded, dept, postcodes, population = line.rstrip("\n").split("\t")
            rows.append((folded, Commune(name, dept, tuple(postcodes.split(",")), int(population))))
    return Communes(rows)


# --- areas ---------------------------------------------------------------------------------------
DEPARTMENT: Final = re.compile(r"\d[0-9AB]|\d{3}")


def departments(area: Sequence[str]) -> tuple[str, ...]:
    return tuple(a for a in area if DEPARTMENT.fullmatch(a))


def in_area(commune: Commune | None, area: Sequence[str]) -> bool:
    """Whether a town is in the dialplan's area (departments or towns); an unknown town is."""
    if commune is None or not area:
        return True
    return commune.department in departments(area) or fold(commune.name) in {fold(a) for a in area}


# --- addresses -------------------------------------------------------------------------------------
STREET_TYPES: Final = ["rue", "avenue", "av", "boulevard", "bd", "place", "chemin", "allee", "impasse", "route",
                       "quai", "cours", "square", "passage", "residence", "lotissement", "montee", "traverse",
                       "voie", "promenade", "esplanade", "rond point", "hameau", "lieu dit", "faubourg", "cite",
                       "parvis", "sentier", "villa", "clos", "domaine"]
STREET_FULL: Final = {"av": "avenue", "bd": "boulevard"}
STREET_STOP: Final = {"et", "j", "je", "c", "mon", "ma", "il", "on", "pres", "vers", "code", "ville", "appartement",
                      "appt", "etage", "bat", "batiment", "escalier", "porte", "depuis", "pour", "merci", "mais",
                      "donc", "voila", "euh", "numero", "telephone", "chez", "qui", "ou", "oui", "non", "s"}
SEPARATORS: Final = {"a", "au", "dans"}
LINKS: Final = {"de", "du", "des", "la", "le", "l", "d", "les", "sur", "en"}
BEFORE_NOUN: Final = {"grand", "grande", "grands", "grandes", "petit", "petite", "petits", "petites", "vieux", "vieil",
                      "vieille", "vieilles", "haut", "haute", "hauts", "hautes", "bas", "basse", "basses", "nouveau",
                      "nouvel", "nouvelle", "nouvelles", "beau", "bel", "belle", "belles", "bon", "bonne", "gros",
                      "grosse", "long", "longue", "joli", "jolie", "saint", "sainte", "st", "ste"}
"""Adjectives said before their noun (and saint): the word after one is part of the same name, so a
town's name there is the street's ("rue de la Grande Fontaine" is not in the commune Fontaine)."""
SEP: Final = "zsepz"
"""A pause in typed text (a comma): kept through folding so a town after it is known as one."""
_TYPES_RE: Final = "|".join(re.escape(t) for t in sorted(STREET_TYPES, key=len, reverse=True))
_STREET: Final = re.compile(
    rf"\b(\d{{1,4}})(?: (bis|ter))?(?: (?:{SEP}|euh|hum))*(?: (?:de la|du|des))? ({_TYPES_RE})\b")


@dataclass(frozen=True)
class Address:
    number: str
    street: str
    postcode: str | None
    city: str | None
    commune: Commune | None = None

    def __str__(self) -> str:
        place = " ".join(p for p in (self.postcode, self.city) if p)
        return f"{self.number} {self.street}" + (f", {place}" if place else "")


SMALL: Final = {"un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7, "huit": 8,
                "neuf": 9, "dix": 10}
def _lone_numbers(folded: str) -> str:
    """ "le gall neuf boulevard": a small number alone before a street type is its number (text2num
    reads "neuf" after a word as the adjective)."""
    number_words = set(SMALL) | {"vingt", "trente", "quarante", "cinquante", "soixante", "cent", "et", "mille",
                                 "onze", "douze", "treize", "quatorze", "quinze", "seize"}
    out = folded.split()
    for i, w in enumerate(out):
        if w in SMALL and i + 1 < len(out) and re.fullmatch(_TYPES_RE, out[i + 1]) and (
                i == 0 or out[i - 1] not in number_words):
            out[i] = str(SMALL[w])
    return " ".join(out)


def _prepare(text: str) -> str:
    """Folded, numbers as digits, commas kept as SEP, a postcode said "06 570" joined."""
    t = re.sub(r"\b(av|bd|st|ste|bld)\.", r"\1", text, flags=re.IGNORECASE)
    f = digits(_lone_numbers(fold(t.replace(",", f" {SEP} "))))
    known = communes().by_postcode
    return re.sub(r"\b(\d{2}) (\d{3})\b", lambda m: m.group(1) + m.group(2)
                  if m.group(1) + m.group(2) in known else m.group(0), f)


def address(text: str, area: Sequence[str] = ()) -> Address | None:
    """Number + street type + name (+ postcode) (+ town), anywhere in what was said."""
    f = _prepare(text)
    m = _STREET.search(f)
    if not m:
        return None
    number = m.group(1) + (f" {m.group(2)}" if m.group(2) else "")
    street_type = m.group(3)
    rest = f[m.end():].split()
    name: list[str] = []
    i = 0
    while i < len(rest) and (rest[i] not in STREET_STOP or _inside_name(rest, i)) and rest[i] != SEP \
            and rest[i] not in SEPARATORS and not rest[i].isdigit():
        name.append(rest[i])
        i += 1
    tail = rest[i:]
    depts = departments(area)
    commune, postcode, city = _town(name, tail, depts)
    if commune is not None and city is None:
        # The town was the end of the street's words ("quinze rue paul bert lyon").
        name = name[: len(name) - len(fold(commune.name).split())]
    if not name:
        return None
    street_words = " ".join([street_type, *name])
    if street_type in STREET_FULL:
        street = f"{STREET_FULL[street_type]} {original_case(text, ' '.join(name))}"
    else:
        street = original_case(text, street_words, first_upper=False)
        street = street[:1].lower() + street[1:]
    if commune is not None:
        city = commune.name
        if postcode is None and len(commune.postcodes) == 1:
            postcode = commune.postcodes[0]
    elif city is not None:
        city = original_case(text, city)
    return Address(number, street, postcode, city, commune)


TOWN_LEAD: Final = {"oui", "non", "si", "alors", "euh", "ben", "bah", "pardon", "c", "est", "a", "dans", "ville",
                    "merci", "voila"}
"""Words said around a town given alone ("oui, c'est à Nice", "Nice, merci")."""


def town_said(text: str, area: Sequence[str] = ()) -> Address | None:
    """A town said alone, with its postcode if one is said ("Nice.", "c'est à Nice", "à Nice 06000"), as
    an address without a street: what completes an address given without its town. Only an exact
    commune name around those few words, in the dialplan's departments or a big town (as a town at
    the end of the street's words): a word of a sentence that happens to name some commune is not
    one."""
    words = [w for w in _prepare(text).split() if w != SEP]
    while words and words[0] in TOWN_LEAD:
        words.pop(0)
    while words and words[-1] in TOWN_LEAD:
        words.pop()
    postcode = words.pop() if words and re.fullmatch(r"\d{5}", words[-1]) else None
    table = communes()
    if not words or len(words) > table.max_words:
        return None
    depts = departments(area)
    commune = table.named(" ".join(words), depts)
    if commune is None or not _likely(commune, depts):
        return None  # "non, c'est faux": Faux (08) is a commune too
    if postcode not in commune.postcodes:
        postcode = commune.postcodes[0] if len(commune.postcodes) == 1 else None
    return Address("", "", postcode, commune.name, commune)


def _inside_name(rest: list[str], i: int) -> bool:
    """ "et" inside a name ("caluire et cuire"), not joining the next sentence ("et mon numéro")."""
    return rest[i] == "et" and i + 1 < len(rest) and rest[i + 1] not in STREET_STOP and not rest[i + 1].isdigit()


def _town(name: list[str], tail: list[str], depts: tuple[str, ...]) -> tuple[Commune | None, str | None, str | None]:
    """(commune, postcode, heard town words) from what follows the street; `heard` is None when the
    town was found at the end of the street's own words."""
    table = communes()
    postcode = next((w for w in tail[:8] if re.fullmatch(r"\d{5}", w) and w in table.by_postcode), None)
    words_after: list[str] = []
    for w in tail:
        if w in SEPARATORS or w == SEP or w == postcode or w == "euh":
            if words_after:
                break
            continue
        if (w in STREET_STOP and w != "et") or w.isdigit():
            break
        words_after.append(w)
        if len(words_after) >= table.max_words:
            break
    article = {"au": "le", "aux": "les"}.get(next((w for w in tail if w in SEPARATORS), ""), "")
    if words_after and article:
        for k in range(len(words_after), 0, -1):  # "au Bouscat" is "à Le Bouscat"
            c = table.named(" ".join([article, *words_after[:k]]), depts)
            if c is not None:
                return c, postcode if postcode in c.postcodes else None, " ".join(words_after[:k])
    if words_after:
        for k in range(len(words_after), 0, -1):
            c = table.named(" ".join(words_after[:k]), depts)
            if c is not None and k < len(words_after):
                near = table.nearest(" ".join(words_after), depts)
                if near is not None and len(fold(near.name).split()) > k:  # "saint paul de vance"
                    return near, postcode if postcode in near.postcodes else None, " ".join(words_after)
            if c is not None:
                # A postcode that does not belong to the town is dropped; the town said is kept.
                return c, postcode if postcode in c.postcodes else None, " ".join(words_after[:k])
        c = table.nearest(" ".join(words_after), depts)
        if c is not None:
            return c, postcode if postcode in c.postcodes else None, " ".join(words_after)
        return None, postcode, " ".join(words_after)
    if postcode is not None:
        found = table.by_postcode[postcode]
        c = max(found, key=lambda x: x.population)
        return c, postcode, None
    # No pause before the town: the longest end of the street's words that names a real town.
    for k in range(min(len(name) - 1, table.max_words), 0, -1):
        if name[-k - 1] in LINKS or name[-k - 1] in BEFORE_NOUN:
            continue
        c = table.named(" ".join(name[-k:]), depts)
        if c is not None and _likely(c, depts):
            return c, None, None
    return None, None, None


def _likely(c: Commune, depts: tuple[str, ...]) -> bool:
    """A town named with nothing to mark it as one (no "à", no pause, no street before it) is taken
    only in the dialplan's departments or when big: many words of a sentence name some small commune."""
    return c.department in depts or c.population >= BIG_TOWN

