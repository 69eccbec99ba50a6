"""Build AMI submissions directly in the store (independent of the form flow)."""

from __future__ import annotations

import copy
from typing import Any

from bot.config import Settings
from bot.mail.outbox import enqueue_submission, first_referent_address
from bot.storage.models import AddressVerification, OutboxJob, Submission
from bot.storage.store import Store

BASE_ANSWERS: dict[str, Any] = {
    "actors": [
        {
            "name": "Dr Paul Le Cam",
            "profession": "médecin généraliste",
            "commune": "Lannion",
            "practice": "MSP",
            "practice_other": None,
        },
        {
            "name": "Claire Morvan",
            "profession": "infirmière libérale",
            "commune": "Lannion",
            "practice": "autre",
            "practice_other": "cabinet de groupe",
        },
    ],
    "referents": [
        {
            "name": "Paul Le Cam",
            "function": "président de l'association de la MSP",
            "email": "paul.lecam@example.org",
            "phone": "+33611223344",
            "phone_display": "06 11 22 33 44",
        },
        {
            "name": "Claire Morvan",
            "function": "infirmière coordinatrice",
            "email": "claire.morvan@example.net",
            "phone": "+33299000001",
            "phone_display": "02 99 00 00 01",
        },
    ],
    "objectives": ["information", "reflection"],
    "context": "La MSP accueille de nombreux patients sans médecin traitant venant des communes voisines.",
    "territory": "Lannion-Trégor Communauté",
    "calendar": {
        "text": "avant fin février",
        "date": "2027-02-28",
        "label": "avant le 28 février 2027",
    },
    "flags": [
        {"field": "referents[1].phone", "value": "02 99 00 00 01", "reason": "numéro à vérifier"}
    ],
    "copy_to_referent": True,
    "form_title": "AMI CPTS Bretagne",
    "telegram_user_id": 4242,
    "submitted_at": "2026-11-23T09:00:00+00:00",
}


def answers(**overrides: Any) -> dict[str, Any]:
    """A complete, realistic set of answers with some fields replaced."""
    data = copy.deepcopy(BASE_ANSWERS)
    data.update(overrides)
    return data


def prove_address(store: Store, user_id: int, address: str) -> None:
    """Record that the user typed back the code sent to `address` (as `bot.mail.trust` does)."""
    now = store.clock()
    with store.unit() as session:
        session.add(
            AddressVerification(
                user_id=user_id,
                address=address,
                code_hash="-",
                created_at=now,
                expires_at=now,
                verified_at=now,
            )
        )


def submit(
    store: Store,
    settings: Settings,
    user_id: int = 4242,
    *,
    verified: bool = True,
    **overrides: Any,
) -> tuple[Submission, list[OutboxJob]]:
    """Store a submission and its e-mail jobs in one turn, as the form does.

    With `verified` (the default) the user has proved they hold the copy's address first.
    """
    data = answers(**overrides)
    data["telegram_user_id"] = user_id
    address = first_referent_address(data)
    if verified and data.get("copy_to_referent") and address:
        prove_address(store, user_id, address)
    with store.turn(user_id) as turn:
        sub = store.add_submission(
            turn.session,
            user_id=user_id,
            form_id="ami_bretagne",
            recipient=settings.ars_mailbox,
            answers=data,
        )
        jobs = enqueue_submission(store, turn.session, sub, settings)
    return sub, jobs
