"""Whether the words heard so far already answer the question pending: the dialogue's half of the
end-of-turn decision (the other half is the sound of the utterance, audio/turn_model.py).

A yes or no with its word after it ("oui merci", "non c'est tout"), a first name and surname to
"votre nom ?", a complete phone number, an address with its town, a slot's choice and "ça me va":
the caller has said what was asked, and the reply can start after a short pause instead of the long
one. Anything else (a problem being described, a name half said, "c'est au quinze rue...") is not
complete: the long pause stands.

A lone word is half an answer. The outside callers (../shared/corpus, personas by other writers)
never stop at a lone "oui" or "non": none of their 156 answers to yes/no questions (safety checks,
the number's check, a slot offered), and 132 are "Oui," or "Non," then more ("Oui, le premier,
ça me va.", "Non, personne n'est blessé."), a comma's pause after the first word; none of their 55
answers to "votre nom ?" is a single word ("Lebrun. Gaston Lebrun.": the surname, then the whole).
A civility and a surname is half a name as often as not: of their four, two went on with the whole
name ("Monsieur Petit, | Alain Petit.", "C'est Madame Perret. | Jacqueline Perret."), two stopped
("Madame Roussot."). A slot's choice is not the end of their answer either: 53 of their 55 answers
to a slot offer choose "le premier" and 52 go on after it, 25 after a comma ("Oui, le premier, | ça
me va.", "Oui, le premier, | mais venez vite"), 27 in the same sentence ("le premier créneau que vous
proposez me convient", one writer's); the choice ends the turn early only once an acceptance closes
it. A lone "oui", "non", "Jean" or "Madame Vidal" waits for the long pause; "Jean Martin" does not.
`python -m tests.pausepoints` measures where these callers pause inside their answers and how often
the words would end the turn there (part of `make understanding`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from agent.dialogue.heard import Expect, hear
from agent.dialogue.state import Ask

YES_NO: Final = frozenset({Ask.RECAP, Ask.DANGER, Ask.CHECK, Ask.MORE})
"""Questions a bare "oui" or "non" answers."""
BARE: Final = 4
"""Words at most in a bare answer ("oui", "non merci", "oui c'est bien ça"): more words may go on."""
BARE_NO: Final = 2
"""Words at most in a bare no ("non", "non merci", "pas du tout" is three: it waits)."""
BUT: Final = frozenset({"mais", "sauf", "juste", "seulement", "plutot", "sinon", "enfin"})
"""A yes or no with one of these goes on ("oui mais le numéro...")."""
HANGING: Final = frozenset({"et", "ou", "mais", "de", "du", "des", "le", "la", "les", "au", "aux", "a", "en",
                            "sur", "rue", "avenue", "boulevard", "chemin", "c", "est", "je", "j", "euh", "donc",
                            "alors", "parce", "que", "qui", "avec", "pour", "mon", "ma", "mes", "un", "une"})
"""Last words that leave a sentence hanging: the caller is not done whatever was heard before."""
ACCEPTED: Final = frozenset({"merci", "parfait", "parfaitement", "bien", "va", "ira", "super", "accord", "arrange",
                            "convient", "bon", "ok", "okay", "impeccable", "nickel", "entendu", "top", "genial"})
"""Last words of an acceptance ("ça me va", "très bien", "merci", "d'accord"): a slot's choice followed
by one is a whole answer; a choice alone ("le premier") is often followed by one."""
PARTICLES: Final = frozenset({"le", "la", "de", "du", "des", "d", "van", "von", "del", "da", "di"})
"""A surname's particles ("Le Goff", "de la Tour"): not a first name."""


def _lone(text: str) -> bool:
    """One word said, perhaps repeated ("oui", "non, non", "d'accord"): the caller may go on."""
    return len({w.strip(".,;:!?…").lower() for w in text.split()} - {""}) <= 1


def _whole_name(name: str | None) -> bool:
    """A first name and a surname: two words besides a civility and a surname's particles ("Jean
    Martin", "Yannick Le Bihan"); "Madame Vidal", "Monsieur Le Goff" are a surname alone."""
    words = [w for w in (name or "").lower().split() if w not in PARTICLES]
    return len(words) >= 2


def checkable(expect: Expect) -> bool:
    """Whether the words can tell a complete answer to this question (else only the sound can)."""
    return expect.kind in YES_NO or expect.kind in (Ask.SLOT, Ask.NAME_ADDRESS, Ask.CRITICAL) or (
        expect.kind is Ask.FIELD and expect.field in ("name", "phone", "address"))


def hanging(text: str) -> bool:
    """The words so far stop on a word that leaves the sentence open ("et", "c'est au", "rue"), or on
    a single letter (a name being spelled, "d u b")."""
    words = text.lower().replace("'", " ").replace("’", " ").split()
    last = words[-1].strip(".,;:!?") if words else ""
    return not last or last in HANGING or len(last) == 1


def answers(expect: Expect, text: str, now: datetime) -> bool:
    """True when `text` (the recogniser's words so far) is a complete answer to `expect`."""
    if hanging(text):
        return False
    h = hear(text, now)
    kind, field = expect.kind, expect.field
    if kind is Ask.RECAP and (h.phone is not None or (h.address is not None and h.address.city is not None)):
        return True  # a correction given whole: "non, rappelez-moi au 06 45 12 34 56"
    if kind in YES_NO:
        if _lone(text):
            return False
        # "oui c'est bien ça" is done. To the recap, a "non" is followed by the correction ("Non, |
        # rappelez-moi au..."): Silero hears the comma's pause as one (200 ms), and a turn ended there
        # had the caller talked over; a bare "non" alone waits the hangover, then what is wrong is asked.
        return (h.yes is True and len(text.split()) <= BARE and not BUT & set(h.tokens)) or (
            h.yes is False and len(text.split()) <= BARE_NO and kind is not Ask.RECAP)
    if kind is Ask.SLOT:
        from agent.dialogue.slots import pick

        return bool(expect.offered) and pick(text, expect.offered, now) is not None and len(h.tokens) <= 10 \
            and bool(h.tokens) and h.tokens[-1] in ACCEPTED
    if kind is Ask.FIELD and field == "name":
        return _whole_name(h.name) and h.address is None and len(h.tokens) <= 5
    if kind is Ask.FIELD and field == "phone":
        return h.phone is not None
    if (kind is Ask.FIELD and field == "address") or kind is Ask.NAME_ADDRESS or kind is Ask.CRITICAL:
        return h.address is not None and h.address.city is not None
    return False
