"""One pass over what the caller said: a typed `Heard` the policy decides from.

Each utterance is folded, lemmatised and read for numbers once; the candidates for every field
(name, address, phone, time), the kind of utterance (yes/no, question, correction, closing), the
special calls (wrong number, canvassing, asking for the artisan) and, given the dialplan and what
the conversation waits for (`Expect`), the problem in the caller's words, the FAQ answer, the slot
chosen among those offered and what a returning caller wants of their booking are all found here:
the policy never reads the raw text again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from agent.dialogue import names
from agent.dialogue.dialplan import Dialplan
from agent.dialogue.places import Address, address, town_said
from agent.dialogue.problem import describe, says_problem, says_problem_in
from agent.dialogue.scope import Scope, clauses, in_scope
from agent.dialogue.severity import Reading
from agent.dialogue.slots import Slot, pick
from agent.dialogue.state import AboutBooking, Ask
from agent.dialogue.text import fold, has_any, phone_number, stem, stems_of, words
from agent.dialogue.times import When, when

YES: Final = ["oui", "ouais", "ouai", "exactement", "c est ca", "c est bien ca", "tout a fait", "d accord",
              "ok", "okay", "parfait", "volontiers", "bien sur", "absolument", "ca marche", "ca me va", "voila",
              "affirmatif", "c est correct", "tres bien", "entendu", "c est juste", "c est exact"]
NO: Final = ["non", "pas du tout", "non merci", "ce n est pas ca", "c est pas ca", "negatif", "pas vraiment",
             "surtout pas", "jamais", "personne"]
DONT_KNOW: Final = ["je ne sais pas", "je sais pas", "j sais pas", "sais pas", "aucune idee", "je ne sais plus",
                    "je n en sais rien", "je ne vois pas", "pas la moindre idee", "j arrive pas a trouver",
                    "je ne trouve pas", "je trouve pas"]
CLOSING: Final = ["je rappellerai", "je vous rappelle", "je vous rappellerai", "au revoir", "merci beaucoup",
                  "c est tout", "ca ira", "bonne journee", "bonne soiree", "je passerai", "je verrai",
                  "je vais reflechir", "non merci", "rien d autre", "ce sera tout", "c est gentil", "je reflechis",
                  "je vais en parler", "d accord merci", "ok merci", "merci bien"]
WRONG_NUMBER: Final = ["trompe de numero", "tromper de numero", "mauvais numero", "faux numero",
                       "erreur de numero", "pas le bon numero", "c est une erreur", "je me suis trompe",
                       "composer le mauvais"]
SPAM: Final = ["panneaux solaires", "panneau solaire", "economies d energie", "isolation a 1 euro",
               "offre speciale", "vous proposer", "votre contrat d energie", "sondage", "enquete de satisfaction",
               "mutuelle", "cpf", "compte formation", "pompe a chaleur gratuite", "je suis conseiller",
               "partenariat", "referencement", "visibilite sur internet"]
ASK_FOR_ARTISAN: Final = ["parler a l artisan", "parler au patron", "parler a monsieur", "parler a madame",
                          "parler au plombier", "parler a l electricien", "parler a quelqu un", "passez moi",
                          "pouvez vous me passer", "me passer l artisan", "me passer le patron",
                          "parler directement", "parler a une personne", "un humain", "une vraie personne"]
QUESTION_START: Final = re.compile(
    r"^(?:(?:oui|bonjour|bonsoir|allo|euh|alors|madame|monsieur|dites moi|excusez moi|pardon|voila|je) )*"
    r"(?:est ce qu|est ce que|je voulais savoir|je voudrais savoir|j aimerais savoir|je me demandais|"
    r"pouvez vous|pourriez vous|vous pourriez|vous pouvez|faites vous|vous faites|vous etes|etes vous|"
    r"vous travaillez|travaillez vous|vous intervenez|intervenez vous|c est combien|combien|quel|quelle|quels|"
    r"quelles|comment (?:ca|faire|est ce|vous|on|je)|quand (?:est ce|pouvez|pourriez|venez|passez|viendrez|"
    r"intervenez|vous|etes)|ou est|ou etes|a quelle|avez vous|vous avez|acceptez vous|vous acceptez|vous prenez|"
    r"prenez vous|vous reparez|reparez vous|vous emportez|vous utilisez|vous venez|venez vous|c est possible|"
    r"vous vous occupez|vous \w+ez)\b")
REQUEST: Final = re.compile(
    r"\b(?:mon|ma|mes|notre|nos|chez moi|chez nous|j ai|nous avons|on a|je voudrais(?! savoir)|j aimerais"
    r"(?! savoir)|il me faut|il nous faut|venir|passer voir|intervenir chez|me faire|nous faire|faire un devis|"
    r"un devis|devis pour)\b")
"""A question that is a request ("vous pourriez venir voir mon évier ?"), not a request for information."""
CORRECTION: Final = re.compile(
    r"^(?:non|pas du tout|c est pas ca|ce n est pas ca|erreur|pardon)\b[ ,]*(?:non )?(?:c est |plutot |pardon )?(.+)$")
AGE: Final = re.compile(r"\b(\d{2,3}) ans\b")
SMALL_CHILD: Final = re.compile(r"\b(?:\d+|quelques) (?:mois|semaines?)\b|\b[1-3] ans\b")
DEGREES: Final = re.compile(r"\b(\d{1,2}) degres?\b")
REFUSES_SMS: Final = re.compile(r"\b(?:pas|aucun|jamais|sans|ni) (?:de |d |d un |un )?"
                                r"(?:s ?m ?s|textos?|messages? ecrits?)\b|\bne m envoyez (?:pas|rien|aucun)\b")
"""The caller does not want the confirmation SMS ("pas de SMS", "ne m'envoyez rien")."""
NOT_URGENT_AFTER_ALL: Final = re.compile(r"\b(?:(?:ce n est|c est|ca n est|n est) (?:pas|plus) (?:si |tres |vraiment )?"
                                         r"(?:urgent|grave|une urgence|dangereux)|fausse alerte|rien de grave)\b")
"""The caller's explicit correction: what they said before no longer makes the call urgent."""
ABOUT_BOOKING: Final = (
    (AboutBooking.CANCEL, re.compile(r"\b(?:annul\w*|supprim\w*|plus besoin|pas la peine|(?:ne )?pourr(?:ai|ais|a) "
                                     r"pas (?:etre la|venir|y etre))")),
    (AboutBooking.MOVE, re.compile(r"\b(?:deplac\w*|decal\w*|report\w*|chang\w*|modifi\w*|avanc\w*|repouss\w*|"
                                   r"autre (?:jour|date|heure|moment|creneau)|plus tard|plus tot)")),
    (AboutBooking.KEEP, re.compile(r"\b(?:je confirme|maintenu|on garde|je garde|c est (?:toujours )?bon|confirmer|"
                                   r"rien a changer)\b")),
)
"""What a returning caller wants of their booking, the first that matches."""


@dataclass(frozen=True)
class Expect:
    """What the conversation waits for when the caller speaks: the question pending and the slots
    offered (the same words are a name, a problem or a slot's choice depending on it)."""

    kind: Ask | None = None
    field: str | None = None
    offered: tuple[Slot, ...] = ()


@dataclass(frozen=True)
class Heard:
    text: str
    folded: str
    digits: str
    tokens: tuple[str, ...]
    """Folded words."""
    stems: tuple[str, ...]
    yes: bool | None
    dont_know: bool
    question: bool
    request: bool
    closing: bool
    correction: str | None
    wrong_number: bool
    spam: bool
    asks_for_artisan: bool
    introduced_name: str | None
    address: Address | None
    phone: str | None
    when: When | None
    ages: tuple[int, ...]
    small_child: bool
    degrees: tuple[int, ...]
    refuses_sms: bool = False
    scoped: str = ""
    """The utterance with its clauses of fear, the past, someone else's emergency, a purchase...
    taken out (scope.py): what is said of a danger here and now."""
    in_scope: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    """(stems, folded words) of `scoped`."""
    scopes: tuple[Scope, ...] = ()
    """The scopes of the clauses taken out of `scoped`."""
    reading: Reading | None = None
    """The learned layer's reading of the utterance (None: the rules alone)."""
    name: str | None = None
    """The name when this utterance answers "Quel est votre nom ?" (the address cut off)."""
    corrected_name: str | None = None
    """The name when this utterance corrects a read-back ("non, Dubois avec un D")."""
    retracts: bool = False
    """The caller says it is not urgent after all (the only way urgency is lowered)."""
    about_booking: AboutBooking | None = None
    town: Address | None = None
    """A town said alone (no street): what completes an address given without one."""
    # Given the dialplan and what is expected (`hear(..., plan=, expect=)`):
    slot: Slot | None = None
    """The slot chosen among those offered."""
    says_problem: bool = False
    """Words of the trade's problems, vocabulary or emergencies are said."""
    problem: str | None = None
    """The problem in the caller's words (the clauses that say what is wrong), when said."""
    problem_answer: str | None = None
    """The whole answer as the problem, when the problem was asked."""
    faq: str | None = None
    """The dialplan's answer to the question asked, when it has one."""

    @property
    def empty(self) -> bool:
        return not self.folded


def hear(text: str, now: datetime, area: Sequence[str] = (), *, plan: Dialplan | None = None,
         expect: Expect = Expect()) -> Heard:
    """The utterance understood once. Without `plan`, what needs no dialplan (tests, the corpus)."""
    from agent.dialogue.text import digits as to_digits

    text = text.strip()
    f = fold(text)
    d = to_digits(text)
    ws = words(text)
    head = " ".join(f.split()[:4])
    corr = CORRECTION.match(f)
    correction = _correction(corr.group(1)) if corr else None
    parts = [in_scope(c) for c in clauses(text)]
    scoped = " , ".join(c for c, _ in parts if c)
    h = Heard(
        text=text, folded=f, digits=d, tokens=tuple(fold(w) for w in ws), stems=tuple(stem(w) for w in ws),
        yes=_yes_no(head), dont_know=has_any(f, DONT_KNOW),
        question=text.rstrip().endswith("?") or bool(QUESTION_START.search(f)),
        request=bool(REQUEST.search(f)), closing=has_any(f, CLOSING),
        correction=correction,
        wrong_number=has_any(f, WRONG_NUMBER), spam=has_any(f, SPAM) or has_any(d, SPAM),
        asks_for_artisan=has_any(f, ASK_FOR_ARTISAN),
        introduced_name=names.introduced(text), address=address(text, area), town=town_said(text, area),
        phone=phone_number(text),
        when=when(text, now), ages=tuple(int(a) for a in AGE.findall(d)), small_child=bool(SMALL_CHILD.search(d)),
        degrees=tuple(int(x) for x in DEGREES.findall(d)), refuses_sms=bool(REFUSES_SMS.search(f)),
        scoped=scoped, in_scope=_stems_of(scoped), scopes=tuple(dict.fromkeys(sc for _, sc in parts if sc is not None)),
        name=names.answered(_before_address(text)) if text else None,
        corrected_name=names.answered(correction or text) if text else None,
        retracts=bool(NOT_URGENT_AFTER_ALL.search(f)),
        about_booking=next((intent for intent, rx in ABOUT_BOOKING if rx.search(f)), None))
    return h if plan is None or h.empty else _in_dialplan(h, plan, now, expect)


def _in_dialplan(h: Heard, plan: Dialplan, now: datetime, expect: Expect) -> Heard:
    """What the utterance says in this business's words, for the question it answers."""

    def person(name: str | None) -> str | None:
        return None if name and says_problem(plan, name) else name  # "évier bouché" is not a name

    problem_asked = expect.kind is Ask.FIELD and expect.field == "problem"
    problem_said = says_problem_in(plan, h.stems, h.tokens)  # (every trigger's words are among them)
    return replace(
        h, name=person(h.name), introduced_name=person(h.introduced_name), corrected_name=person(h.corrected_name),
        slot=pick(h.text, expect.offered, now) if expect.offered else None,
        says_problem=problem_said, problem=describe(plan, h, asked=False) if problem_said else None,
        problem_answer=describe(plan, h, asked=True) if problem_asked else None,
        faq=next((item.answer for item in plan.faq if has_any(h.folded, list(item.keywords))), None))


def _stems_of(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    stems, folded = stems_of(text)
    return tuple(stems), tuple(folded)


def _yes_no(head: str) -> bool | None:
    """True/False for a clear yes or no at the start of the answer (the first one said wins)."""
    first: tuple[int, bool] | None = None
    for phrases, value in ((YES, True), (NO, False)):
        for p in phrases:
            m = re.search(r"\b" + re.escape(p) + r"\b", head)
            if m and (first is None or m.start() < first[0]):
                first = (m.start(), value)
    return first[1] if first else None


def _correction(rest: str) -> str | None:
    rest = re.sub(r"\b(avec un|avec une|comme)\b.*$", "", rest).strip()
    rest = re.sub(r"^(c est|plutot|mais|je voulais dire)\s+", "", rest)
    return rest or None


_NUMBER_START: Final = re.compile(r"\b(\d{1,4}|un|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|treize|"
                                  r"quatorze|quinze|seize|vingt|trente|quarante|cinquante|soixante|cent|au|le)\b,? "
                                  r"(?:\w+ )?(?:bis |ter )?(?:rue|avenue|boulevard|bd|av|place|chemin|all[ée]e|"
                                  r"impasse|route|quai|cours|square|traverse|mont[ée]e|r[ée]sidence|lotissement)\b",
                                  re.IGNORECASE)


def _before_address(text: str) -> str:
    """The text up to where an address starts (so a street or a town is not taken for a name)."""
    folded_text = re.sub(r"[’'`]", " ", text)
    m = _NUMBER_START.search(folded_text)
    return text[: m.start()] if m else text
