"""French understanding rules, one behaviour a row (agent/dialogue/text, places, names, times, heard, urgency)."""

from __future__ import annotations

from datetime import datetime, time

import pytest

from agent.dialogue.dialplan import builtin_dialplan
from agent.dialogue.heard import hear
from agent.dialogue.names import answered, introduced, spelled, with_surname
from agent.dialogue.places import address, communes, in_area, town_said
from agent.dialogue.state import Severity
from agent.dialogue.text import Phrase, digits, format_phone, is_mobile, phone_number, stems_of
from agent.dialogue.times import public_holidays, when
from agent.dialogue.urgency import assess

NOW = datetime.fromisoformat("2026-11-26T14:05:00+01:00")  # a Thursday
SUMMER = datetime.fromisoformat("2026-07-08T10:00:00+02:00")


@pytest.mark.parametrize(("said", "expected"), [
    ("quinze rue", "15 rue"), ("quatre vingt dix sept", "97"), ("soixante dix huit", "78"),
    ("deux cent trois", "203"), ("vingt et un", "21"), ("zero six douze", "06 12"), ("mille deux cents", "1200"),
    ("zéro six cinq cent soixante-dix", "06 570"),
])
def test_number_words(said: str, expected: str) -> None:
    assert digits(said) == expected


@pytest.mark.parametrize(("said", "e164"), [
    ("06 12 34 56 78", "+33612345678"), ("0612345678", "+33612345678"), ("+33 6 12 34 56 78", "+33612345678"),
    ("zéro six, douze, trente-quatre, cinquante-six, soixante-dix-huit", "+33612345678"),
    ("zero six douze trente quatre cinquante six soixante dix huit", "+33612345678"),
    ("zéro quatre quatre-vingt-treize, vingt, dix, zéro cinq", "+33493201005"),
    ("c'est le 04 93 20 10 05", "+33493201005"), ("pas de numéro", None), ("12 34", None),
    ("zéro six zéro zéro douze trente-quatre cinquante-six", "+33600123456"),  # a 00 pair, no country code
    ("plus trente-trois six douze trente-quatre cinquante-six soixante-dix-huit", "+33612345678"),
    # foreign numbers, said with their country code (words said after the number are not part of it)
    ("plus trente-deux quatre cent septante douze trente-quatre cinquante-six et j'habite au 12", "+32470123456"),
    ("zéro zéro quarante et un, soixante-dix-neuf, cent vingt-trois, quarante-cinq, soixante-sept", "+41791234567"),
    ("plus trois cent soixante-dix-sept six quarante douze trente-quatre cinquante-six", "+377640123456"),
    ("plus 44 12", None),  # too short to be anything: and never read as a French number
])
def test_phone_numbers(said: str, e164: str | None) -> None:
    assert phone_number(said) == e164


def test_phone_formatting_and_mobiles() -> None:
    assert format_phone("+33612345678") == "06 12 34 56 78"
    assert format_phone("+32470123456") == "+32 470 12 34 56"  # read back with its country code
    assert is_mobile("+33612345678") and is_mobile("+33756781234")
    assert not is_mobile("+33493201005") and not is_mobile(None)
    assert is_mobile("+590690123456")  # Guadeloupe: a French mobile
    assert not is_mobile("+447700900123") and not is_mobile("+4915112345678")  # foreign mobiles: never an SMS


@pytest.mark.parametrize(("said", "expected"), [
    ("15 rue Victor Hugo à Nice", "15 rue Victor Hugo, Nice"),
    ("quinze rue victor hugo a nice", "15 rue Victor Hugo, Nice"),
    ("c'est au 27 bis boulevard Gambetta 31000 Toulouse", "27 bis boulevard Gambetta, 31000 Toulouse"),
    ("15 av. Jean Médecin, Nice", "15 avenue Jean Médecin, Nice"),
    ("j'habite 3 allée des Tilleuls à Rennes, le tableau a disjoncté", "3 allée des Tilleuls, Rennes"),
    # towns of several words, the official spelling and the single postcode added
    ("10 chemin de la Fontette à Saint-Paul-de-Vence", "10 chemin de la Fontette, 06570 Saint-Paul-de-Vence"),
    ("dix chemin de la fontette a saint paul de vence", "10 chemin de la Fontette, 06570 Saint-Paul-de-Vence"),
    ("dix sept chemin de montessuy caluire et cuire", "17 chemin de Montessuy, 69300 Caluire-et-Cuire"),
    # a town heard approximately is the nearest real one
    ("5 rue des Remparts à saint paul de vance", "5 rue des Remparts, 06570 Saint-Paul-de-Vence"),
    # a postcode said as ASR prints it; a postcode that is not the town's is dropped
    ("trois rue centrale zéro six huit cents cagnes sur mer", "3 rue Centrale, 06800 Cagnes-sur-Mer"),
    ("3 rue Centrale, 75001 Cagnes-sur-Mer", "3 rue Centrale, 06800 Cagnes-sur-Mer"),
    # no pause before the town: a big town at the end of the street's words is the town...
    ("vingt quatre cours émile zola villeurbanne", "24 cours Émile Zola, 69100 Villeurbanne"),
    # ...but "de Paris" stays the street's name
    ("2 rue de Paris", "2 rue de Paris"),
    # ...nor after an adjective said before its noun: the commune Fontaine is not the town here
    ("18 rue de la Grande Fontaine", "18 rue de la Grande Fontaine"),
    ("dix huit rue de la grande fontaine nice", "18 rue de la Grande Fontaine, Nice"),
    ("5 avenue du Vieux Nice", "5 avenue du Vieux Nice"),
    ("erwan le gall neuf boulevard laennec rennes", "9 boulevard Laennec, Rennes"),
    ("près du marché", None),
])
def test_addresses(said: str, expected: str | None) -> None:
    got = address(said)
    assert (str(got) if got else None) == expected


@pytest.mark.parametrize(("said", "expected"), [
    ("Nice", "Nice"), ("à Nice 06300", "06300 Nice"), ("oui, c'est à Cagnes-sur-Mer", "06800 Cagnes-sur-Mer"),
    ("Grenoble", "Grenoble"),  # a big town elsewhere: the caller's, then out of the area
    ("non c'est faux", None),  # Faux (08), a small commune outside the area, is a word here
    ("oui c'est ça", None), ("oui", None), ("non", None), ("c'est bon", None), ("la mer", None),
])
def test_a_town_said_alone(said: str, expected: str | None) -> None:
    got = town_said(said, ["06"])
    assert (" ".join(p for p in (got.postcode, got.city) if p) if got else None) == expected


def test_areas_name_departments_or_towns() -> None:
    nice = communes().named("nice")
    marseille = communes().named("marseille")
    assert in_area(nice, ("06",)) and not in_area(marseille, ("06",))
    assert in_area(marseille, ("Nice", "Marseille")) and in_area(None, ("06",))
    # homonyms: the one in the area's departments wins
    assert communes().named("saint gregoire", ("35",)).department == "35"  # type: ignore[union-attr]


@pytest.mark.parametrize(("said", "expected"), [
    ("Je m'appelle Jean-Pierre Martin", "Jean-Pierre Martin"),
    ("Oui bonjour, c'est madame Lefèvre", "Lefèvre"),
    ("Bonjour, Madame Cornu à l'appareil.", "Cornu"),
    ("Bonjour, Arnaud Chabert, j'ai des spots qui clignotent", "Arnaud Chabert"),
    ("Marie Dubois", None),  # not asked, not introduced
    ("je suis devant chez moi", None),
    ("Excusez-moi de vous déranger, j'ai le ballon qui fuit", None),
    ("je vous appelle de la part de mon voisin", None),
    ("c'est la société Dumont", None),
])
def test_a_name_is_taken_unasked_only_when_introduced(said: str, expected: str | None) -> None:
    assert introduced(said) == expected


@pytest.mark.parametrize(("said", "expected"), [
    ("Marie Dubois", "Marie Dubois"), ("marie dubois", "Marie Dubois"),
    ("Monsieur Petit, Alain Petit", "Alain Petit"), ("monsieur petit alain petit", "Alain Petit"),
    ("Je suis sa fille, Nathalie Morvan", "Nathalie Morvan"),
    ("euh gisèle gisèle tanguy", "Gisèle Tanguy"),
    ("Charles de la Tour", "Charles de la Tour"), ("c'est Madame Caron", "Caron"),
    ("Stéphane Kowalczyk, K O W A L C Z Y K", "Stéphane Kowalczyk"),
    ("Stéphane Kovalchik, K O W A L C Z Y K", "Stéphane Kowalczyk"),
    ("bruno carré vingt deux allée de brienne", "Bruno Carré"),
    ("Bonjour, j'ai une fuite", None),
])
def test_names_when_asked(said: str, expected: str | None) -> None:
    assert answered(said) == expected


def test_spelling_corrects_the_surname_only() -> None:
    assert spelled("D U B O I S") == "Dubois" and spelled("D comme Denis, U, B, O, I, S") == "Dubois"
    assert spelled("Dubois") is None
    assert with_surname("Marie Duboi", "Dubois") == "Marie Dubois"
    assert with_surname("Mélanie Guérin", "Guerin") == "Mélanie Guérin"  # spelled the same: kept as said
    assert with_surname(None, "Dubois") == "Dubois"


@pytest.mark.parametrize(("said", "day", "start", "end"), [
    ("demain matin", "2026-11-27", time(8), time(12)),
    ("jeudi vers 14 h", "2026-12-03", time(13), time(15)),
    ("lundi après-midi", "2026-11-30", time(13, 30), time(18)),
    ("le 3 décembre", "2026-12-03", time(0), time(23, 59)),
    ("vendredi à 10h30", "2026-11-27", time(10, 30), time(11, 29)),
    ("mardi après 16 heures", "2026-12-01", time(16), time(23, 59)),
])
def test_dates_and_times(said: str, day: str, start: time, end: time) -> None:
    w = when(said, NOW)
    assert w is not None and str(w.day) == day and (w.start, w.end) == (start, end)


@pytest.mark.parametrize("said", ["depuis hier soir", "mon évier est bouché depuis hier soir", "depuis trois jours",
                                  "cette nuit le pin est tombé", "ça fait une semaine que ça goutte", "je ne sais pas"])
def test_durations_and_past_events_are_not_preferences(said: str) -> None:
    assert when(said, NOW) is None


def test_asap() -> None:
    w = when("dès que possible", NOW)
    assert w is not None and w.asap and w.day is None


def test_public_holidays_come_from_the_holidays_package() -> None:
    france = public_holidays("france", range(2026, 2027))
    alsace = public_holidays("alsace-moselle", range(2026, 2027))
    assert datetime(2026, 12, 25).date() in france and datetime(2026, 12, 26).date() not in france
    assert datetime(2026, 12, 26).date() in alsace and not public_holidays("none", range(2026, 2027))


@pytest.mark.parametrize(("said", "expected"), [
    ("oui", True), ("Oui, c'est ça", True), ("d'accord", True), ("tout à fait", True), ("non", False),
    ("Non, je ne sais pas où c'est", False), ("pas du tout", False), ("peut-être", None), ("euh", None),
])
def test_yes_no(said: str, expected: bool | None) -> None:
    assert hear(said, NOW).yes is expected


@pytest.mark.parametrize(("said", "question", "wants"), [
    ("je voulais savoir si vous intervenez le dimanche et combien coûte le déplacement", True, False),
    ("vous êtes ouverts le samedi", True, False),
    ("est-ce que vous réparez les chaudières de marque Frisquet", True, False),
    ("est-ce que vous pourriez me faire un devis pour refaire la salle de bain", True, True),
    ("vous pourriez venir voir pour élaguer deux platanes", True, True),
    ("mon évier est bouché", False, True),
])
def test_questions_are_known_by_their_form_without_a_question_mark(said: str, question: bool, wants: bool) -> None:
    h = hear(said, NOW)
    assert (h.question, h.request) == (question, wants)


def test_one_pass_gives_every_candidate() -> None:
    h = hear("Bonjour, je m'appelle Julie Fournier, j'habite 6 rue Rossini à Nice, rappelez-moi au 06 12 34 56 78 "
             "plutôt demain matin", NOW, ("06",))
    assert (h.introduced_name, str(h.address), h.phone) == ("Julie Fournier", "6 rue Rossini, Nice", "+33612345678")
    assert h.when is not None and str(h.when.day) == "2026-11-27"
    assert hear("ma mère a quatre-vingt-onze ans", NOW).ages == (91,)
    assert hear("un bébé de deux mois", NOW).small_child


def test_closings_corrections_wrong_numbers_and_spam() -> None:
    assert hear("Je ne sais pas", NOW).dont_know and not hear("oui", NOW).dont_know
    assert hear("non, Dubois avec un D", NOW).correction == "dubois"
    assert hear("non c'est le 17", NOW).correction == "le 17"
    assert hear("oui", NOW).correction is None
    assert hear("d'accord merci, je rappellerai", NOW).closing
    assert hear("je me suis trompé de numéro", NOW).wrong_number and not hear("j'ai une fuite", NOW).wrong_number
    assert hear("je voudrais vous proposer des panneaux solaires", NOW).spam
    assert hear("je vous appelle pour l'isolation à un euro", NOW).spam
    assert not hear("mon chauffe-eau fuit", NOW).spam


@pytest.mark.parametrize(("phrase", "said", "found"), [
    ("tuiles envolees", "des tuiles se sont envolées", True),  # inflection and words in between
    ("eau rentre", "l'eau qui rentre dans le salon", True),
    ("chaudiere en panne", "la chaudière est en panne", True),
    ("toit arrache", "le vent a arraché une partie du toit", True),  # any order
    ("coule*", "rien ne coule pour l'instant", False),  # negated
    ("ne s arrete pas", "ça ne s'arrête pas", True),
    ("plus d eau", "l'eau ne descend plus", False),  # "plus ..." phrases keep their order
    ("a la porte", "on a forcé la porte", False),  # a phrase of small words is matched word for word
    ("a la porte", "je suis à la porte", True),
    ("goutte*", "ma gouttière déborde", False),
])
def test_phrases_match_on_lemmas(phrase: str, said: str, found: bool) -> None:
    stems, folded = stems_of(said)
    assert (Phrase.of(phrase).find(stems, folded) is not None) is found


@pytest.mark.parametrize(("trade", "now", "said", "expected"), [
    # emergencies described by their effects, whatever the trade
    ("plombier", NOW, "ça sent très fort l'œuf pourri dans la cuisine", Severity.CRITICAL),
    ("plombier", NOW, "l'eau coule du plafond sur le lustre électrique", Severity.CRITICAL),
    ("chauffagiste", NOW, "il y a de la fumée qui sort du ballon", Severity.CRITICAL),
    ("vitrier", NOW, "mon petit garçon est enfermé dans la salle de bain", Severity.CRITICAL),
    ("couvreur", NOW, "un arbre est tombé et il est appuyé sur la ligne électrique", Severity.CRITICAL),
    ("plombier", NOW, "les eaux usées remontent dans la douche", Severity.CRITICAL),
    ("couvreur", NOW, "des tuiles se sont envolées et il pleut dans la chambre", Severity.CRITICAL),
    # a vulnerable person in a cold home, and the same home in summer or with nobody vulnerable
    ("electricien", NOW, "plus de courant et un bébé de deux mois à la maison", Severity.CRITICAL),
    ("electricien", SUMMER, "plus de courant et un bébé de deux mois à la maison", Severity.URGENT),
    ("chauffagiste", NOW, "ma mère a quatre-vingt-onze ans et la chaudière est en panne", Severity.CRITICAL),
    ("chauffagiste", NOW, "la chaudière est en panne", Severity.URGENT),
    ("chauffagiste", SUMMER, "la chaudière est en panne", Severity.NORMAL),
    # one appliance tripping the breaker is not a home without power
    ("electricien", NOW, "quand je branche la bouilloire ça fait sauter le disjoncteur", Severity.NORMAL),
    ("electricien", NOW, "tout a sauté, plus de courant dans la maison", Severity.URGENT),
    ("couvreur", NOW, "il y a une tache au plafond quand il pleut", Severity.URGENT),
])
def test_urgency(trade: str, now: datetime, said: str, expected: Severity) -> None:
    assert assess(builtin_dialplan(trade), now, [hear(said, now)], {}).severity is expected


def test_a_check_answer_never_lowers_what_was_said() -> None:
    plan = builtin_dialplan("chauffagiste")
    heard = [hear("ma mère a quatre-vingt-onze ans et la chaudière est en panne", NOW)]
    # The vulnerability check answered "no" after the caller said so: still critical.
    assert assess(plan, NOW, heard, {"plus-de-chauffage-hiver": Severity.URGENT}).severity is Severity.CRITICAL
