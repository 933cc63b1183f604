"""The caller's name: taken only when it was asked for or explicitly introduced.

Civilities are dropped ("c'est Madame Caron" -> Caron), a repeated surname keeps the full name
("Monsieur Petit, Alain Petit" -> Alain Petit), a spelled surname corrects the surname only, and
a relation ("je suis sa fille") or a place ("je suis devant chez moi") is never a name.
"""

from __future__ import annotations

import re
from typing import Final

import simplemma

from agent.dialogue.places import communes
from agent.dialogue.text import fold, original_case

CIVILITIES: Final = frozenset({"monsieur", "madame", "mademoiselle", "mme", "mr", "mlle", "docteur", "dr"})
FILLER: Final = frozenset({"j", "c", "s", "qu", "l", "d", "est", "je", "suis", "oui", "alors", "euh", "bonjour",
                           "bonsoir", "allo", "ben", "bah", "donc", "voila", "ici", "moi", "nom", "mon", "appelle",
                           "m", "hm", "ah", "eh", "bien", "sur", "accord", "ok", "merci", "pardon", "excusez", "et",
                           "famille", "societe", "entreprise", "cabinet", "agence", "hum", "ouais", "bon", "tout",
                           "simplement", "pour", "vous", "dire", "c est"} | CIVILITIES)
NOT_NAME: Final = frozenset({"non", "la", "le", "les", "un", "une", "de", "du", "des", "a", "au", "en", "y", "il",
                             "elle", "on", "nous", "vous", "habite", "habitons", "ai", "avons", "voudrais", "veux",
                             "besoin", "appelais", "cherche", "urgent", "urgence", "rue", "avenue", "boulevard",
                             "place", "chemin", "allee", "impasse", "route", "quai", "cours", "numero", "telephone",
                             "adresse", "demain", "maison", "appartement", "porte", "eau", "gaz", "chauffage", "toit",
                             "fuite", "probleme", "chez", "devant", "dehors", "dedans", "pas", "ne", "que", "qui",
                             "ca", "plus", "rien", "parce", "car", "mais", "si", "avec", "dans", "sans", "sa", "son",
                             "ses", "ma", "mes", "notre", "votre", "leur", "ce", "cette", "appareil", "vient", "viens",
                             "sais", "peux", "voulais", "fait", "ya", "portable", "fixe",
                             # number words: a street number follows the name ("bruno carre vingt deux allee")
                             "zero", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix",
                             "onze", "douze", "treize", "quatorze", "quinze", "seize", "vingt", "trente", "quarante",
                             "cinquante", "soixante", "cent", "mille", "et",
                             # prepositions and adverbs of time, a closed class: the rest of a sentence
                             # cut at a pause is said after the name was asked ("depuis ce matin")
                             "depuis", "pendant", "avant", "apres", "vers", "sous", "entre", "contre", "par",
                             "derriere", "durant", "jusqu", "jusque", "hier", "aujourd", "maintenant", "deja",
                             "encore", "matin", "soir"})
PARTICLES: Final = frozenset({"de", "du", "des", "le", "la", "d", "van", "von", "da", "di", "el", "ben", "ait"})
RELATION: Final = re.compile(r"\b(?:je suis |c est )?(?:sa|son|la|le|leur|mon|ma) (?:fille|fils|femme|mari|voisine?|"
                             r"mere|pere|soeur|frere|amie?|gardienne?|locataire|proprietaire|belle fille|gendre|"
                             r"compagne?|conjointe?|aide a domicile|infirmiere?|petite? fille|petit fils|neveu|niece)"
                             r"\b")
INTRO: Final = re.compile(
    r"\b(?:je m appelle|je me nomme|mon nom est|mon nom c est|moi c est|de la part de"
    r"|(?:c est|ici|je suis|moi) (?=(?:monsieur|madame|mademoiselle|mme|mr|mlle|docteur) ))\s*(.*)$")
ON_THE_LINE: Final = re.compile(r"^(?:(?:oui|allo|bonjour|bonsoir|euh) )*(?:c est )?(.*?) a l appareil\b")


def _clean(words: list[str]) -> list[str]:
    out: list[str] = []
    for w in words:
        if out and out[-1] == w:
            continue  # "Gisèle, Gisèle Tanguy"
        out.append(w)
    return out


def name_words(folded: str) -> str | None:
    """The name at the start of `folded` (after fillers and civilities), or None."""
    folded = RELATION.sub(" ", folded)
    ws = folded.split()
    while ws and ws[0] in FILLER:
        ws.pop(0)
    name: list[str] = []
    for w in ws:
        if w.isdigit() or len(w) == 1 or (w in NOT_NAME and w not in PARTICLES) or len(name) >= 7:
            break
        if w in FILLER and w not in PARTICLES:
            if name:
                break
            continue
        name.append(w)
    name = _clean(name)
    while name and name[-1] in PARTICLES and not _particle_surname(name):
        name.pop()
    if name and name[-1] in name[:-1]:  # "petit alain petit": the full name after the first mention
        name = name[name.index(name[-1]) + 1:]
    while name and name[0] in PARTICLES and len(name) > 1 and name[1] in name[2:]:
        name.pop(0)  # "le goff yann le goff"
    name = name[:5]
    while name and name[-1] in PARTICLES and not _particle_surname(name):
        name.pop()
    if not name or all(w in PARTICLES for w in name):
        return None
    return " ".join(name)


def _particle_surname(name: list[str]) -> bool:
    """ "anaïs le du": a surname that is itself a particle word, after "Le"/"La" and a first name."""
    return len(name) >= 3 and name[-2] in ("le", "la") and name[-3] not in PARTICLES


def spelled(text: str) -> str | None:
    """'D U B O I S' or 'D comme Denis U comme Ursule ...' -> 'Dubois'."""
    f = re.sub(r"\b([a-z]) comme [a-z]+\b", r"\1", fold(text))
    run = re.search(r"(?:\b[a-z]\b ?){3,}", f)
    return run.group(0).replace(" ", "").capitalize() if run else None


def introduced(text: str) -> str | None:
    """A name the caller introduces without being asked ("je m'appelle ...", "c'est Madame ...",
    "Monsieur Lemoine à l'appareil"), or None."""
    for clause in _clauses(text):
        f = fold(clause)
        m = INTRO.search(f) or ON_THE_LINE.search(f)
        if m:
            name = name_words(m.group(1))
            if name and not _common_words(name, m):
                return original_case(clause, name)
    return _after_greeting(text)


GREETING: Final = frozenset({"bonjour", "bonsoir", "allo", "oui", "euh"})


def _after_greeting(text: str) -> str | None:
    """ "Bonjour, Arnaud Chabert, ...": two or three words no French dictionary knows, right after
    the greeting, are a name."""
    ws = fold(text).split()
    if not ws or ws[0] not in GREETING:
        return None
    while ws and ws[0] in GREETING:
        ws.pop(0)
    run: list[str] = []
    for w in ws:
        if w in FILLER or w in NOT_NAME or len(w) == 1 or w.isdigit() or simplemma.is_known(w, lang="fr"):
            break
        run.append(w)
    name = name_words(" ".join(run)) if 2 <= len(run) <= 4 else None
    return original_case(text, name) if name and len(name.split()) >= 2 else None


def _common_words(name: str, m: re.Match[str]) -> bool:
    """ "X à l'appareil" with X a plain French word ("le téléphone") is not a name; after an
    explicit lead-in ("je m'appelle", a civility) any word is."""
    if m.re is INTRO:
        return False
    return all(simplemma.is_known(w, lang="fr") for w in name.split()) and not re.search(
        r"\b(?:monsieur|madame|mademoiselle|mme|mr|docteur)\b", m.group(0))


def answered(text: str) -> str | None:
    """The name in an answer to "Quel est votre nom ?": the fullest one said."""
    found = introduced(text)
    best: tuple[int, str, str] | None = None
    for clause in _clauses(text):
        name = name_words(fold(clause))
        if name and communes().named(name) is not None and best is not None:
            continue  # "Fanny Leroux, ..., Cesson-Sévigné": the town after the name
        if name and (best is None or len(name.split()) >= best[0]):
            best = (len(name.split()), name, clause)
    if found and (best is None or fold(found).split()[-1] != best[1].split()[-1]
                  or len(best[1].split()) <= len(fold(found).split())):
        return _with_spelling(text, found)  # "c'est Monsieur Lebreton, Alain Lebreton": the fuller one
    if best is None:
        letters = spelled(text)
        return letters
    return _with_spelling(text, original_case(best[2], best[1]))


def _with_spelling(text: str, name: str) -> str:
    letters = spelled(text)
    return with_surname(name, letters) if letters else name


def with_surname(name: str | None, surname: str) -> str:
    """A spelled or corrected surname replaces the surname only (kept as said when it folds the same)."""
    parts = (name or "").split()
    if parts and fold(parts[-1]) == fold(surname):
        return " ".join(parts)
    if len(parts) >= 2:
        return " ".join([*parts[:-1], surname])
    return surname


def _clauses(text: str) -> list[str]:
    return [c for c in re.split(r"[,.;!?]", text) if c.strip()]
