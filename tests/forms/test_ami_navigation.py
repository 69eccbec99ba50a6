"""Moving around the form: back, review edits, cancelling, stale buttons, consent, resuming."""

from __future__ import annotations

from pathlib import Path

from bot.storage.models import Submission
from tests.conftest import Chat, make_settings
from tests.forms.conftest import build_test_app
from tests.forms.walk import add_actor, answers, draft, fill_to_review, start


def test_consent_comes_before_any_personal_question(chat):
    text = chat.say("/ami")
    assert "Finalité" in text and "ARS Bretagne" in text and "Vos droits" in text
    assert "J'accepte" in " ".join(b.label for b in chat.buttons)
    conv = chat.app.store.get_conversation(chat.user_id)
    assert conv.consent_at is None


def test_accepting_the_notice_records_consent_at(chat, clock):
    start(chat)
    assert chat.app.store.get_conversation(chat.user_id).consent_at == clock.now


def test_typing_oui_at_the_notice_accepts_it_like_the_button(chat, clock):
    chat.say("/ami")
    text = chat.say("Oui")
    assert "Acteur n°1" in text
    assert chat.app.store.get_conversation(chat.user_id).consent_at == clock.now


def test_typing_non_merci_at_the_notice_refuses_it_and_stores_nothing(chat):
    chat.say("/ami")
    text = chat.say("non merci")
    assert "rien enregistré" in text
    assert chat.app.store.get_conversation(chat.user_id).consent_at is None


def test_refusing_the_notice_goes_back_to_the_menu_and_stores_nothing(chat):
    chat.say("/ami")
    text = chat.press("Non merci")
    assert "rien enregistré" in text
    assert "Poser une question" in " ".join(b.label for b in chat.buttons)
    conv = chat.app.store.get_conversation(chat.user_id)
    assert "ami_bretagne" not in conv.data and conv.consent_at is None and conv.flow is None


def test_previous_goes_back_one_question_and_keeps_the_answer(chat):
    start(chat)
    chat.say("Dr Paul Le Cam")
    text = chat.say("précédent")
    assert "Acteur n°1" in text and "Réponse actuelle : Dr Paul Le Cam" in text
    chat.press("Garder")
    assert "profession" in chat.text
    assert answers(chat)["actors"][0]["name"] == "Dr Paul Le Cam"


def test_previous_button_is_offered_at_every_question(chat, personas):
    start(chat)
    for typed in ["Dr Paul Le Cam", "médecin généraliste", "Lannion"]:
        assert any("Précédent" in b.label for b in chat.buttons)
        chat.say(typed)
    assert any("Précédent" in b.label for b in chat.buttons)


def test_previous_from_the_referents_returns_to_the_last_actor_step(chat):
    start(chat)
    add_actor(
        chat,
        {
            "name": "Claire Morvan",
            "profession": "infirmière",
            "commune": "Lannion",
            "practice": "ESP",
        },
    )
    chat.press("Non, continuer")
    text = chat.press("Précédent")
    assert "ajouter un autre" in text
    chat.press("Précédent")
    assert "exercice coordonné" in chat.text
    chat.press("CPTS")
    assert answers(chat)["actors"][0]["practice"] == "CPTS"


def test_a_stale_button_reprompts_without_touching_answers(chat):
    start(chat)
    chat.say("Dr Paul Le Cam")
    chat.say("médecin")
    chat.say("Lannion")
    old_buttons = list(chat.buttons)
    chat.press("MSP")
    before = answers(chat)
    stale = next(b for b in old_buttons if b.label == "Aucun")
    from bot.engine.messages import Incoming, Kind

    text = chat._run(Incoming(chat.user_id, Kind.CHOICE, stale.payload))
    assert "ancien message" in text and "ajouter un autre" in text
    assert answers(chat) == before


def test_cancel_deletes_the_draft(chat):
    start(chat)
    chat.say("Dr Paul Le Cam")
    assert "abandonner" in chat.say("/annuler")
    chat.press("Oui")
    conv = chat.app.store.get_conversation(chat.user_id)
    assert "ami_bretagne" not in conv.data and conv.flow is None


# --------------------------------------------------------------------------- review edits
def review_then(chat, personas):
    fill_to_review(chat, personas["redon-structures"])
    chat.sent = 0


def test_each_top_level_field_is_changeable_from_the_review_in_at_most_3_messages(chat, personas):
    review_then(chat, personas)
    chat.press("✏️ Contexte")
    text = chat.say("Un nouveau contexte, plus précis que le précédent.")
    assert "Récapitulatif" in text and "Un nouveau contexte" in text
    assert chat.sent <= 3

    chat.sent = 0
    chat.press("✏️ Territoire")
    chat.press("Passer")
    assert answers(chat)["territory"] is None and "Récapitulatif" in chat.text
    assert chat.sent <= 3

    chat.sent = 0
    chat.press("✏️ Calendrier")
    text = chat.say("fin janvier")
    assert "31/01/2027" in text and chat.sent <= 3

    chat.sent = 0
    chat.press("✏️ Objectifs")
    chat.press("Besoin d'informations")
    text = chat.press("Valider")
    assert answers(chat)["objectives"] == ["information", "initiative"]
    assert "Récapitulatif" in text and chat.sent <= 3


def test_an_actor_field_is_changeable_from_the_review_in_3_messages(chat, personas):
    review_then(chat, personas)
    chat.press("Acteur 3")
    chat.press("Commune")
    text = chat.say("Redon")
    assert chat.sent == 3
    assert "Récapitulatif" in text
    assert answers(chat)["actors"][2]["commune"] == "Redon"
    assert answers(chat)["actors"][2]["name"] == "Julie Hamon"


def test_a_referent_phone_is_changeable_from_the_review(chat, personas):
    review_then(chat, personas)
    chat.press("Référent 2")
    chat.press("Téléphone")
    text = chat.say("07 81 22 33 44")
    assert chat.sent == 3 and "07 81 22 33 44" in text
    assert answers(chat)["referents"][1]["phone"] == "+33781223344"


def test_choosing_autre_from_the_review_asks_which_then_returns(chat, personas):
    review_then(chat, personas)
    chat.press("Acteur 2")
    chat.press("Exercice coordonné")
    text = chat.press("Autre")
    assert "Lequel" in text
    text = chat.say("réseau gérontologique")
    assert "Récapitulatif" in text
    actor = answers(chat)["actors"][1]
    assert actor["practice"] == "autre" and actor["practice_other"] == "réseau gérontologique"


def test_an_actor_can_be_removed_from_the_review(chat, personas):
    review_then(chat, personas)
    chat.press("Acteur 1")
    text = chat.press("Supprimer")
    assert "Acteur supprimé" in text
    assert [a["name"] for a in answers(chat)["actors"]] == ["SSIAD du Pays de Redon", "Julie Hamon"]


def test_the_last_referent_cannot_be_removed(chat, personas):
    persona = dict(personas["lannion-msp"])
    fill_to_review(chat, persona)
    chat.press("Référent 1")
    assert "au moins un référent" in chat.press("Supprimer")
    assert len(answers(chat)["referents"]) == 1


def test_a_referent_can_be_added_from_the_review(chat, personas):
    fill_to_review(chat, personas["lannion-msp"])
    chat.press("Ajouter un référent")
    chat.press("Claire Morvan")  # suggestion from the actors
    chat.say("infirmière coordinatrice")
    chat.say("claire.morvan@example.org")
    text = chat.say("06 22 33 44 55")
    assert "Récapitulatif" in text
    assert [r["name"] for r in answers(chat)["referents"]] == ["Paul Le Cam", "Claire Morvan"]


def test_review_lists_every_answer_numbered(chat, personas):
    text = fill_to_review(chat, personas["redon-structures"])
    for line in [
        "1. Professionnels / structures",
        "1.3 Julie Hamon",
        "2. Référent(s)",
        "2.2 Nicolas Perrin",
        "3. Objectifs attendus",
        "☑ Initiative engagée pour monter un projet de CPTS",
        "4. Contexte",
        "5. Territoire de projet",
        "6. Calendrier",
        "12/04/2027",
    ]:
        assert line in text


# --------------------------------------------------------------------------- durability
def test_a_new_engine_on_the_same_database_resumes_at_the_same_step(
    database_url, tmp_path: Path, clock, qa_service
):
    settings = make_settings(database_url, tmp_path)
    first = Chat(build_test_app(settings, qa_service, clock))
    start(first)
    first.say("Dr Paul Le Cam")
    first.say("médecin généraliste")

    second = Chat(build_test_app(settings, qa_service, clock))
    text = second.say("/start")
    assert "Reprendre" in " ".join(b.label for b in second.buttons)
    text = second.say("/reprendre")
    assert "Dans quelle commune exerce Dr Paul Le Cam ?" in text
    second.say("Lannion")
    second.press("MSP")
    state = second.app.store.get_conversation(1)
    assert state.state == "actors.more"
    assert draft(second)["answers"]["actors"][0]["commune"] == "Lannion"


def test_submission_and_mail_job_are_committed_together(
    database_url, tmp_path, clock, qa_service, personas
):
    settings = make_settings(database_url, tmp_path)
    chat = Chat(build_test_app(settings, qa_service, clock))
    fill_to_review(chat, personas["lannion-msp"])
    chat.press("Envoyer")
    fresh = build_test_app(settings, qa_service, clock)
    [sub] = fresh.store.submissions()
    assert sub.reference.startswith("AMI-2026-")
    assert any(job.submission_id == sub.id for job in fresh.store.jobs())
    assert fresh.store.count(Submission) == 1
