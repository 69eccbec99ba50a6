"""Drafts stored before `bot/forms` (captured from the former runner) load and go on to the end.

`drafts_before_bot_forms.json` holds what the former `bot/engine/forms.py` stored in
`conversation.data` at four points of a response (mid group item, after an answer kept as
typed, a territory waiting for confirmation, the review), with the buttons it had just sent.
A deploy must not lose or corrupt any of them, and their buttons must still work.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.forms.draft import Draft

STORED: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "drafts_before_bot_forms.json").read_text(encoding="utf-8")
)
PHONE_FLAG = {"field": "referents[0].phone", "label": "Référent 1 — Téléphone", "value": "abc"}


@pytest.mark.parametrize("point", sorted(STORED))
def test_a_stored_draft_reads_and_writes_back_unchanged(point):
    stored = STORED[point]["draft"]
    draft = Draft.from_dict(stored)
    assert draft.to_dict() == stored
    assert draft.step == STORED[point]["state"]


def test_the_typed_draft_carries_what_the_magic_keys_held():
    draft = Draft.from_dict(STORED["territory_to_confirm"]["draft"])
    assert draft.pending is not None and draft.pending.field == "territory"
    assert [(f.field, f.label, f.value) for f in draft.flags] == [tuple(PHONE_FLAG.values())]
    assert "flags" not in draft.answers
    review = Draft.from_dict(STORED["review"]["draft"])
    assert review.consent_contact is True and review.copy_to_referent is None


def restore(chat: Any, point: str) -> None:
    """Put a stored conversation back as the former runner left it."""
    saved = STORED[point]
    with chat.app.store.turn(chat.user_id) as turn:
        conv = turn.conversation
        conv.flow = saved["flow"]
        conv.state = saved["state"]
        conv.consent_at = datetime.fromisoformat(saved["consent_at"])
        conv.data = {"ami_bretagne": json.loads(json.dumps(saved["draft"]))}


def press_stored(chat: Any, point: str, label: str) -> str:
    """Press a button of the message the former runner sent (its payload as stored)."""
    from bot.engine.messages import Incoming, Kind

    [payload] = [p for lbl, p in STORED[point]["buttons"].items() if label in lbl]
    return chat._run(Incoming(chat.user_id, Kind.CHOICE, payload))


def finish(chat: Any) -> dict[str, Any]:
    """From the review: send, and return the stored response's answers."""
    done = chat.press("Envoyer")
    assert "AMI-2026-0001" in done
    [submission] = chat.app.store.submissions()
    return dict(submission.answers)


def test_a_draft_stored_mid_group_item_goes_on_to_the_submission(chat):
    restore(chat, "mid_group_item")
    assert "e-mail" in chat.say("/reprendre").lower()
    chat.say("paul.lecam@example.org")
    chat.say("06 11 22 33 44")
    chat.press("Non, continuer")
    chat.press("Besoin")
    chat.press("Valider")
    chat.say("La MSP accueille de nombreux patients sans médecin traitant.")
    chat.say("Lannion-Trégor Communauté")
    chat.press("Oui, c'est bien cela")
    chat.say("fin janvier")
    got = finish(chat)
    assert [a["name"] for a in got["actors"]] == ["Dr Paul Le Cam", "Claire Morvan"]
    assert got["actors"][1]["practice_other"] == "réseau de soins"
    assert got["referents"][0]["phone"] == "+33611223344"
    assert got["flags"] == []


def test_a_draft_with_an_answer_kept_as_typed_keeps_its_flag_to_the_end(chat):
    restore(chat, "after_kept_as_typed")
    chat.say("/reprendre")
    press_stored(chat, "after_kept_as_typed", "Non, continuer")  # the former runner's button
    chat.press("Besoin")
    chat.press("Valider")
    chat.say("La MSP accueille de nombreux patients sans médecin traitant.")
    chat.press("Passer")
    review = chat.say("fin janvier")
    assert "Référent 1 — Téléphone : « abc » (non vérifié)" in review
    got = finish(chat)
    assert [{k: f[k] for k in PHONE_FLAG} for f in got["flags"]] == [PHONE_FLAG]
    assert got["referents"][0]["phone"] == "abc"


def test_a_territory_waiting_for_confirmation_is_confirmed_by_the_stored_button(chat):
    restore(chat, "territory_to_confirm")
    press_stored(chat, "territory_to_confirm", "Oui, c'est bien cela")
    chat.say("fin janvier")
    got = finish(chat)
    assert got["territory"] == "Lannion-Trégor Communauté"
    assert got["territory_understood"]
    assert got["objectives"] == ["information", "reflection"]


def test_a_draft_stored_at_the_review_is_sent_with_its_choices(chat):
    restore(chat, "review")
    review = chat.say("/reprendre")
    assert "Récapitulatif" in review
    got = finish(chat)
    assert got["consent_contact"] is True and got["copy_to_referent"] is False
    assert got["calendar"]["label"]
    assert [{k: f[k] for k in PHONE_FLAG} for f in got["flags"]] == [PHONE_FLAG]


def test_a_stale_button_of_the_former_runner_is_refused_without_harm(chat):
    restore(chat, "review")
    before = chat.app.store.get_conversation(chat.user_id).data
    text = press_stored(chat, "territory_to_confirm", "Oui, c'est bien cela")
    assert "ancien message" in text
    after = chat.app.store.get_conversation(chat.user_id).data
    assert after["ami_bretagne"]["answers"] == before["ami_bretagne"]["answers"]
