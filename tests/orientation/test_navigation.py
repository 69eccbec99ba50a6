"""« Précédent » at every step, « Pourquoi cette question ? » on every question, restart, question."""

from __future__ import annotations

import pytest

from tests.orientation.guide import OUTCOMES, QUESTIONS, current_step, give, shows, walk

LONGEST = {"stage": "reflection", "whom": "population", "team": "gp", "existing": "none",
           "size": "over_20k", "territory": "Pays de Redon"}  # fmt: skip


def test_every_question_offers_back_and_why(chat):
    chat.say("/orientation")
    for step_id, value in LONGEST.items():
        assert current_step(chat).id == step_id
        labels = [b.label for b in chat.buttons]
        assert "⬅️ Précédent" in labels
        assert "❔ Pourquoi cette question ?" in labels
        give(chat, QUESTIONS[step_id], value)
    assert current_step(chat).id == "cpts"


@pytest.mark.parametrize("step_id", list(QUESTIONS))
def test_why_explains_the_question_from_a_named_text_then_asks_it_again(chat, step_id):
    answers = dict(list(LONGEST.items())[: list(LONGEST).index(step_id)])
    chat.say("/orientation")
    for done, value in answers.items():
        give(chat, QUESTIONS[done], value)
    text = chat.press("Pourquoi cette question ?")
    step = QUESTIONS[step_id]
    assert step.why in text
    assert "«" in step.why  # it quotes the texts
    assert "📚 Sources :\n• " in text  # and names them, readably
    assert current_step(chat).id == step_id  # and the question is asked again


def test_back_returns_to_each_previous_question_with_its_answer_kept(chat):
    walk(chat, LONGEST)
    assert current_step(chat).id == "cpts"
    for step_id in reversed(LONGEST):
        text = chat.press("Précédent")
        assert "On revient à l'étape précédente." in text
        assert current_step(chat).id == step_id
        if step_id != "territory":
            assert "Réponse actuelle : " + QUESTIONS[step_id].choice_label(LONGEST[step_id]) in text
    assert "C'est la première question" in chat.press("Précédent")


def test_typing_precedent_also_goes_back(chat):
    chat.say("/orientation")
    give(chat, QUESTIONS["stage"], "reflection")
    chat.say("précédent")
    assert current_step(chat).id == "stage"


def test_changing_an_earlier_answer_changes_the_outcome(chat):
    walk(chat, {**LONGEST, "size": "under_20k"})
    assert current_step(chat).id == "esp_then_cpts"
    chat.press("Précédent")  # territory
    chat.press("Précédent")  # size
    chat.press("B. Moins")  # same answer…
    chat.press("Précédent")
    give(chat, QUESTIONS["size"], "over_20k")  # …then another one
    chat.say("Pays de Redon")
    assert current_step(chat).id == "cpts"


@pytest.mark.parametrize("outcome", ["esp", "cpts", "esp_then_cpts", "join_cpts", "info_target"])
def test_each_outcome_has_its_concrete_steps_then_back_restart_and_question(chat, outcome):
    answers = {
        "esp": {"stage": "reflection", "whom": "patientele", "team": "gp"},
        "cpts": LONGEST,
        "esp_then_cpts": {**LONGEST, "size": "under_20k"},
        "join_cpts": {**LONGEST, "existing": "cpts"},
        "info_target": {"stage": "information", "whom": "unknown"},
    }[outcome]
    assert walk(chat, answers)[0] == outcome
    labels = [b.label for b in chat.buttons]
    assert labels == [
        "📋 Les étapes concrètes",
        "📝 Répondre à l'AMI maintenant",
        "❓ Poser une question",
        "🔄 Recommencer",
        "⬅️ Précédent",
    ]
    steps = chat.press("Les étapes concrètes")
    assert current_step(chat).id.endswith("_steps")
    assert shows(steps, OUTCOMES[current_step(chat).id])
    assert "📚 Sources :\n• " in steps and "#" not in steps
    chat.press("Précédent")
    assert current_step(chat).id == outcome
    chat.press("Recommencer")
    assert current_step(chat).id == "stage"
    assert "Réponse actuelle" not in chat.text  # a fresh start


def test_ask_a_question_leaves_the_guide_and_the_next_message_is_answered(chat):
    walk(chat, {"stage": "information", "whom": "unknown"})
    text = chat.press("Poser une question")
    assert text == chat.app.engine.texts("ask_question")  # the same as the menu's button
    assert chat.buttons == []
    answer = chat.say("Quelles sont les missions socles d'une CPTS ?")
    assert "médecin traitant" in answer
    text = chat.say("/orientation")  # the verdict is still there
    assert "Reprenons" in text and current_step(chat).id == "info_target"


def test_the_guide_resumes_where_the_user_left_it(chat):
    chat.say("/orientation")
    give(chat, QUESTIONS["stage"], "initiative")
    give(chat, QUESTIONS["whom"], "population")
    chat.say("/menu")
    text = chat.say("/orientation")
    assert "Reprenons" in text
    assert current_step(chat).id == "team"


def test_three_refused_territories_offer_a_way_on_in_french(chat):
    chat.say("/orientation")
    for step_id, value in list(LONGEST.items())[:-1]:
        give(chat, QUESTIONS[step_id], value)
    assert current_step(chat).id == "territory"
    for _ in range(3):
        text = chat.say("Pays de Redon " * 30)  # longer than the 300 characters allowed
    assert "Cela fait trois essais" in text and "way_on" not in text
    assert "📝 Garder tel quel" in [b.label for b in chat.buttons]
