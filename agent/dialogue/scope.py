"""Scope: whether danger words are said of a danger here and now, or of something else.

"J'ai peur qu'un jour ça prenne feu", "la fuite de l'an dernier", "ma voisine a eu un incendie",
"GRDF a mis les scellés", "je voudrais installer un détecteur de fumée": the danger word is there,
the danger is not. Scope is read in the clause where the danger word stands (a clause ends at
punctuation or at a conjunction such as "mais", "parce que"), so "il y a eu un incendie l'an dernier,
mais là ça refume" keeps its second clause's danger.

Plain negation right before a trigger's words is already handled where phrases are matched
(text.Phrase.find); this adds negation said after a verb ("il est pas tombé"), fear and
hypothesis, the past, someone else's emergency, one already handled by professionals, and a
purchase or installation.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

from agent.dialogue.text import fold


class Scope(StrEnum):
    NEGATED = "negated"
    FEARED = "feared"
    """Fear or hypothesis: "j'ai peur que", "au cas où", "un jour"."""
    PAST = "past"
    """A past problem, or one already solved."""
    OTHERS = "others"
    """Someone else's emergency, elsewhere ("ma voisine a eu un incendie")."""
    HANDLED = "handled"
    """Professionals have already made it safe (firefighters, the gas company)."""
    PURCHASE = "purchase"
    """A purchase or an installation of a safety device, a quote, a check-up."""


CLAUSE_END: Final = re.compile(r"\b(?:mais|parce que|parce qu|car|sauf que|alors que|pourtant|"
                               r"par contre|en revanche|et la|et maintenant|maintenant|sinon)\b")
"""Where a clause ends (besides punctuation): what is said across it is not in the same scope
("c'était réparé, mais là ça fuit")."""

MARKERS: Final = (
    (Scope.NEGATED, re.compile(r"\b(?:(?:est|a|ont|sont|y a|il y a|ca fait|ca a|c est) (?:pas|plus|jamais|rien)|"
                               r"aucune? |pas de |plus de (?:fuite|fumee|odeur|flamme)|ni fuite|"
                               r"sans (?:fuite|danger))")),
    (Scope.FEARED, re.compile(r"\b(?:peur que|peur qu|crains que|crains qu|crainte que|au cas ou|si jamais|"
                              r"un jour|des fois que|on ne sait jamais|on sait jamais|pourrait|pourraient|risquerait|"
                              r"eviter que|eviter qu|par precaution|prevention|prevenir|a l avenir|si ca|s il y avait|"
                              r"imaginons|est ce que c est dangereux|est ce dangereux|c est grave si)\b")),
    (Scope.PAST, re.compile(r"\b(?:l an dernier|l annee derniere|l hiver dernier|l ete dernier|le mois dernier|"
                            r"la derniere fois|il y a (?:deux|trois|quatre|cinq|six|quelques|plusieurs|\d+) "
                            r"(?:ans|mois|semaines)|autrefois|(?:a|ont|avait|avaient|ete|est|c est) (?:deja )?"
                            r"(?:repare|reparee|regle|reglee|resolu|resolue|arrange|fini|passe|eteint|remplace)|"
                            r"depuis (?:c est|tout) (?:rentre|regle)|tout est rentre dans l ordre)\b")),
    (Scope.OTHERS, re.compile(r"\b(?:(?:ma|mon|mes|notre|nos|la|le|les) (?:voisine?s?|voisins|cousine?|amie?s?|"
                              r"collegues?|parents|soeur|frere|beau frere|belle soeur) (?:a|ont|avait|avaient) eu|"
                              r"(?:dans|a) l immeuble d a cote|aux informations|a la tele)\b")),
    (Scope.HANDLED, re.compile(r"\b(?:pompiers (?:sont|ont|etaient|avaient|nous ont)|grdf (?:a|est|sont|etait)|"
                               r"enedis (?:a|est|sont|etait)|scelles?|(?:ont|a) tout (?:coupe|securise|eteint)|"
                               r"mis en securite|securise|c est securise|sont intervenus|est intervenu|"
                               r"sont deja (?:venus|passes|la))\b")),
    (Scope.PURCHASE, re.compile(r"\b(?:installer|installation|faire poser|poser un|poser une|"
                                r"remplacer (?:le|la|les|mon|ma|mes) detecteur|acheter|devis|contrat d entretien|"
                                r"entretien annuel|"
                                r"faire verifier|faire controler|faire un controle|mise aux normes|"
                                r"detecteur de (?:fumee|monoxyde|co|gaz) (?:a|pour)|renseignement)\b")),
)


def clauses(text: str) -> list[str]:
    """The folded clauses of an utterance."""
    parts = [fold(p) for p in re.split(r"[.;:!?,()]", text)]
    return [c.strip() for p in parts for c in CLAUSE_END.split(p) if c and c.strip()]


def scope_of(clause: str) -> Scope | None:
    """The first scope marker found in one folded clause, None when it speaks of here and now."""
    return next((s for s, pattern in MARKERS if pattern.search(clause)), None)


def in_scope(clause: str) -> tuple[str, Scope | None]:
    """What of one folded clause speaks of a danger here and now, and the scope of the rest. A
    marker puts what follows it out of scope ("ça sent le gaz j'ai peur que ça explose": the smell
    stays, which matters where the recogniser printed no punctuation); the past takes the whole
    clause ("il y a eu un incendie l'an dernier")."""
    found = [(m.start(), sc) for sc, pattern in MARKERS if (m := pattern.search(clause))]
    if not found:
        return clause, None
    start, sc = min(found)
    if any(s is Scope.PAST for _, s in found):
        return "", Scope.PAST
    return clause[:start].strip(), sc
