"""French understanding rules, one behaviour a row."""

from __future__ import annotations

from datetime import datetime, time

import pytest

from agent.dialogue.understand import (
    address,
    correction,
    dont_know,
    fold,
    person_name,
    phone_number,
    spam,
    spelled,
    when,
    words_to_digits,
    wrong_number,
    yes_no,
)

NOW = datetime.fromisoformat("2026-11-26T14:05:00+01:00")  # a Thursday


@pytest.mark.parametrize(("said", "digits"), [
    ("quinze rue", "15 rue"), ("quatre vingt dix sept", "97"), ("soixante dix huit", "78"),
    ("deux cent trois", "203"), ("vingt et un", "21"), ("zero six douze", "0 6 12"), ("mille deux cents", "1200"),
])
def test_number_words(said: str, digits: str) -> None:
    assert words_to_digits(said) == digits


@pytest.mark.parametrize(("said", "e164"), [
    ("06 12 34 56 78", "+33612345678"), ("0612345678", "+33612345678"), ("+33 6 12 34 56 78", "+33612345678"),
    ("zéro six, douze, trente-quatre, cinquante-six, soixante-dix-huit", "+33612345678"),
    ("zéro quatre quatre-vingt-treize, vingt, dix, zéro cinq", "+33493201005"),
    ("c'est le 04 93 20 10 05", "+33493201005"), ("pas de numéro", None), ("12 34", None),
])
def test_phone_numbers(said: str, e164: str | None) -> None:
    assert phone_number(said) == e164


@pytest.mark.parametrize(("said", "expected"), [
    ("15 rue Victor Hugo à Nice", "15 rue Victor Hugo, Nice"),
    ("quinze rue victor hugo a nice", "15 rue Victor Hugo, Nice"),
    ("c'est au 27 bis boulevard Gambetta 31000 Toulouse", "27 bis boulevard Gambetta, 31000 Toulouse"),
    ("15 av. Jean Médecin, Nice", "15 avenue Jean Médecin, Nice"),
    ("j'habite 3 allée des Tilleuls à Rennes, le tableau a disjoncté", "3 allée des Tilleuls, Rennes"),
    ("près du marché", None),
])
def test_addresses(said: str, expected: str | None) -> None:
    got = address(said)
    assert (str(got) if got else None) == expected


@pytest.mark.parametrize(("said", "asked", "expected"), [
    ("Je m'appelle Jean-Pierre Martin", False, "Jean-Pierre Martin"),
    ("Oui bonjour, c'est madame Lefèvre", False, "Lefèvre"),
    ("Marie Dubois", True, "Marie Dubois"),
    ("marie dubois", True, "Marie Dubois"),
    ("Marie Dubois", False, None),
    ("Bonjour, j'ai une fuite", True, None),
    ("Charles de la Tour", True, "Charles de la Tour"),
])
def test_names(said: str, asked: bool, expected: str | None) -> None:
    assert person_name(said, asked=asked) == expected


@pytest.mark.parametrize(("said", "expected"), [
    ("D U B O I S", "Dubois"), ("D comme Denis, U, B, O, I, S", "Dubois"), ("Dubois", None),
])
def test_spelled_names(said: str, expected: str | None) -> None:
    assert spelled(said) == expected


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


def test_asap_and_nothing() -> None:
    w = when("dès que possible", NOW)
    assert w is not None and w.asap and w.day is None
    assert when("je ne sais pas", NOW) is None


@pytest.mark.parametrize(("said", "expected"), [
    ("oui", True), ("Oui, c'est ça", True), ("d'accord", True), ("tout à fait", True), ("non", False),
    ("Non, je ne sais pas où c'est", False), ("pas du tout", False), ("peut-être", None), ("euh", None),
])
def test_yes_no(said: str, expected: bool | None) -> None:
    assert yes_no(fold(said)) is expected


def test_dont_know_corrections_wrong_numbers_and_spam() -> None:
    assert dont_know(fold("Je ne sais pas")) and dont_know(fold("aucune idée")) and not dont_know(fold("oui"))
    assert correction("non, Dubois avec un D") == "dubois"
    assert correction("non c'est le 17") == "le 17"
    assert correction("oui") is None
    assert wrong_number(fold("je me suis trompé de numéro")) and not wrong_number(fold("j'ai une fuite"))
    assert spam(fold("je voudrais vous proposer des panneaux solaires")) and not spam(fold("mon chauffe-eau fuit"))
