"""The topic classifier: trained on the knowledge base's variants only, used without
scikit-learn at answer time, and measured on personas written after it was built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from bot.qa import QAService
from bot.qa.classifier import features, train
from bot.qa.textnorm import scorer_normalize
from tests.qa.scoring import score_set

ROOT = Path(__file__).resolve().parents[2]
BANK = Path(__file__).parent / "bank"


def test_classifier_tells_apart_two_topics_from_their_variants() -> None:
    texts = [
        "qui finance une cpts",
        "financement des cpts",
        "comment est financee la cpts",
        "combien de professionnels pour une esp",
        "nombre minimum de professionnels dans une esp",
        "une esp compte combien de membres",
    ]
    model = train(texts, [0, 0, 0, 1, 1, 1], 3)
    assert model is not None
    funding = model.probabilities("c financé comment une CPTS ?")
    members = model.probabilities("esp : cb de pros minimum")
    assert funding.argmax() == 0 and members.argmax() == 1
    assert abs(float(funding.sum()) - 1.0) < 1e-6
    assert funding[2] < 1e-6  # a topic without any variant is never chosen


def test_character_ngrams_absorb_missing_accents_and_case() -> None:
    assert features("Financée")[0] == features("financee")[0]
    assert "fin" in features("financement")[0]


def test_no_evaluation_question_is_in_the_classifiers_training_data(
    service: QAService,
) -> None:
    """The classifier learns from knowledge/ only: no question of the evaluation bank (nor a
    thread's turn) may appear there."""
    ours = {
        scorer_normalize(q).strip(" ?")
        for t in service.kb.topics.values()
        for q in (t.label, *t.questions)
    }
    for path in sorted(BANK.glob("*/*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            continue
        asked = [i["q"] for i in (data.get("in_scope") or []) + (data.get("out_of_scope") or [])]
        asked += [turn for th in data.get("threads") or [] for turn in th["turns"]]
        copied = {scorer_normalize(q).strip(" ?") for q in asked} & ours
        assert not copied, (path.name, sorted(copied)[:3])


def test_no_evaluation_question_is_in_the_development_sets() -> None:
    """tests/qa/dev may be tuned on: none of its questions (nor a whole thread) may be one of
    the evaluation bank's."""

    def asked_in(data: dict) -> set[str]:
        items = [
            i["q"]
            for key in ("in_scope", "out_of_scope", "outside", "inside")
            for i in data.get(key) or []
        ]
        # a thread is the whole conversation: short first turns (« c'est quoi une CPTS ? »)
        # are bound to be written alike by independent authors
        items += [" / ".join(th["turns"]) for th in data.get("threads") or []]
        return {scorer_normalize(q).strip(" ?") for q in items}

    bank: set[str] = set()
    for path in sorted(BANK.glob("*/*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(data, dict):
            bank |= asked_in(data)
    dev_files = sorted((BANK.parent / "dev").glob("*.yaml"))
    assert len(dev_files) >= 3
    for path in dev_files:
        dev = asked_in(yaml.safe_load(path.read_text(encoding="utf-8")))
        assert dev, path.name
        assert not dev & bank, (path.name, sorted(dev & bank)[:3])


def test_answering_a_question_never_imports_scikit_learn(service: QAService) -> None:
    """The weights are plain numpy arrays in the cached index: a process answering questions
    does not pay scikit-learn's import (about 1 s and 100 MB)."""
    code = (
        "import sys\n"
        "from bot.qa import QAService\n"
        "s = QAService.load()\n"
        "s.answer('qui finance les cpts ?')\n"
        "print('sklearn' in sys.modules, 'scipy' in sys.modules)\n"
    )
    # a first process builds and caches the index if this checkout has none yet
    build = "from bot.qa import QAService; QAService.load()"
    subprocess.run([sys.executable, "-c", build], cwd=ROOT, capture_output=True, check=True)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_second_fresh_personas_hold_their_first_run_level(service: QAService) -> None:
    """Four personas (dentist, speech therapist, young GP, Assurance Maladie adviser) written
    after the classifier was built and never tuned on. First run: 0.825 in scope, 0.781 off
    topic, follow-ups 12/20 (the search without the classifier: 0.708 / 0.719); 0.808 once
    three knowledge variants identical to bank questions were removed (docs/qa.md). Only a
    guard against falling below it."""
    result = score_set(service, sorted((BANK / "fresh2").glob("*.yaml")))
    assert result.accuracy >= 0.79, result.failures
    assert result.abstention >= 0.75, result.failures


def test_third_fresh_personas_hold_their_first_run_level(service: QAService) -> None:
    """Four personas (advanced-practice nurse, MSP secretary, intercommunal health officer,
    public-health student) whose first run came after rounds 10-11: 0.842 in scope, 0.531 off
    topic, follow-ups 8/20 (docs/qa.md); 50 of those answers graded by hand in
    bank/grading/fresh3_first_run.yaml. A guard against falling below the first run."""
    result = score_set(service, sorted((BANK / "fresh3").glob("*.yaml")))
    assert result.accuracy >= 0.82, result.failures
    assert result.abstention >= 0.53, result.failures


def test_fourth_fresh_personas_hold_their_first_run_level(service: QAService) -> None:
    """Two personas (a GP trainer in Morlaix, a rural pharmacist near Pontivy) run once after
    every change of round 11: 0.700 in scope, 0.625 off topic, follow-ups 8/12 — the same
    questions without the classifier's re-weighting: 0.750 (docs/qa.md). A guard only."""
    result = score_set(service, sorted((BANK / "fresh4").glob("*.yaml")))
    assert result.accuracy >= 0.68, result.failures
    assert result.abstention >= 0.6, result.failures


def test_fifth_fresh_personas_hold_their_first_run_level(service: QAService) -> None:
    """Two personas (a local hospital's deputy director, a retired GP now deputy mayor) run once
    with the code of the fourth's first run: 0.850 in scope, 0.625 off topic, follow-ups 7/12
    (without the classifier's re-weighting: 0.750 / 0.688, 5/12; docs/qa.md). A guard only."""
    result = score_set(service, sorted((BANK / "fresh5").glob("*.yaml")))
    assert result.accuracy >= 0.83, result.failures
    assert result.abstention >= 0.6, result.failures


def test_sixth_fresh_personas_hold_their_first_run_level(service: QAService) -> None:
    """Four personas (a liberal nurse dictating her messages, a municipal health centre's
    director, a psychologist, a URPS representative) run once with round 11's code: 0.825 in
    scope, 0.563 off topic, follow-ups 17/24; off topic 0.750 after the neighbouring schemes
    were listed (docs/qa.md, round 12). A guard only."""
    result = score_set(service, sorted((BANK / "fresh6").glob("*.yaml")))
    assert result.accuracy >= 0.8, result.failures
    assert result.abstention >= 0.72, result.failures


def test_seventh_fresh_personas_hold_their_first_run_level(service: QAService) -> None:
    """Four personas (a GP typing in abbreviations, a midwife in Brest, an MSP coordinator near
    Vitré, a new officer of the ARS's Morbihan delegation) never tuned on; first run with the
    code of round 12: 0.917 in scope, 0.750 off topic, follow-ups 16/24 (docs/qa.md). A guard
    only."""
    result = score_set(service, sorted((BANK / "fresh7").glob("*.yaml")))
    assert result.accuracy >= 0.9, result.failures
    assert result.abstention >= 0.72, result.failures


def test_eighth_fresh_personas_hold_their_first_run_level(service: QAService) -> None:
    """Four personas (an ironic physiotherapist in Lannion, a deputy mayor for health in rural
    Morbihan, a hurried pharmacist in Lorient, a GP intern in Rennes) never tuned on; first run
    with the code of round 12: 0.867 in scope, 0.938 off topic, follow-ups 19/24 (docs/qa.md,
    round 13). A guard only."""
    result = score_set(service, sorted((BANK / "fresh8").glob("*.yaml")))
    assert result.accuracy >= 0.85, result.failures
    assert result.abstention >= 0.9, result.failures


def test_ninth_fresh_personas_hold_their_first_run_level(service: QAService) -> None:
    """Four personas (a GP trained outside the EU in Carhaix, a coordinating nurse of a DAC in
    Finistère, the director of a home-nursing service near Dinan, an orthoptist in Saint-Brieuc
    typing keywords) never tuned on; first run with the code of round 14: 0.915 in scope,
    0.812 off topic, follow-ups 20/23 (docs/qa.md, round 14; three keyword questions and one
    thread that began with a curated variant's exact words were removed). A guard only."""
    result = score_set(service, sorted((BANK / "fresh9").glob("*.yaml")))
    assert result.accuracy >= 0.9, result.failures
    assert result.abstention >= 0.78, result.failures


def test_tenth_fresh_personas_hold_their_level(service: QAService) -> None:
    """Four personas (a podiatrist in Vannes, the director of a local hospital near
    Ploërmel, a medical assistant in Lannion typing SMS, the health officer of a Pays in
    Centre-Ouest Bretagne); first run with round 15's first code: 0.892 in scope, 0.700 off
    topic, follow-ups 15/22; then read and tuned on (docs/qa.md, round 15). A guard only."""
    result = score_set(service, sorted((BANK / "fresh10").glob("*.yaml")))
    assert result.accuracy >= 0.9, result.failures
    assert result.abstention >= 0.9, result.failures


def test_eleventh_fresh_personas_hold_their_level(service: QAService) -> None:
    """Four personas (a dietitian in Saint-Malo, a regional journalist, the coordinator of a
    CPTS near Concarneau, an ambulance company manager near Pontivy); first run with round 15's
    last code: 0.883 in scope, 0.700 off topic, follow-ups 19/27; read and tuned on in round 16
    (docs/qa.md). A guard only."""
    result = score_set(service, sorted((BANK / "fresh11").glob("*.yaml")))
    assert result.accuracy >= 0.9, result.failures
    assert result.abstention >= 0.875, result.failures


def test_twelfth_fresh_personas_hold_their_first_run_level(service: QAService) -> None:
    """Four personas (a speech therapist in Rennes, a deputy mayor in Centre-Bretagne, a
    pharmacist near Quimperlé, a GP resident in Brest) never read; first run with round 16's
    last code: 0.942 in scope, 0.875 off topic, follow-ups 22/28 (docs/qa.md). A guard only."""
    result = score_set(service, sorted((BANK / "fresh12").glob("*.yaml")))
    assert result.accuracy >= 0.92, result.failures
    assert result.abstention >= 0.85, result.failures


def test_thirteenth_fresh_personas_hold_their_first_run_level(service: QAService) -> None:
    """Four personas (a midwife near Lorient, the manager of a municipal health centre in
    Fougères, a retired GP volunteering near Auray, a young physiotherapist near Lamballe)
    never read; first run with round 16's last code: 0.925 in scope, 0.725 off topic,
    follow-ups 24/28 (docs/qa.md). A guard only."""
    result = score_set(service, sorted((BANK / "fresh13").glob("*.yaml")))
    assert result.accuracy >= 0.9, result.failures
    assert result.abstention >= 0.7, result.failures
