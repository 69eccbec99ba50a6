"""The user's rights: a complete notice, /mesdonnees readable, /supprimer thorough, retention."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.app import build_app
from bot.privacy import apply_retention
from bot.storage.models import AddressVerification, OutboxJob, Submission, UserNotice
from bot.worker import deliver_pending
from tests.conftest import Chat, FakeClock, make_settings
from tests.forms.walk import fill_to_review

PERSONA: dict[str, Any] = {
    "actors": [
        {"name": "Dr Anne Le Goff", "profession": "médecin généraliste", "commune": "Morlaix", "practice": "MSP"}
    ],
    "referents": [
        {"name": "Anne Le Goff", "function": "coordinatrice", "email": "anne.legoff@example.org", "phone": "06 12 34 56 78"}
    ],
    "objectives": ["reflection"],
    "context": "Nous voulons organiser les soins non programmés du pays de Morlaix avec les pharmacies.",
    "territory": "Morlaix Communauté",
    "calendar": "avant fin mars",
}  # fmt: skip


@pytest.fixture
def make_app(database_url: str, tmp_path: Path, clock: FakeClock, qa_service):  # type: ignore[no-untyped-def]
    apps = []

    def make(**overrides: Any) -> Any:
        settings = make_settings(database_url, tmp_path, **overrides)
        app = build_app(settings, qa=qa_service, clock=clock, create_schema=True)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.store.engine.dispose()


def rows(app: Any, model: Any) -> list[Any]:
    with app.store.session() as session:
        return list(session.exec(select(model)))


def test_notice_names_controller_dpo_legal_basis_cnil_and_configured_durations(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(
        draft_retention_days=45, submission_retention_days=200, dpo_contact="dpo@ars.example.org"
    )
    text = Chat(app).say("/ami")
    for expected in (
        "Responsable du traitement : l'Agence régionale de santé (ARS) Bretagne",
        "6.1.e",
        "45 jours",
        "200 jours",
        "dpo@ars.example.org",
        "CNIL",
    ):
        assert expected in text, expected
    assert "30 jours" not in text and "{notice" not in text


def test_delete_erases_the_row_notices_verifications_and_what_the_ars_has_not_received(
    make_app,
) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    chat = Chat(app, user_id=21)
    fill_to_review(chat, PERSONA)
    chat.press("Recevoir une copie")  # a verification and its code e-mail
    chat.press("Envoyer")  # no relay reachable yet: the ARS e-mail is pending
    app.store.add_notice(21, "Votre réponse est retardée.")
    assert rows(app, Submission) and rows(app, OutboxJob) and rows(app, AddressVerification)
    chat.say("/supprimer")
    text = chat.press("Oui")
    assert "AMI-2026-0001" in text and "ne lui seront pas envoyées" in text
    assert app.store.get_conversation(21) is None
    for model in (Submission, OutboxJob, AddressVerification, UserNotice):
        assert rows(app, model) == [], model


def test_delete_keeps_what_the_ars_received_and_says_whom_to_ask(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(dpo_contact="dpo@ars.example.org")
    chat = Chat(app, user_id=22)
    fill_to_review(chat, PERSONA)
    chat.press("Envoyer")
    deliver_pending(app.store, app.settings)  # accepted (written as .eml here)
    chat.say("/supprimer")
    text = chat.press("Oui")
    assert "déjà reçu vos réponses AMI-2026-0001" in text and "dpo@ars.example.org" in text
    assert [s.reference for s in rows(app, Submission)] == ["AMI-2026-0001"]
    assert app.store.get_conversation(22) is None and rows(app, UserNotice) == []


def test_my_data_is_readable_with_labels_and_what_was_sent_where_and_when(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    chat = Chat(app, user_id=23)
    fill_to_review(chat, PERSONA)
    chat.press("Envoyer")
    deliver_pending(app.store, app.settings)
    fill_to_review(chat, {**PERSONA, "territory": "Pays de Morlaix"})  # a draft in progress
    chat.say("/mesdonnees")
    text_doc, json_doc = [r.document for r in chat.replies if r.document is not None]
    text = text_doc.content.decode()
    assert "Réponse AMI-2026-0001, envoyée le 23 novembre 2026" in text
    assert "Professionnels / structures :" in text and "Dr Anne Le Goff" in text
    assert "☒ Réflexion en cours" in text
    assert "Pays de Morlaix" in text  # the draft, with its labels
    assert "votre réponse, au secrétariat de l'ARS Bretagne → ars-bretagne" in text
    assert ": envoyé, le 23 novembre 2026" in text
    assert "Messages que le bot vous a envoyés" in text and "CNIL" in text
    data = json.loads(json_doc.content)
    raw = json.dumps(data)
    assert '"visit"' not in raw and '"history"' not in raw and "_seen_updates" not in raw
    assert data["emails"][0]["recipient"].startswith("ars-bretagne")
    assert data["notices"]  # the "transmise/enregistrée" notice is listed


def test_submitted_responses_are_purged_after_the_retention_with_their_emails_and_files(
    make_app, clock: FakeClock, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    app = make_app(submission_retention_days=60, draft_retention_days=30)
    chat = Chat(app, user_id=24)
    fill_to_review(chat, PERSONA)
    chat.press("Envoyer")
    deliver_pending(app.store, app.settings)
    outbox = Path(app.settings.mail_outbox_dir)
    assert [p.name for p in outbox.glob("AMI-2026-0001-*.eml")] == ["AMI-2026-0001-ars.eml"]
    clock.advance(days=59)
    assert apply_retention(app.store, app.settings).purged == 0
    clock.advance(days=2)
    assert apply_retention(app.store, app.settings).purged == 1
    assert rows(app, Submission) == [] and rows(app, OutboxJob) == []
    assert list(outbox.glob("AMI-2026-0001-*")) == []
