"""The main menu, global commands and free questions, as short conversation scripts."""

from __future__ import annotations

import json

import pytest

from bot.engine.messages import Incoming, Kind
from tests.conftest import STAFF_ID, Chat


def test_start_greets_and_offers_the_four_actions(chat: Chat) -> None:
    text = chat.say("/start")
    assert "Bonjour" in text
    labels = [b.label for b in chat.buttons]
    assert any("question" in label.lower() for label in labels)
    assert any("ESP ou CPTS" in label for label in labels)
    assert any("AMI" in label for label in labels)
    assert any("ARS" in label for label in labels)


def test_free_text_outside_a_flow_is_answered_from_the_texts_with_its_source(chat: Chat) -> None:
    text = chat.say("c'est quoi une communauté professionnelle territoriale de santé")
    assert "Source" in text
    assert "territoire" in text.lower()


def test_an_answer_offers_more_and_the_full_passage_follows(chat: Chat) -> None:
    chat.say("combien de professionnels faut-il au minimum pour une équipe de soins primaires")
    first = chat.text
    chat.press("En savoir plus")
    assert chat.text and chat.text != first


def test_a_detail_the_texts_never_give_shows_the_nearest_answer_with_more_and_the_menu(
    chat: Chat,
) -> None:
    first = chat.say("l'ACI ça rapporte combien d'euros par an à une CPTS ?")
    assert first.startswith("Les textes ne donnent pas ce montant")
    assert any("Contacter l'ARS" in b.label for b in chat.buttons)
    chat.press("En savoir plus")
    assert chat.text and chat.text != first and "«" in chat.text


def test_an_off_topic_question_gets_an_honest_answer_and_the_ars_contact(chat: Chat) -> None:
    text = chat.say("Quelle est la recette des crêpes au sarrasin ?")
    assert "02.22.06.73.54" in text or "ars.sante.fr" in text
    assert any("AMI" in b.label for b in chat.buttons)


def test_contact_button_gives_the_ars_contacts_of_the_ami(chat: Chat) -> None:
    chat.say("/start")
    text = chat.press("Contacter l'ARS")
    assert "ronan.derieux@ars.sante.fr" in text
    assert "ars-bretagne-secretariat-daspf@ars.sante.fr" in text


def test_help_lists_the_commands(chat: Chat) -> None:
    text = chat.say("/aide")
    for command in (
        "/question",
        "/orientation",
        "/ami",
        "/reprendre",
        "/annuler",
        "/mesdonnees",
        "/supprimer",
    ):
        assert command in text


def test_an_unknown_command_is_explained_in_french(chat: Chat) -> None:
    assert "Je ne connais pas la commande /bidule" in chat.say("/bidule")


def test_staff_commands_give_no_hint_to_other_users(chat: Chat) -> None:
    text = chat.say("/export")
    assert "Je ne connais pas la commande /export" in text


def test_staff_member_reaches_staff_commands(app) -> None:  # type: ignore[no-untyped-def]
    staff = Chat(app, user_id=STAFF_ID)
    text = staff.say("/stats")
    assert "Je ne connais pas" not in text


@pytest.mark.parametrize("kind", ["photo", "sticker", "voice", "document", "location"])
def test_media_gets_a_polite_text_only_notice(chat: Chat, kind: str) -> None:
    text = chat.send(Kind.UNSUPPORTED, kind)
    assert "Je ne sais lire que des messages écrits" in text


def test_an_empty_message_offers_the_menu(chat: Chat) -> None:
    assert "vide" in chat.say("   \n\t ")
    assert chat.buttons


@pytest.mark.parametrize(
    "text",
    [
        "x" * 10_000,
        "😀🎉👩‍⚕️",
        "<b>gras</b> <script>alert(1)</script> **markdown** [lien](http://example.org)",
        "CPTS\x00\x07\x1b[31m ?",
    ],
)
def test_odd_input_gets_a_clear_reply_that_fits_a_telegram_message(chat: Chat, text: str) -> None:
    replies = chat.app.engine.handle(Incoming.say(1, text))
    assert replies
    assert all(0 < len(r.text) < 4096 for r in replies)


def test_a_stale_button_is_handled_gracefully(chat: Chat) -> None:
    chat.say("/start")
    text = chat.send(Kind.CHOICE, "ami_bretagne:objective:information")
    assert "n'est plus actif" in text


def test_cancel_with_nothing_in_progress_says_so(chat: Chat) -> None:
    assert "rien à annuler" in chat.say("/annuler")


def test_my_data_sends_a_readable_text_and_a_json_file_of_everything_held(chat: Chat) -> None:
    chat.say("/start")
    chat.say("/mesdonnees")
    documents = [r.document for r in chat.replies if r.document is not None]
    assert [d.filename for d in documents] == ["mes-donnees.txt", "mes-donnees.json"]
    assert "Identifiant Telegram : 1" in documents[0].content.decode()
    data = json.loads(documents[1].content)
    assert data["telegram_user_id"] == 1
    assert "submissions" in data


def test_delete_asks_for_confirmation_and_keeps_everything_on_no(chat: Chat) -> None:
    chat.say("/orientation")
    assert "vraiment effacer" in chat.say("/supprimer")
    assert "je ne supprime rien" in chat.press("Non")


def test_delete_erases_the_draft_after_confirmation(chat: Chat) -> None:
    chat.say("/ami")
    chat.say("/supprimer")
    assert "effacés" in chat.press("Oui")
    assert chat.app.store.get_conversation(1) is None  # the row itself is gone
    assert "pas de réponse en cours" in chat.say("/reprendre")


def test_greeting_gets_a_human_reply_not_a_search(chat: Chat) -> None:
    text = chat.say("Bonjour !")
    assert "Source" not in text


def test_start_with_a_draft_offers_to_resume_once(chat: Chat) -> None:
    chat.say("/ami")
    chat.press("J'accepte")
    chat.say("Dr Anne Le Goff")
    text = chat.say("/start")
    assert "Voulez-vous la reprendre ?" in text
    assert [b.label for b in chat.buttons].count("▶️ Reprendre ma réponse") == 1
    assert "Quelle est la profession de Dr Anne Le Goff" in chat.press("Reprendre ma réponse")


def test_superscript_digits_are_not_taken_for_a_choice_number(chat: Chat) -> None:
    chat.say("/start orientation")
    text = chat.say("¹")  # str.isdigit() is True for it, int() is not
    assert chat.app.engine.texts("error") not in text
