"""A complete response to the AMI, as a health professional would give it."""

from __future__ import annotations

from bot.storage.models import OutboxJob, Submission
from tests.forms.walk import answers, fill_to_review


def test_complete_response_is_stored_with_the_documented_shape(chat, personas):
    persona = personas["lannion-msp"]
    review = fill_to_review(chat, persona)
    assert "Récapitulatif" in review
    assert "Dr Paul Le Cam — médecin généraliste — Lannion — MSP" in review
    assert "06 11 22 33 44" in review
    assert "ars-bretagne-secretariat-daspf@ars.sante.fr" in review

    done = chat.press("Envoyer")
    assert "AMI-2026-0001" in done
    # no SMTP relay in these tests: the confirmation must not claim that the ARS got it
    assert "PAS transmise" in done and "PDF" in done

    [sub] = chat.app.store.submissions()
    got = sub.answers
    assert sub.reference == "AMI-2026-0001"
    assert sub.recipient == "ars-bretagne-secretariat-daspf@ars.sante.fr"
    assert set(got) == {
        "actors",
        "referents",
        "objectives",
        "context",
        "territory",
        "territory_understood",
        "departements",
        "calendar",
        "flags",
        "copy_to_referent",
        "consent_contact",
        "form_title",
        "telegram_user_id",
        "submitted_at",
    }
    assert got["actors"][1] == {
        "name": "Claire Morvan",
        "profession": "infirmière libérale",
        "commune": "Lannion",
        "practice": "MSP",
        "practice_other": None,
    }
    assert got["referents"] == [
        {
            "name": "Paul Le Cam",
            "function": "médecin généraliste, président de l'association de la MSP",
            "email": "paul.lecam@example.org",
            "phone": "+33611223344",
            "phone_display": "06 11 22 33 44",
        }
    ]
    assert got["objectives"] == ["information", "reflection"]
    assert got["territory"] == "Lannion-Trégor Communauté"
    understood = got["territory_understood"]
    assert [m["name"] for m in understood["matches"]] == ["CA Lannion-Trégor Communauté"]
    assert len(understood["communes"]) == 57 and understood["departements"] == ["22"]
    assert got["departements"] == ["22"]
    assert got["calendar"] == {
        "text": "avant fin février",
        "date": "2027-02-28",
        "label": "avant fin février 2027 → 28/02/2027",
    }
    assert got["flags"] == []
    assert got["copy_to_referent"] is False
    assert got["consent_contact"] is False  # not ticked in the review
    assert got["telegram_user_id"] == chat.user_id
    assert got["submitted_at"].startswith("2026-11-23")
    assert chat.app.store.count(OutboxJob) >= 1
    assert answers(chat) == {}  # the draft is cleared


def test_two_actors_two_referents_two_objectives_take_at_most_31_messages(chat, personas):
    persona = dict(personas["redon-structures"])
    persona["actors"] = persona["actors"][:2]
    persona["objectives"] = ["reflection", "initiative"]
    fill_to_review(chat, persona)
    done = chat.press("Envoyer")
    assert "AMI-2026-" in done
    assert chat.sent <= 31, chat.sent  # 30, and the confirmation of the recognised territory
    sub = chat.app.store.submissions()[0]
    assert [r["phone"] for r in sub.answers["referents"]] == ["+33655443322", "+33299000001"]
    assert sub.answers["actors"][0]["practice"] == "autre"


def test_copy_request_without_a_code_records_the_wish_but_sends_no_copy(chat, personas):
    fill_to_review(chat, personas["lannion-msp"])
    text = chat.press("Recevoir une copie")
    assert "code à 6 chiffres" in text and "paul.lecam@example.org" in text
    assert chat.replies[-1].edit_key == "ami_bretagne:review"
    done = chat.press("Envoyer")
    assert "Aucune copie n'est envoyée" in done
    assert chat.app.store.submissions()[0].answers["copy_to_referent"] is False
    assert [j.kind for j in chat.app.store.jobs()] == ["verify", "ars"]


def test_one_user_one_draft_a_second_response_starts_empty(chat, personas):
    fill_to_review(chat, personas["lannion-msp"])
    chat.press("Envoyer")
    text = chat.say("/ami")
    assert "Acteur n°1" in text  # consent already given: straight to the first question
    assert chat.app.store.count(Submission) == 1


def test_consent_to_be_put_in_touch_is_ticked_in_the_review_and_stored(chat, personas):
    fill_to_review(chat, personas["lannion-msp"])
    text = chat.press("Accepter la mise en relation")
    assert "l'ARS pourra vous inviter ensemble à un même temps d'échange" in text
    assert any(b.label.startswith("☑ Accepter la mise en relation") for b in chat.buttons)
    text = chat.press("Accepter la mise en relation")  # untick, then tick again
    assert "ne vous mettra pas en relation" in text
    chat.press("Accepter la mise en relation")
    chat.press("Envoyer")
    assert chat.app.store.submissions()[0].answers["consent_contact"] is True
