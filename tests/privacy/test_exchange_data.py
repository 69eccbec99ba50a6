"""Messages and « temps d'échange » are personal data: in /mesdonnees, gone with /supprimer and
with the retention of responses (no foreign key left behind), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot import exchange
from bot.app import build_app
from bot.engine.messages import Kind
from bot.privacy import apply_retention
from bot.storage.models import (
    Meeting,
    MeetingSlot,
    OutboxJob,
    RespondentMessage,
    StaffAccount,
    Submission,
)
from bot.web.followup import load_config, sync
from tests.conftest import Chat, FakeClock, make_settings
from tests.mail.factories import submit
from tests.web.conftest import SECRETARIAT, add_accounts


@pytest.fixture
def app(database_url: str, tmp_path: Path, clock: FakeClock, qa_service):  # type: ignore[no-untyped-def]
    settings = make_settings(database_url, tmp_path, submission_retention_days=60)
    built = build_app(settings, qa=qa_service, clock=clock, create_schema=True)
    yield built
    built.store.engine.dispose()


def rows(app: Any, model: Any) -> list[Any]:
    with app.store.session() as session:
        return list(session.exec(select(model)))


def exchanged(app: Any, user_id: int) -> tuple[Submission, Chat]:
    """A response with a message, a reply, and a slot chosen in the chat."""
    store, settings = app.store, app.settings
    add_accounts(store)
    sub, _ = submit(store, settings, user_id=user_id)
    sync(store, load_config())
    with store.unit() as session:
        account = session.exec(select(StaffAccount).where(StaffAccount.email == SECRETARIAT)).one()
    exchange.send_message(store, settings, account, sub, "Bonjour, quand êtes-vous disponibles ?")
    start = (store.clock() + timedelta(days=10)).astimezone(exchange.F.PARIS)
    exchange.propose(store, settings, account, sub, [exchange.SlotInput(start, 60, "MSP")])
    chat = Chat(app, user_id=user_id)
    chat.send(Kind.CHOICE, f"ars:reply:{sub.id}")
    assert "Écrivez votre réponse" in chat.text
    assert "bien été transmis" in chat.say("Le mardi matin, de préférence.")
    [slot] = rows(app, MeetingSlot)
    assert "Temps d'échange planifié" in chat.send(Kind.CHOICE, f"ars:slot:{slot.id}")
    assert [r.document.mime_type for r in chat.replies if r.document] == ["text/calendar"]
    return sub, chat


def test_my_data_lists_the_exchanges_with_the_ars(app) -> None:  # type: ignore[no-untyped-def]
    _sub, chat = exchanged(app, 41)
    chat.say("/mesdonnees")
    text_doc, json_doc = [r.document for r in chat.replies if r.document is not None]
    text = text_doc.content.decode()
    assert "== Échanges avec l'ARS Bretagne (messages, temps d'échange) ==" in text
    assert "ARS → vous) : ✉️ Message de l'ARS Bretagne" in text
    assert "vous → ARS) : Le mardi matin, de préférence." in text
    assert "Temps d'échange (AMI-2026-0001) : Planifié, " in text
    data = json.loads(json_doc.content)
    assert [e["direction"] for e in data["exchanges"]] == ["out", "out", "in", "in"]
    assert data["meetings"][0]["slot"]["place"] == "MSP"


def test_delete_erases_messages_and_meetings_without_leaving_foreign_keys(app) -> None:  # type: ignore[no-untyped-def]
    _sub, chat = exchanged(app, 42)
    chat.say("/supprimer")
    chat.press("Oui")
    assert rows(app, RespondentMessage) == []
    assert rows(app, Meeting) == [] and rows(app, MeetingSlot) == []
    assert rows(app, Submission) == []  # not received by the ARS: erased with the rest


def test_retention_purges_a_response_with_its_thread_and_meetings(app, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    exchanged(app, 43)
    clock.advance(days=61)
    assert apply_retention(app.store, app.settings).purged == 1
    assert rows(app, Submission) == [] and rows(app, OutboxJob) == []
    assert rows(app, RespondentMessage) == [] and rows(app, Meeting) == []


def test_buttons_of_another_respondents_message_do_nothing(app) -> None:  # type: ignore[no-untyped-def]
    sub, _chat = exchanged(app, 44)
    intruder = Chat(app, user_id=45)
    [slot] = rows(app, MeetingSlot)
    assert "n'est plus d'actualité" in intruder.send(Kind.CHOICE, f"ars:slot:{slot.id}")
    assert "n'est plus d'actualité" in intruder.send(Kind.CHOICE, f"ars:reply:{sub.id}")
    [meeting] = rows(app, Meeting)
    assert meeting.status == "scheduled"
    # new slots while one is planned: refused, cancel it first
    account = rows(app, StaffAccount)[0]
    later = exchange.SlotInput(app.store.clock() + timedelta(days=20), 60, "MSP")
    with pytest.raises(exchange.Refused, match="annulez-le d'abord"):
        exchange.propose(app.store, app.settings, account, sub, [later])
    # the respondent cancels: the agent is e-mailed a CANCEL invitation
    owner = Chat(app, user_id=44)
    assert "est annulé" in owner.send(Kind.CHOICE, f"ars:cancel:{meeting.id}")
    [meeting] = rows(app, Meeting)
    assert meeting.status == "cancelled"
    cancel = [
        j for j in rows(app, OutboxJob) if j.kind == "staff" and "annulé" in j.payload["subject"]
    ]
    assert cancel and cancel[0].payload["method"] == "CANCEL"


def test_a_reply_to_the_ars_is_abandoned_by_another_button_or_a_command(app) -> None:  # type: ignore[no-untyped-def]
    sub, chat = exchanged(app, 46)
    before = len(rows(app, RespondentMessage))
    chat.send(Kind.CHOICE, f"ars:reply:{sub.id}")
    chat.send(Kind.CHOICE, "menu:question")
    chat.say("Qu'est-ce qu'une CPTS ?")  # a question for the bot, not for the ARS
    chat.send(Kind.CHOICE, f"ars:reply:{sub.id}")
    chat.say("/aide")
    chat.say("Merci")
    assert len(rows(app, RespondentMessage)) == before
    chat.send(Kind.CHOICE, f"ars:reply:{sub.id}")
    assert "Votre message est vide" in chat.say("   ")
    assert "bien été transmis" in chat.say("Finalement, oui.")
    assert len(rows(app, RespondentMessage)) == before + 1


def joint(app: Any, host_id: int, guest_id: int) -> tuple[Submission, Submission, Chat]:
    """Two neighbouring responses that agreed to be put in touch, invited to one meeting; the
    guest accepts it in the chat."""
    store, settings = app.store, app.settings
    add_accounts(store)
    host, _ = submit(store, settings, user_id=host_id, consent_contact=True)
    guest, _ = submit(store, settings, user_id=guest_id, consent_contact=True)
    sync(store, load_config())
    with store.unit() as session:
        account = session.exec(select(StaffAccount).where(StaffAccount.email == SECRETARIAT)).one()
    start = (store.clock() + timedelta(days=10)).astimezone(exchange.F.PARIS)
    slot = exchange.SlotInput(start, 60, "Mairie de Lannion")
    exchange.propose(store, settings, account, host, [slot], [guest])
    chat = Chat(app, user_id=guest_id)
    [guest_slot] = [
        s
        for s in rows(app, MeetingSlot)
        for m in rows(app, Meeting)
        if m.id == s.meeting_id and m.user_id == guest_id
    ]
    assert "Temps d'échange planifié" in chat.send(Kind.CHOICE, f"ars:slot:{guest_slot.id}")
    return host, guest, chat


def test_my_data_shows_a_joint_meeting_without_naming_the_other_respondents(app) -> None:  # type: ignore[no-untyped-def]
    host, guest, chat = joint(app, 51, 52)
    chat.say("/mesdonnees")
    text_doc, json_doc = [r.document for r in chat.replies if r.document is not None][-2:]
    text = text_doc.content.decode()
    assert (
        f"Temps d'échange commun (avec d'autres porteurs de projets voisins) ({guest.reference}) "
        ": Planifié, " in text
    )
    assert host.reference not in text
    data = json.loads(json_doc.content)
    assert [(m["reference"], m["joint"]) for m in data["meetings"]] == [(guest.reference, True)]


def test_an_invited_respondent_who_deletes_their_data_leaves_the_others_meeting_intact(app) -> None:  # type: ignore[no-untyped-def]
    host, _guest, chat = joint(app, 53, 54)
    chat.say("/supprimer")
    chat.press("Oui")
    [left] = rows(app, Meeting)
    assert left.submission_id == host.id and left.joint_id == left.id
    assert {m.submission_id for m in rows(app, RespondentMessage)} == {host.id}
    assert [s.id for s in rows(app, Submission)] == [host.id]
    assert len(rows(app, MeetingSlot)) == 1  # the host's slot; the guest's went with its row
    # the host's page still lists the meeting: the group survives a missing member
    assert exchange.joint_rows(app.store, [left.id])[left.id][0][1].id == host.id


def test_retention_purges_every_row_of_a_joint_meeting(app, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    joint(app, 55, 56)
    clock.advance(days=61)
    assert apply_retention(app.store, app.settings).purged == 2
    assert rows(app, Meeting) == [] and rows(app, MeetingSlot) == []
    assert rows(app, RespondentMessage) == []
