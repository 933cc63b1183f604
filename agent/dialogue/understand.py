"""Rules-first French understanding of what a caller says (ASR text or typed text).

Everything here works on lower-case text without punctuation too (what Vosk writes): numbers may
come as digits or as French words ("quinze rue victor hugo", "zéro six douze trente-quatre ...").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final


def fold(text: str) -> str:
    """Lower case, no accents, apostrophes and dashes as spaces: what patterns match against."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[’'`]", " ", text)
    text = re.sub(r"[^a-z0-9+ ]", " ", text.replace("-", " "))
    return " ".join(text.split())


def has_any(folded: str, phrases: list[str] | tuple[str, ...]) -> bool:
    """Whole-word (or whole-phrase) match of any folded phrase; a trailing * matches a prefix."""
    for phrase in phrases:
        p = fold(phrase.rstrip("*"))
        pattern = r"\b" + re.escape(p) + (r"" if phrase.endswith("*") else r"\b")
        if re.search(pattern, folded):
            return True
    return False


def first_match(folded: str, phrases: list[str] | tuple[str, ...]) -> tuple[int, int] | None:
    """(position, -length) of the earliest, then longest, match of any phrase (as has_any), or None:
    sorts so that the first and most specific mention wins."""
    best = None
    for phrase in phrases:
        p = fold(phrase.rstrip("*"))
        pattern = r"\b" + re.escape(p) + (r"" if phrase.endswith("*") else r"\b")
        m = re.search(pattern, folded)
        if m and (best is None or (m.start(), -len(p)) < best):
            best = (m.start(), -len(p))
    return best


# --- numbers ---------------------------------------------------------------------------------
UNITS: Final = {"zero": 0, "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7,
                "huit": 8, "neuf": 9, "dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14,
                "quinze": 15, "seize": 16, "vingt": 20, "vingts": 20, "trente": 30, "quarante": 40,
                "cinquante": 50, "soixante": 60, "septante": 70, "huitante": 80, "octante": 80, "nonante": 90}
NUMBER_WORDS: Final = set(UNITS) | {"et", "cent", "cents", "mille"}


def _parse_number_words(words: list[str]) -> int | None:
    """French number words (one number) to an int: 'quatre vingt dix sept -> 97."""
    if not words or words[0] == "et":
        return None
    total, current = 0, 0
    for w in words:
        if w == "et":
            continue
        if w in ("cent", "cents"):
            current = (current or 1) * 100
        elif w == "mille":
            total += (current or 1) * 1000
            current = 0
        elif w in ("vingt", "vingts") and current % 100 == 4:
            current += 76  # quatre vingt = 80
        elif w in UNITS:
            current += UNITS[w]
        else:
            return None
    return total + current


def words_to_digits(text: str) -> str:
    """Replace runs of French number words by digits, keeping separate numbers apart:
    'zero six douze trente quatre -> '0 6 12 34'; 'quinze rue -> '15 rue'."""
    words = text.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] in UNITS or (words[i] in ("cent", "mille")):
            j = i
            group: list[str] = []
            # A new number starts when a unit follows a complete tens/unit value (phone pairs).
            while j < len(words) and words[j] in NUMBER_WORDS:
                w = words[j]
                if group and _starts_new_number(group, w):
                    break
                group.append(w)
                j += 1
            value = _parse_number_words(group)
            if value is None:
                out.append(words[i])
                i += 1
                continue
            out.append(str(value))
            i = j
        else:
            out.append(words[i])
            i += 1
    return " ".join(out)


def _starts_new_number(group: list[str], w: str) -> bool:
    """Whether `w` begins a new number after `group` ("douze trente": yes; "trente quatre": no)."""
    last = group[-1]
    if w in ("et", "cent", "cents", "mille") or last in ("et", "cent", "cents", "mille"):
        return False
    cur = _parse_number_words(group)
    wv = UNITS.get(w)
    if cur is None or wv is None or last == "zero" or w == "zero":
        return True
    tens = cur % 100
    if tens in (20, 30, 40, 50, 60, 80) and 0 < wv < 10:
        return False  # vingt deux, quatre vingt trois
    if tens in (60, 80) and 10 <= wv < 20:
        return False  # soixante douze, quatre vingt dix
    if tens in (10, 70, 90) and last == "dix" and 0 < wv < 10:
        return False  # dix huit, soixante dix huit
    if tens == 4 and w in ("vingt", "vingts"):
        return False
    if cur >= 100 and tens == 0 and wv < 100:
        return False  # cent vingt
    return True


# --- yes / no / don't know ---------------------------------------------------------------------
YES: Final = ["oui", "ouais", "ouai", "exactement", "c est ca", "c est bien ca", "tout a fait", "d accord",
              "ok", "okay", "parfait", "volontiers", "bien sur", "absolument", "ca marche", "ca me va", "voila",
              "affirmatif", "c est correct", "tres bien", "entendu"]
NO: Final = ["non", "pas du tout", "non merci", "ce n est pas ca", "c est pas ca", "negatif", "pas vraiment",
             "surtout pas", "jamais"]
DONT_KNOW: Final = ["je ne sais pas", "je sais pas", "j sais pas", "sais pas", "aucune idee", "je ne sais plus",
                    "je n en sais rien", "je ne vois pas", "pas la moindre idee"]


def yes_no(folded: str) -> bool | None:
    """True/False for a clear yes or no at the start of the answer (or alone), else None."""
    head = " ".join(folded.split()[:4])
    no = has_any(head, NO)
    yes = has_any(head, YES)
    if no and not yes:
        return False
    if yes and not no:
        return True
    if no and yes:  # "oui, non ..." : the first one said wins
        first_no = min((m.start() for p in NO for m in re.finditer(r"\b" + re.escape(fold(p)) + r"\b", head)),
                       default=99)
        first_yes = min((m.start() for p in YES for m in re.finditer(r"\b" + re.escape(fold(p)) + r"\b", head)),
                        default=99)
        return first_yes < first_no
    return None


def dont_know(folded: str) -> bool:
    return has_any(folded, DONT_KNOW)


# --- phone numbers -------------------------------------------------------------------------------
def phone_number(text: str) -> str | None:
    """A French phone number said as digits, pairs or words, as E.164 (+33...)."""
    f = words_to_digits(fold(text)).replace("+ 33", "+33")
    f = re.sub(r"\bplus 33\b", "+33", f)
    digits_runs: list[str] = re.findall(r"\+?\d[\d ]{7,}\d", f)
    for run in digits_runs:
        d = str(run).replace(" ", "")
        if d.startswith("+33") and len(d) == 12:
            return d
        if d.startswith("0033") and len(d) == 13:
            return "+" + d[2:]
        if d.startswith("0") and len(d) == 10 and d[1] != "0":
            return "+33" + d[1:]
        if d.startswith("33") and len(d) == 11:
            return "+" + d
    return None


def format_phone(e164: str) -> str:
    """+33612345678 -> 06 12 34 56 78 (how it is read back to a caller)."""
    if e164.startswith("+33") and len(e164) == 12:
        local = "0" + e164[3:]
        return " ".join(local[i:i + 2] for i in range(0, 10, 2))
    return e164


# --- names -----------------------------------------------------------------------------------------
NOT_NAME: Final = {"oui", "non", "bonjour", "allo", "alors", "euh", "ben", "bah", "donc", "voila", "merci", "bien",
                   "la", "le", "les", "un", "une", "de", "du", "des", "et", "je", "j'", "c'", "c", "est", "s'",
                   "il", "vous", "plait", "mon", "ma", "mes", "nom", "prenom", "appelle", "suis", "m'", "ici",
                   "pour", "a", "au", "en", "sur", "moi", "ah", "hein", "bonsoir", "madame", "monsieur",
                   "chez", "fuite", "probleme", "urgent", "urgence", "tout", "ca", "que", "qui", "pas", "ne", "y"}
PARTICLES: Final = {"de", "du", "des", "le", "la", "d'", "van", "von", "da", "di", "el", "ben", "ait"}


def spelled(text: str) -> str | None:
    """'D U B O I S or 'D comme Denis U comme Ursule ... -> 'Dubois'."""
    f = fold(text)
    f = re.sub(r"\b([a-z]) comme [a-z]+\b", r"\1", f)
    letters = re.findall(r"\b[a-z]\b", f)
    run = re.search(r"(?:\b[a-z]\b ?){3,}", f)
    if run and len(letters) >= 3:
        word = run.group(0).replace(" ", "")
        return word.capitalize()
    return None


DETERMINERS: Final = {"le", "la", "les", "l", "un", "une", "des", "du", "de", "mon", "ma", "mes", "notre", "votre",
                      "ce", "cette", "ces", "son", "sa", "ses"}
FILLER: Final = {"j", "c", "s", "qu", "l", "d", "est", "je", "j'", "suis", "oui", "alors", "euh", "bonjour",
                 "bonsoir", "allo", "ben", "bah", "donc", "voila", "ici", "moi", "nom", "mon", "madame", "monsieur",
                 "mademoiselle",
                 "s'", "appelle", "m'", "m", "mme", "mr", "docteur", "c'est", "hm", "ah", "eh", "bien", "sur", "accord",
                 "ok", "merci", "pardon", "excusez", "et", "famille", "societe", "entreprise", "cabinet",
                 "agence"}
NOT_NAME_WORDS: Final = NOT_NAME | {"habite", "habitons", "ai", "avons", "voudrais", "veux", "besoin", "appelle",
                                     "appelais", "cherche", "urgent", "rue", "avenue", "boulevard", "place",
                                     "chemin", "allee", "impasse", "route", "quai", "numero", "telephone", "adresse",
                                     "aujourd'", "demain", "maison", "appartement", "porte", "eau", "gaz",
                                     "chauffage", "toit", "vitre", "jardin", "menage", "courant"}


def person_name(text: str, *, asked: bool) -> str | None:
    """The caller's name. Without having asked for it, only after a lead-in ("je m'appelle",
    "c'est madame ..."); when answering the question, the first clause that holds words."""
    clauses = [c for c in re.split(r"[,.;!?]", text) if c.strip()]
    for clause in clauses:
        f = words_to_digits(fold(clause))
        m = re.search(r"\b(?:je m appelle|mon nom est|mon nom c est|moi c est|de la part de|"
                      r"(?:c est|je suis|ici) (?=monsieur|madame|mademoiselle|mme|m )|je suis)\b(.*)$", f)
        if m:
            name = _name_words(m.group(1))
            if name:
                return original_case(clause, name)
    if not asked:
        return None
    for clause in clauses:
        name = _name_words(words_to_digits(fold(clause)))
        if name:
            return original_case(clause, name)
    return None


def _name_words(folded: str) -> str | None:
    words = [w for w in folded.split() if w not in FILLER]
    name: list[str] = []
    for w in words:
        if w.isdigit() or (w in NOT_NAME_WORDS and w not in PARTICLES) or len(name) >= 4 or len(w) == 1:
            break
        name.append(w)
    while name and name[-1] in PARTICLES:
        name.pop()
    if not name or all(w in PARTICLES for w in name) or name[0] in DETERMINERS:
        return None
    return " ".join(name)


def _cap(word: str) -> str:
    return "-".join(p[:1].upper() + p[1:] for p in word.split("-"))


def _fold_char(c: str) -> str:
    d = unicodedata.normalize("NFKD", c.lower())
    d = "".join(x for x in d if not unicodedata.combining(x))
    if d in ("'", "’", "`"):
        return " "
    return d if re.fullmatch(r"[a-z0-9+]*", d) else " "


def original_case(text: str, folded_words: str) -> str:
    """The words of `text` that fold to `folded_words`, with their accents, hyphens and case
    (title case if they were all lower case, as ASR writes them)."""
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
        return " ".join(_cap(w) if w not in PARTICLES else w for w in folded_words.split())
    chunk = text[index[m.start()]:index[m.end() - 1] + 1]
    if any(c.isupper() for c in chunk):
        return chunk
    words = re.split(r"(\s+)", chunk)
    return "".join(w if w.isspace() or fold(w) in PARTICLES else _cap(w) for w in words)


# --- addresses -----------------------------------------------------------------------------------
STREET_TYPES: Final = ["rue", "avenue", "av", "boulevard", "bd", "place", "chemin", "allee", "impasse", "route",
                       "quai", "cours", "square", "passage", "residence", "lotissement", "montee", "traverse",
                       "voie", "promenade", "esplanade", "rond point", "hameau", "lieu dit", "faubourg", "cite",
                       "parvis", "sentier", "villa", "clos", "domaine"]
STREET_FULL: Final = {"av": "avenue", "bd": "boulevard"}
STREET_STOP: Final = {"a", "au", "sur", "dans", "et", "j'", "je", "c'", "mon", "ma", "il", "on", "pres", "vers",
                      "code", "ville", "appartement", "appt", "etage", "bat", "batiment", "escalier", "porte"}


@dataclass(frozen=True)
class Address:
    number: str
    street: str
    postcode: str | None
    city: str | None

    def __str__(self) -> str:
        place = " ".join(p for p in (self.postcode, self.city) if p)
        return f"{self.number} {self.street}" + (f", {place}" if place else "")


def address(text: str, cities: list[str] | tuple[str, ...] = ()) -> Address | None:
    """Number + street type + name (+ postcode) (+ 'à city), within one clause of what was said;
    a city alone in the next clause ("15 rue Victor Hugo, Nice") is taken too."""
    text = re.sub(r"\b(av|bd|st|ste|bld)\.", r"\1", text, flags=re.IGNORECASE)
    clauses = [c for c in re.split(r"[.;!?]|,(?!\s*\d{5})", text) if c.strip()]
    for i, clause in enumerate(clauses):
        found = _address_in(clause, cities)
        if found is not None:
            if found.city is None and i + 1 < len(clauses):
                nxt = fold(clauses[i + 1])
                nxt = re.sub(r"^(a|au|sur|dans) ", "", nxt)
                words = nxt.split()
                city = _match_city(nxt, cities) if words else None
                if city is None and 0 < len(words) <= 3 and not set(words) & NOT_NAME_WORDS:
                    city = original_case(clauses[i + 1], " ".join(words))
                if city:
                    found = Address(found.number, found.street, found.postcode, city)
            return found
    return None


def _address_in(text: str, cities: list[str] | tuple[str, ...]) -> Address | None:
    f = words_to_digits(fold(text))
    types = "|".join(re.escape(t) for t in sorted(STREET_TYPES, key=len, reverse=True))
    m = re.search(rf"\b(\d{{1,4}})(?: ?(bis|ter))? ?,? (?:{'|'.join(['de la', 'du', 'des'])} )?\b({types})\b(.*)", f)
    if not m:
        return None
    number = m.group(1) + (f" {m.group(2)}" if m.group(2) else "")
    street_type = m.group(3)
    rest = m.group(4).split()
    name_words: list[str] = []
    i = 0
    while i < len(rest) and rest[i] not in STREET_STOP and not re.fullmatch(r"\d{5}", rest[i]):
        name_words.append(rest[i])
        i += 1
    postcode = None
    city_words: list[str] = []
    tail = rest[i:]
    for j, w in enumerate(tail):
        if re.fullmatch(r"\d{5}", w):
            postcode = w
            city_words = _city_after(tail[j + 1:])
            break
        if w in ("a", "au", "sur") and j + 1 < len(tail):
            city_words = _city_after(tail[j + 1:])
            pc = next((x for x in tail[j + 1:] if re.fullmatch(r"\d{5}", x)), None)
            postcode = postcode or pc
            break
    if not name_words:
        return None
    if street_type in STREET_FULL:
        street = f"{STREET_FULL[street_type]} {original_case(text, ' '.join(name_words))}"
    else:
        street = original_case(text, f"{street_type} {' '.join(name_words)}")
        street = street[:1].lower() + street[1:]
    city = _match_city(" ".join(city_words), cities) if city_words else None
    if city is None and city_words:
        city = original_case(text, " ".join(city_words))
    return Address(number, street, postcode, city)


def _city_after(words: list[str]) -> list[str]:
    out: list[str] = []
    for w in words:
        if w in STREET_STOP - {"sur"} or w.isdigit() or w in ("c'", "est", "mon", "ma", "j'", "et"):
            break
        out.append(w)
        if len(out) >= 4:
            break
    return out


def _match_city(folded_city: str, cities: list[str] | tuple[str, ...]) -> str | None:
    for c in cities:
        if fold(c) == folded_city or folded_city.startswith(fold(c) + " "):
            return c
    return None


# --- dates and times ---------------------------------------------------------------------------------
WEEKDAYS: Final = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
MONTHS: Final = ["janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre", "octobre",
                 "novembre", "decembre"]
PARTS_OF_DAY: Final = {"matin": (time(8), time(12)), "matinee": (time(8), time(12)),
                       "midi": (time(11, 30), time(14)), "apres midi": (time(13, 30), time(18)),
                       "fin de journee": (time(16), time(19)), "soir": (time(17), time(20)),
                       "debut d apres midi": (time(13, 30), time(15, 30))}


@dataclass(frozen=True)
class When:
    """A caller's time preference: a day (or None = any) and a window on it."""

    day: date | None
    start: time
    end: time
    asap: bool = False


def when(text: str, now: datetime) -> When | None:
    f = words_to_digits(fold(text))
    today = now.date()
    asap = has_any(f, ["des que possible", "au plus vite", "le plus tot possible", "tout de suite", "rapidement",
                       "maintenant", "au plus tot", "en urgence"])
    day: date | None = None
    if has_any(f, ["apres demain"]):
        day = today + timedelta(days=2)
    elif has_any(f, ["demain"]):
        day = today + timedelta(days=1)
    elif has_any(f, ["aujourd hui", "aujourd hui", "ce matin", "cet apres midi", "ce soir", "dans la journee"]):
        day = today
    else:
        for i, wd in enumerate(WEEKDAYS):
            if re.search(rf"\b{wd}\b", f):
                delta = (i - today.weekday()) % 7
                if delta == 0 or (has_any(f, [f"{wd} prochain"]) and delta < 7 and delta == 0):
                    delta = 7 if delta == 0 else delta
                day = today + timedelta(days=delta)
                break
        m = re.search(rf"\b(\d{{1,2}}|1er|premier) ({'|'.join(MONTHS)})\b", f)
        if m:
            d = 1 if m.group(1) in ("1er", "premier") else int(m.group(1))
            month = MONTHS.index(m.group(2)) + 1
            year = today.year + (1 if (month, d) < (today.month, today.day) else 0)
            try:
                day = date(year, month, d)
            except ValueError:
                day = None
    start, end = time(0), time(23, 59)
    found_time = False
    m = re.search(r"\b(?:vers |a |pour |des |avant |apres )?(\d{1,2}) ?(?:h|heures?)(?: ?(\d{2}))?\b", f)
    if m and int(m.group(1)) < 24:
        h, mi = int(m.group(1)), int(m.group(2) or 0)
        if 1 <= h <= 7 and has_any(f, ["apres midi", "soir"]):
            h += 12
        t = time(h, mi)
        lead = f[max(0, m.start() - 7):m.start() + 6]
        if "avant" in lead:
            start, end = time(0), t
        elif "apres" in lead and "apres midi" not in lead:
            start, end = t, time(23, 59)
        else:
            base = datetime.combine(today, t)
            start = (base - timedelta(minutes=60)).time()
            end = (base + timedelta(minutes=60)).time()
            if "vers" not in lead:
                start, end = t, (base + timedelta(minutes=59)).time()
        found_time = True
    else:
        for part, (a, b) in sorted(PARTS_OF_DAY.items(), key=lambda kv: -len(kv[0])):
            if has_any(f, [part]):
                start, end = a, b
                found_time = True
                break
    if day is None and not found_time and not asap:
        return None
    return When(day, start, end, asap)


# --- corrections, wrong numbers, spam -------------------------------------------------------------------
def correction(text: str) -> str | None:
    """'non, Dubois avec un D / 'non c'est Durand -> the corrected value said after 'non'."""
    f = fold(text)
    m = re.match(r"^(?:non|pas du tout|c est pas ca|ce n est pas ca|erreur)\b[ ,]*(?:c est |plutot |pardon )?(.+)$", f)
    if not m or not m.group(1).strip():
        return None
    rest = re.sub(r"\b(avec un|avec une|comme)\b.*$", "", m.group(1)).strip()
    rest = re.sub(r"^(c est|plutot|mais|je voulais dire)\s+", "", rest)
    return rest or None


WRONG_NUMBER: Final = ["trompe de numero", "tromper de numero", "mauvais numero", "faux numero",
                       "erreur de numero", "pas le bon numero", "c est une erreur", "je me suis trompe",
                       "composer le mauvais"]
SPAM: Final = ["panneaux solaires", "panneau solaire", "economies d energie", "isolation a 1 euro",
               "offre speciale", "vous proposer", "votre contrat d energie", "sondage", "enquete de satisfaction",
               "mutuelle", "cpf", "compte formation", "pompe a chaleur gratuite", "bonjour je suis conseiller",
               "partenariat", "referencement", "visibilite sur internet"]


def wrong_number(folded: str) -> bool:
    return has_any(folded, WRONG_NUMBER)


def spam(folded: str) -> bool:
    return has_any(folded, SPAM)


ASK_FOR_ARTISAN: Final = ["parler a l artisan", "parler au patron", "parler a monsieur", "parler a madame",
                          "parler au plombier", "parler a l electricien", "parler a quelqu un", "passez moi",
                          "pouvez vous me passer", "me passer l artisan", "me passer le patron",
                          "parler directement", "parler a une personne", "un humain", "une vraie personne"]


def asks_for_artisan(folded: str) -> bool:
    """The caller wants a person, not the assistant ("passez-moi l'artisan")."""
    return has_any(folded, ASK_FOR_ARTISAN)
