"""Every fixed sentence the receptionist says, in one place (caller-facing text is French).

The live call renders each of these ahead of time (per dialplan, see session/phrasebook.py), so they
play with no synthesis delay; a reply is spoken sentence by sentence, and a sentence found here is
never synthesised during the call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from agent.dialogue.state import Hazard

if TYPE_CHECKING:
    from agent.dialogue.dialplan import Dialplan

FIELD: Final = re.compile(r"\{\w+\}")
"""A template's field: its sentence holds caller data, synthesised when said. A caller-facing template
opens with a sentence without one ("Je peux vous proposer un passage :", "C'est réservé :"), which is
rendered ahead of time: the reply's first sound never waits for the voice (tests/unit/test_phrases.py)."""

GOODBYE: Final = "Merci, bonne journée, au revoir."
STILL_THERE: Final = "Vous êtes toujours là ?"
NOT_UNDERSTOOD: Final = "Excusez-moi, je n'ai pas bien compris."
TAKE_MESSAGE: Final = ("Je vais prendre un message pour l'artisan, il vous rappellera. "
                       "Dites-moi en quelques mots votre demande, votre nom et votre adresse.")
MESSAGE_TAKEN: Final = "C'est noté, l'artisan vous rappellera au plus vite."
TRANSFER: Final = "C'est une urgence : je vous passe l'artisan immédiatement, ne quittez pas."
TRANSFER_ON_REQUEST: Final = "Je vous passe l'artisan, ne quittez pas."
TRANSFER_FAILED: Final = ("L'artisan ne peut pas vous répondre pour le moment. Après le bip, laissez votre "
                          "message : il l'aura tout de suite et vous rappellera au plus vite.")
NOT_REACHED: Final = "L'artisan ne peut pas vous répondre pour le moment."
HEAR_NOTHING: Final = "Je n'entends plus rien. Si besoin, rappelez-nous."
QUESTION_PASSED_ON: Final = "Je transmettrai votre question à l'artisan."
NO_SLOT_SOON: Final = ("Je n'ai pas de créneau libre rapidement : l'artisan vous rappellera pour convenir "
                       "d'un passage.")
NO_SLOT_THEN: Final = "Je n'ai rien de libre à ce moment-là. Quel autre jour vous arrangerait ?"
AGENDA_UNAVAILABLE: Final = ("Je ne peux pas consulter l'agenda de l'artisan en ce moment : il vous rappellera "
                              "pour fixer le rendez-vous.")
SLOT_JUST_TAKEN: Final = "Ce créneau vient d'être pris."
CALL_BACK_FOR_BOOKING: Final = "L'artisan vous rappellera pour convenir d'un rendez-vous."
CRITICAL_CALL_BACK: Final = "C'est noté, c'est une urgence : l'artisan est prévenu et vous rappellera au plus vite."
SMS_CONFIRMATION: Final = "Vous allez recevoir une confirmation par SMS."
ASK_NAME_ADDRESS_FIRST: Final = ("Je comprends, je m'en occupe tout de suite. "
                                 "Pouvez-vous me donner votre nom et votre adresse ?")
ASK_ADDRESS_FIRST: Final = "Je comprends, je m'en occupe tout de suite. Pouvez-vous me donner votre adresse ?"
NOT_INTERESTED: Final = "Merci, mais cela ne nous intéresse pas."
CRITICAL_ASK: Final = {
    ("name", "address"): "Votre nom et l'adresse exacte, pour que l'artisan puisse venir ?",
    ("address",): "L'adresse exacte, pour que l'artisan puisse venir ?",
    ("name",): "Votre nom, pour que l'artisan sache qui il rappelle ?",
}
"""The one question before a critical transfer (never more than one turn before it starts)."""
DANGER_CHECK: Final = ("Y a-t-il un danger immédiat : odeur de gaz, fumée, eau sur l'électricité, ou une personne "
                       "fragile ou bloquée ?")
"""Asked once when words of possible danger were said but no emergency was recognised, and no
learned layer names the hazard (the rules alone)."""


@dataclass(frozen=True)
class SafetyQuestion:
    """One short yes/no question about one hazard, asked when the danger is possible, not certain."""

    text: str
    danger_if_yes: bool = True
    """"Oui" means the danger is there (False: "Avez-vous pu couper l'eau ?", where "non" is)."""


SAFETY_QUESTIONS: Final = {
    Hazard.GAS: SafetyQuestion("Sentez-vous une odeur de gaz ou de fioul en ce moment ?"),
    Hazard.CO: SafetyQuestion("Quelqu'un a-t-il mal à la tête ou des nausées, ou un détecteur sonne-t-il ?"),
    Hazard.FIRE: SafetyQuestion("Voyez-vous des flammes ou de la fumée en ce moment ?"),
    Hazard.ELECTRIC_WATER: SafetyQuestion("L'eau touche-t-elle des prises, des fils ou une lampe ?"),
    Hazard.ELECTRIC: SafetyQuestion("Quelqu'un a-t-il pris une décharge, ou des fils électriques sont-ils à nu ?"),
    Hazard.WATER: SafetyQuestion("Avez-vous pu couper l'arrivée d'eau ?", danger_if_yes=False),
    Hazard.SEWAGE: SafetyQuestion("Les eaux sales débordent-elles dans le logement en ce moment ?"),
    Hazard.STRUCTURE: SafetyQuestion("Quelque chose risque-t-il de tomber ou de s'effondrer sur quelqu'un ?"),
    Hazard.PERSON: SafetyQuestion("Quelqu'un est-il blessé, bloqué ou en danger en ce moment ?"),
    Hazard.SECURITY: SafetyQuestion("Le logement reste-t-il ouvert, sans pouvoir être fermé ?"),
}
"""Asked once at most each; an unclear answer counts as the danger (safety first)."""

SAFETY_ADVICE: Final = {
    Hazard.GAS: "N'allumez rien, n'actionnez aucun interrupteur, aérez et sortez du logement.",
    Hazard.CO: "Aérez, éteignez la chaudière et sortez tous à l'air libre ; si quelqu'un se sent mal, appelez le 15.",
    Hazard.FIRE: "Si le feu prend, sortez et appelez le 18.",
    Hazard.ELECTRIC_WATER: "Ne touchez à rien d'électrique et coupez le courant au disjoncteur si vous pouvez "
                           "le faire au sec.",
    Hazard.ELECTRIC: "Ne touchez ni les fils ni la personne s'il y a encore du courant ; coupez le disjoncteur "
                     "général si vous le pouvez.",
    Hazard.WATER: "Coupez l'arrivée d'eau générale si vous le pouvez, près du compteur.",
    Hazard.SEWAGE: "N'utilisez plus l'eau ni les toilettes en attendant l'artisan.",
    Hazard.STRUCTURE: "Éloignez tout le monde de la zone qui risque de tomber.",
    Hazard.PERSON: "Si quelqu'un est blessé ou en danger, appelez aussi le 112.",
    Hazard.SECURITY: "Restez en sécurité et ne touchez à rien avant l'arrivée de l'artisan.",
}
"""Said before the transfer when the hazard is the learned layer's and no trigger gave its own advice."""
OFFER_HELP: Final = "Souhaitez-vous que je prenne votre demande pour l'artisan ?"
OUT_OF_AREA: Final = ("Je suis désolé : nous n'intervenons pas à {town}. Je transmets tout de même votre demande "
                      "à l'artisan, qui pourra vous conseiller.")
WHAT_TO_FIX: Final = "Pardon. Qu'est-ce qui n'est pas juste : l'adresse ou le numéro ?"
RECAP: Final = "Je récapitule : {items}. C'est bien ça ?"
WRONG_NUMBER: Final = "Pas de souci. Vous êtes chez {business}, {trade}."
CALL_BACK: Final = "C'est noté. L'artisan vous rappellera {when}."
CALL_BACK_WHEN: Final = {True: "au plus vite", False: "dès la réouverture"}
"""When the artisan calls back: open now, or closed."""
URGENT_LEAD: Final = "C'est urgent : "
OFFER_ONE: Final = "Je peux vous proposer un passage : {slot}. Cela vous convient-il ?"
OFFER_MANY: Final = "Je peux vous proposer un passage : {slots}. Lequel vous convient ?"
BOOKED: Final = "C'est réservé : {slot}."
UPCOMING: Final = "Vous avez rendez-vous {slot}. Voulez-vous le déplacer ou l'annuler ?"
UPCOMING_AGAIN: Final = "Voulez-vous déplacer votre rendez-vous, l'annuler, ou est-ce pour autre chose ?"
UPCOMING_CANCELLED: Final = "C'est noté : votre rendez-vous {slot} est annulé. L'artisan est prévenu."
UPCOMING_KEPT: Final = "Parfait : votre rendez-vous {slot} est maintenu."
ACKNOWLEDGEMENTS: Final = ("D'accord.", "Je note.")
"""Played when a reply is not ready within the dead-air budget after the caller stops speaking."""

# Message mode (no speech recognition, or an engine failed): a voice message, never silence.
MESSAGE_MODE_PROMPT: Final = ("Après le bip, laissez votre nom, votre adresse et votre demande. "
                              "L'artisan vous rappellera au plus vite.")
MESSAGE_MODE_GOODBYE: Final = ("Merci, votre message est bien enregistré. L'artisan vous rappelle au plus vite. "
                               "Au revoir.")
ENGINE_FAILED: Final = "Excusez-moi, je rencontre un problème technique. Je vais prendre votre message."
FALLBACK: Final = (
    "Bonjour. Notre assistant est indisponible pour le moment. "
    "Après le bip, laissez votre nom, votre numéro et votre message, qui sera enregistré. "
    "L'artisan vous rappellera."
)
"""Played by Asterisk's dialplan itself when the controller is down (extensions.conf, `fallback`)."""

# Said to the artisan when they pick up a transfer (attended mode).
WHISPER_KEYS: Final = "Appuyez sur 1 pour prendre l'appel, ou sur 2 pour le refuser."
WHISPER: Final = "Appel {urgency} de Standardiste. {problem}. {name}. {address}. " + WHISPER_KEYS
WHISPER_URGENCY: Final = {"critical": "très urgent", "urgent": "urgent", "normal": "d'un client"}


def out_of_area(town: str) -> str:
    return OUT_OF_AREA.format(town=town or "cette adresse")


def recap(name: str | None, address: str | None, phone: str | None) -> str:
    """One confirmation for what the artisan needs to come and to call back."""
    from agent.dialogue.text import format_phone

    items = [x for x in (name, address) if x]
    if phone:
        items.append(f"l'artisan vous rappellera au {format_phone(phone)}")
    return RECAP.format(items=", ".join(items) if len(items) < 2 else ", ".join(items[:-1]) + ", et " + items[-1])


def whisper(urgency: str, problem: str | None, name: str | None, address: str | None) -> str:
    return WHISPER.format(urgency=WHISPER_URGENCY.get(urgency, "d'un client"),
                          problem=problem or "Problème non précisé", name=name or "Nom non donné",
                          address=address or "Adresse non donnée")


def first_texts(plan: Dialplan) -> list[str]:
    """What every call of this dialplan starts with, the acknowledgements that cover a slow reply,
    and the voice message any call falls back to when an engine fails (none of these may wait for a
    voice that may be the one failing or busy): rendered before the service takes calls."""
    return [plan.greeting, plan.fields[0].question if plan.fields else "", *ACKNOWLEDGEMENTS, ENGINE_FAILED,
            MESSAGE_MODE_PROMPT, MESSAGE_MODE_GOODBYE]


def fixed_texts(plan: Dialplan) -> list[str]:
    """Every sentence this dialplan can make the receptionist say that holds no caller data: what
    the live call renders ahead of time (agent/session/phrasebook.py). The templates come whole:
    their sentences without a field ("Je récapitule :", "C'est bien ça ?") are rendered, so that a
    reply starting with one plays at once; a sentence with a field is synthesised when said."""
    texts = [plan.greeting, *(f.question for f in plan.fields), *(item.answer for item in plan.faq)]
    for trig in plan.triggers:
        texts += [t for t in (trig.advice, trig.check.question if trig.check else None) if t]
    texts += [v for k, v in globals().items() if k.isupper() and isinstance(v, str)]
    texts += list(ACKNOWLEDGEMENTS) + list(CRITICAL_ASK.values())
    texts += [q.text for q in SAFETY_QUESTIONS.values()] + list(SAFETY_ADVICE.values())
    return texts
