"""Issue 21: emergencies recognised in words nobody here wrote.

The learned severity layer (agent/dialogue/severity.py) is measured across writers: trained on all
writers but one, scored on the one left out (tests/crosswriter.py). The floors below are the
issue's: a change that lets the receptionist miss more emergencies after one question, or put
through more calls that are not, fails here.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from datetime import datetime

import numpy as np
import pytest

from agent.dialogue.chat import asr_form
from agent.dialogue.dialplan import builtin_dialplan
from agent.dialogue.phrases import SAFETY_QUESTIONS
from agent.dialogue.policy import Conversation
from agent.dialogue.scope import Scope, clauses, in_scope
from agent.dialogue.severity import ARTEFACT, VECTORIZERS, _analyzer, default_model
from agent.dialogue.state import Action, Ask, Hazard, Severity
from tests.crosswriter import CORPUS, FORMS, corpus_items, cross_writer, project_items, train

NOW = datetime.fromisoformat("2026-12-02T10:00:00+01:00")
RECALL_AFTER_ONE_QUESTION = 0.95
FALSE_CRITICAL = 0.08


def _conv(trade: str) -> Conversation:
    conv = Conversation(builtin_dialplan(trade), NOW, "+33612345678")
    conv.start()
    return conv


def _say(conv: Conversation, *turns: str) -> list[str]:
    return [asyncio.run(conv.turn(t)) for t in turns]


@pytest.mark.solo  # a minute of both cores training and playing (a fold per core): not beside the live calls
@pytest.mark.timeout(1200)
def test_across_writers_the_receptionist_catches_emergencies_and_few_others() -> None:
    """Every writer scored by a model that never read it, typed and as the recogniser prints."""
    assert sorted(CORPUS.glob("openings-*.yaml")), f"the outside corpus is missing: {CORPUS}"
    result = cross_writer(with_rules=False)
    print("\n" + "\n".join(result.lines))
    for form in FORMS:
        r = result.model[form].ratios()
        assert r["after"] >= RECALL_AFTER_ONE_QUESTION, (form, r)
        assert r["false_critical"] <= FALSE_CRITICAL, (form, r)


def test_the_committed_model_is_what_make_train_writes() -> None:
    """The artefact is the model trained on every writer (the box has no corpus to train on)."""
    with gzip.open(ARTEFACT, "rt", encoding="utf-8") as fh:
        committed = json.load(fh)
    items = corpus_items() + project_items()
    fresh = train(items, committed["trained_on"])
    assert [v["vocabulary"] for v in fresh["vectorizers"]] == [v["vocabulary"] for v in committed["vectorizers"]]
    for key in ("urgency", "hazard"):
        assert fresh[key]["classes"] == committed[key]["classes"]  # type: ignore[index]
        assert np.allclose(fresh[key]["coef"], committed[key]["coef"], atol=1e-3)  # type: ignore[index]


def test_the_model_reads_as_scikit_learn_computes_and_within_its_budget() -> None:
    """Our numpy reading of the plain-data artefact gives scikit-learn's own features, in < 20 ms."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    model = default_model()
    with gzip.open(ARTEFACT, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    texts = [it.text for it in project_items()[:40]]
    vecs = []
    for params, saved in zip(VECTORIZERS, data["vectorizers"], strict=True):
        v = TfidfVectorizer(**{k: tuple(x) if isinstance(x, list) else x for k, x in params.items()},
                            vocabulary=saved["vocabulary"])
        v.fit(texts)  # the artefact's vocabulary, then its weights
        v.idf_ = np.asarray(saved["idf"])
        vecs.append(v)
    want = hstack([v.transform(texts) for v in vecs]).toarray()
    got = np.stack([model.vector(t) for t in texts])
    assert np.allclose(want, got, atol=1e-9)
    started = time.perf_counter()
    for t in texts:
        model.read(t)
    assert (time.perf_counter() - started) / len(texts) < 0.020
    gas = model.read("Ça sent le gaz très fort dans la cuisine, j'ai peur que ça explose")
    assert gas.critical > 0.7 and gas.hazard is Hazard.GAS
    assert model.read("Je voudrais un devis pour repeindre mon portail").critical < 0.1


def test_the_analyzers_are_scikit_learns_on_every_text_of_the_corpus() -> None:
    """The run time tokenises without importing scikit-learn (1 s of every start): the same n-grams."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [t for it in corpus_items() + project_items() for t in (it.text, asr_form(it.text))]
    texts += ["", "  ", "a", "Ça  coule\tÉNORMÉMENT !!", "œuf ﬁn Å ñ 3e étage", "l'eau   d'à-côté"]
    for params in VECTORIZERS:
        theirs = TfidfVectorizer(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
                                 ).build_analyzer()
        ours = _analyzer(params)
        for text in texts:
            assert ours(text) == theirs(text), (params["analyzer"], text)


def test_scope_is_read_in_the_clause_where_the_danger_word_stands() -> None:
    def scope(text: str) -> list[Scope | None]:
        return [in_scope(c)[1] for c in clauses(text)]

    assert scope("J'ai peur qu'un jour ça prenne feu") == [Scope.FEARED]
    assert scope("Il y a eu un incendie l'an dernier, mais là ça refume") == [Scope.PAST, None]
    assert scope("Ma voisine a eu un incendie, je voudrais faire vérifier") == [Scope.OTHERS, Scope.PURCHASE]
    assert scope("GRDF a mis les scellés") == [Scope.HANDLED]
    assert scope("Le plafond il est pas tombé mais il fait une poche") == [Scope.NEGATED, None]
    assert scope("Je voudrais installer un détecteur de fumée") == [Scope.PURCHASE]
    assert scope("Ça vient de chez le voisin du dessus et ça coule sur les prises") == [None]
    # No punctuation (as the recogniser prints): what precedes the marker stays in scope.
    assert in_scope("ca sent le gaz tres fort j ai peur que ca explose") == ("ca sent le gaz tres fort j ai",
                                                                             Scope.FEARED)


@pytest.mark.parametrize("said", [
    "Ma voisine a eu un incendie la semaine dernière, je voudrais faire vérifier mon installation",
    "GRDF est passé ce matin, ils ont coupé le gaz et mis les scellés, il faut réparer le raccord",
    "Je voudrais faire installer un détecteur de fumée dans le couloir",
    "J'ai peur qu'un jour la branche tombe sur le garage, il faudrait l'élaguer",
])
def test_danger_words_out_of_scope_do_not_put_a_call_through(said: str) -> None:
    conv = _conv("electricien" if "fumée" in said or "incendie" in said else
                 "chauffagiste" if "GRDF" in said else "paysagiste")
    _say(conv, said)
    assert conv.urgency is not Severity.CRITICAL and conv.outcome.action is not Action.TRANSFER


def test_an_unclear_answer_to_a_water_question_is_the_danger_not_a_misunderstanding() -> None:
    """"J'ai fermé le robinet général, mais ça change rien, c'est les eaux sales" to "Avez-vous pu
    couper l'arrivée d'eau ?" gave "je n'ai pas bien compris" three times, then a voice message."""
    conv = _conv("plombier")
    replies = _say(conv, "Il y a une fuite importante sous l'évier, ça coule beaucoup",
                   "Marie Dubois, 15 rue Victor Hugo à Nice.")
    assert conv.pending is not None and conv.pending.kind is Ask.CHECK and "couper" in replies[-1], replies
    reply = _say(conv, "J'ai fermé le robinet général, mais ça change rien, c'est les eaux sales")[0]
    assert "pas bien compris" not in reply
    assert conv.urgency is Severity.CRITICAL and conv.outcome.action is Action.TRANSFER


def test_someone_vulnerable_named_in_the_answer_about_people_is_a_yes() -> None:
    """The question about people answered with a child's age ("mon fils a douze ans" was read as no)."""
    conv = _conv("serrurier")
    conv.pending = None
    asked = SAFETY_QUESTIONS[Hazard.PERSON]
    from agent.dialogue.lead import Pending

    conv.asked.add(Ask.DANGER)
    conv.pending = Pending(Ask.DANGER, hazard=Hazard.PERSON)
    _say(conv, "Mon bébé de huit mois est tout seul à l'intérieur")
    assert conv.checks and conv.urgency is Severity.CRITICAL, asked.text


def test_a_critical_call_is_never_booked_and_urgency_is_never_lowered_but_by_the_caller() -> None:
    # After hours with no transfer allowed: a critical call ends as a message, never a booking.
    night = datetime.fromisoformat("2026-12-05T23:30:00+01:00")  # a Saturday night
    plan = builtin_dialplan("plombier")
    import dataclasses

    plan = dataclasses.replace(plan, transfer=dataclasses.replace(plan.transfer, after_hours=False),
                               after_hours_action=Action.BOOKING)
    conv = Conversation(plan, night, "+33612345678")
    conv.start()
    turns = ["Un tuyau a éclaté, l'eau gicle partout et je n'arrive pas à couper l'eau, ça coule sur les prises",
             "Marie Dubois", "15 rue Victor Hugo à Nice", "oui c'est ça", "le premier", "le premier"]
    for t in turns:
        if not conv.done:
            _say(conv, t)
    assert conv.urgency is Severity.CRITICAL and conv.outcome.action is Action.MESSAGE
    assert conv.outcome.booking is None
    # A later turn that sounds calm does not lower it; the caller's own correction does.
    conv = _conv("plombier")
    _say(conv, "Ça sent le gaz très fort dans la cuisine")
    assert conv.urgency is Severity.CRITICAL
    calm = _conv("plombier")
    _say(calm, "Il y a une grosse fuite d'eau sous l'évier, ça coule partout")
    before = calm.urgency
    _say(calm, "Jean Martin, 12 rue de la République à Nice")
    assert calm.urgency.rank >= before.rank
    corrected = _conv("electricien")
    _say(corrected, "La lumière de la cuisine grésille et j'ai un peu peur")
    _say(corrected, "Non, en fait ce n'est pas urgent, ça s'est arrêté")
    assert corrected.urgency is Severity.NORMAL


def test_safety_advice_only_for_the_hazard_recognised() -> None:
    """A cold water heater with no leak got the electrical safety advice and a transfer."""
    conv = _conv("plombier")
    reply = _say(conv, "Mon chauffe-eau ne chauffe plus, l'eau est froide, il n'y a pas de fuite")[0]
    assert "électrique" not in reply and conv.outcome.action is not Action.TRANSFER
    gas = _conv("chauffagiste")
    reply = _say(gas, "Ça sent très fort le gaz près de la chaudière, ça empeste l'œuf pourri")[0]
    assert "gaz" in reply.lower() and "électrique" not in reply
