"""The back office's exchange forms over HTTP: French refusals for bad slots, read-only roles,
suggested slots after the wished date, and config/exchange.yaml checked at load."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import exchange
from bot.storage.models import Submission
from tests.web.conftest import MANAGER, SECRETARIAT, Server, WebClient


def signed_in(server: Server, email: str) -> tuple[WebClient, str]:
    client = server.client()
    assert client.login(email).status_code == 303
    sub = server.subs["lannion"]
    return client, client.csrf_of(f"/reponses/{sub.id}")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"date-1": "01/03/2027", "heure-1": "10:00"}, "Date de créneau invalide"),
        ({"date-1": "2027-03-01", "heure-1": "25:00"}, "Heure de créneau invalide"),
        ({"date-1": "2020-03-01", "heure-1": "10:00"}, "est déjà passé"),
        ({"date-1": "2027-03-01", "heure-1": "10:00", "lieu-1": ""}, "Indiquez le lieu"),
        ({"date-1": "2027-03-01", "heure-1": "10:00", "duree-1": "5"}, "de 15 à 480 minutes"),
        ({}, "Proposez au moins un créneau"),
    ],
)
def test_bad_slots_are_refused_with_a_french_message_and_nothing_is_sent(
    server: Server, row: dict[str, str], message: str
) -> None:
    client, csrf = signed_in(server, SECRETARIAT)
    sub = server.subs["lannion"]
    data = {"csrf_token": csrf, "duree-1": "60", "lieu-1": "MSP de Lannion", **row}
    page = client.post(f"/reponses/{sub.id}/creneaux", data=data)
    assert page.status_code == 400
    assert message in page.text
    assert exchange.thread_of(server.store, sub.id or 0) == []


def test_an_empty_message_is_refused_and_a_manager_may_only_read(server: Server) -> None:
    client, csrf = signed_in(server, SECRETARIAT)
    sub = server.subs["lannion"]
    page = client.post(f"/reponses/{sub.id}/messages", data={"csrf_token": csrf, "text": "  "})
    assert page.status_code == 400 and "Le message est vide." in page.text
    manager, csrf = signed_in(server, MANAGER)
    page = manager.get(f"/reponses/{sub.id}")
    assert 'id="form-message"' not in page.text and 'id="form-creneaux"' not in page.text
    page = manager.post(f"/reponses/{sub.id}/messages", data={"csrf_token": csrf, "text": "Hé"})
    assert page.status_code == 403
    assert exchange.thread_of(server.store, sub.id or 0) == []


def test_a_message_is_queued_with_its_reply_button_and_shown_waiting(server: Server) -> None:
    client, csrf = signed_in(server, SECRETARIAT)
    sub = server.subs["lannion"]
    page = client.post(
        f"/reponses/{sub.id}/messages", data={"csrf_token": csrf, "text": "Bonjour <b>à vous</b>"}
    )
    assert page.status_code == 303 and page.headers["location"].endswith("#echanges")
    [message] = exchange.thread_of(server.store, sub.id or 0)
    assert message.state == "pending" and message.author == SECRETARIAT
    assert message.buttons == [[["↩️ Répondre à l'ARS", f"ars:reply:{sub.id}"]]]  # rows
    html = client.get(f"/reponses/{sub.id}").text
    assert "En attente d&#39;envoi" in html and "Bonjour &lt;b&gt;à vous&lt;/b&gt;" in html


def test_suggested_slots_are_working_days_after_the_wished_date() -> None:
    now = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    wished = Submission(reference="X", user_id=1, form_id="f", recipient="r", answers={
        "calendar": {"text": "mi-janvier", "date": "2027-01-16", "label": "le 16 janvier"}
    })  # fmt: skip
    days = [d.strftime("%a %d/%m %H:%M") for d in exchange.suggest_slots(wished, now)]
    assert days == ["Mon 18/01 10:00", "Mon 18/01 14:00", "Tue 19/01 10:00"]
    vague = Submission(reference="Y", user_id=1, form_id="f", recipient="r", answers={
        "calendar": {"text": "dès que possible", "date": None, "label": "dès que possible"}
    })  # fmt: skip
    first = exchange.suggest_slots(vague, now)[0]
    assert first.date().isoformat() == "2026-12-01"  # two days from now at least


def test_the_texts_file_is_checked_at_load(tmp_path: Path) -> None:
    exchange.load_texts()  # the shipped file is valid
    broken = tmp_path / "exchange.yaml"
    source = exchange.TEXTS_PATH.read_text(encoding="utf-8")
    broken.write_text(source.replace("reminder:", "rappel:"), encoding="utf-8")
    with pytest.raises(exchange.TextsError, match="reminder"):
        exchange.load_texts(broken)
    broken.write_text(source.replace("  close:", "  fermee:"), encoding="utf-8")
    with pytest.raises(exchange.TextsError, match="statuts inconnus : fermee"):
        exchange.load_texts(broken)


def test_a_message_may_also_be_emailed_only_to_an_address_the_respondent_proved(
    server: Server,
) -> None:
    from sqlmodel import select

    from bot.storage.models import OutboxJob

    client, csrf = signed_in(server, SECRETARIAT)
    lannion, brest = server.subs["lannion"], server.subs["brest"]
    page = client.get(f"/reponses/{lannion.id}").text
    assert "Envoyer aussi par e-mail à paul.lecam@example.org" in page
    sent = client.post(
        f"/reponses/{lannion.id}/messages",
        data={"csrf_token": csrf, "text": "Voici le compte rendu.", "par_email": "oui"},
    )
    assert sent.status_code == 303
    with server.store.unit() as session:
        [job] = session.exec(select(OutboxJob).where(OutboxJob.kind == "respondent")).all()
    assert job.recipient == "paul.lecam@example.org" and job.submission_id == lannion.id
    mail = exchange.build_staff_message(job, server.settings)
    assert mail["Subject"] == f"Message de l'ARS Bretagne — votre réponse {lannion.reference}"
    assert "Voici le compte rendu." in mail.get_content()

    # the Brest respondent proved no address: no checkbox, and a forged field is refused
    assert "Envoyer aussi par e-mail" not in client.get(f"/reponses/{brest.id}").text
    refused = client.post(
        f"/reponses/{brest.id}/messages",
        data={"csrf_token": csrf, "text": "Bonjour.", "par_email": "oui"},
    )
    assert refused.status_code == 400 and "pas d&#39;adresse vérifiée" in refused.text
    assert exchange.thread_of(server.store, brest.id or 0) == []


def test_overlapping_responses_show_whether_they_agreed_to_be_put_in_touch(
    server: Server,
) -> None:
    from tests.mail.factories import submit

    neighbour, _ = submit(server.store, server.settings, user_id=303, consent_contact=True)
    client, _csrf = signed_in(server, SECRETARIAT)
    lannion = server.subs["lannion"]
    page = client.get(f"/reponses/{lannion.id}").text
    assert "non acceptée par ce répondant (ou réponse antérieure à la question)" in page
    assert neighbour.reference in page and "accepte la mise en relation" in page
    page = client.get(f"/reponses/{neighbour.id}").text
    assert "<strong>acceptée</strong> par ce répondant" in page


def test_staff_cancel_a_proposal_then_a_planned_meeting_and_the_respondent_is_told(
    server: Server,
) -> None:
    from icalendar import Calendar
    from sqlmodel import select

    from bot.storage.models import MeetingSlot, OutboxJob

    client, csrf = signed_in(server, SECRETARIAT)
    sub = server.subs["lannion"]
    row = {"date-1": "2027-03-01", "heure-1": "9h30", "duree-1": "90", "lieu-1": "MSP"}
    assert client.post(f"/reponses/{sub.id}/creneaux", data={"csrf_token": csrf, **row}).is_redirect
    [(meeting, [slot])] = exchange.meetings_of(server.store, sub.id or 0)
    assert (slot.ends_at - slot.starts_at).seconds == 90 * 60
    assert client.post(
        f"/reponses/{sub.id}/rendez-vous/{meeting.id}/annuler", data={"csrf_token": csrf}
    ).is_redirect
    thread = exchange.thread_of(server.store, sub.id or 0)
    assert [m.kind for m in thread] == ["proposal", "cancel"]
    assert "a retiré les créneaux" in thread[-1].text

    # a new proposal, chosen in Telegram, then cancelled by staff: a CANCEL invitation
    assert client.post(f"/reponses/{sub.id}/creneaux", data={"csrf_token": csrf, **row}).is_redirect
    with server.store.unit() as session:
        newest = session.exec(select(MeetingSlot).order_by(MeetingSlot.id.desc())).first()  # type: ignore[union-attr]
        assert newest is not None
        exchange.handle_choice(
            session, server.store, server.settings, sub.user_id, {}, f"slot:{newest.id}"
        )
    meeting = exchange.meetings_of(server.store, sub.id or 0)[0][0]
    assert meeting.status == "scheduled"
    page = client.get(f"/reponses/{sub.id}").text
    assert "(choisi)" in page and "Un temps d" not in page
    assert client.post(
        f"/reponses/{sub.id}/rendez-vous/{meeting.id}/annuler", data={"csrf_token": csrf}
    ).is_redirect
    cancel = exchange.thread_of(server.store, sub.id or 0)[-1]
    assert "a annulé le temps d'échange du lundi 1 mars 2027, 09 h 30 – 11 h 00" in cancel.text
    assert cancel.attachment is not None
    calendar = Calendar.from_ical(cancel.attachment["content"])
    assert str(calendar["method"]) == "CANCEL"
    [event] = calendar.walk("VEVENT")
    assert int(event["sequence"]) == 2 and str(event["status"]) == "CANCELLED"
    with server.store.unit() as session:
        jobs = session.exec(select(OutboxJob).where(OutboxJob.kind == "staff")).all()
    assert [j.payload.get("method") for j in jobs] == ["REQUEST", "CANCEL"]
