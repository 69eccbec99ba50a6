"""Staff reschedule a planned « temps d'échange » in one step (« Reporter »), over HTTP with the
back office's CSRF, on SQLite and PostgreSQL: the old slot is cancelled (a CANCEL invitation,
same UID, SEQUENCE + 1, to the respondent in Telegram and to the agent by e-mail) and the new
slots are proposed; invalid new slots change nothing; a joint meeting is refused."""

from __future__ import annotations

from typing import Any

from icalendar import Calendar
from sqlmodel import select

from bot import exchange
from bot.storage.models import FollowupEvent, Meeting, MeetingSlot, OutboxJob, Submission
from tests.mail.factories import submit
from tests.web.conftest import SECRETARIAT, Server, WebClient

OLD = {"date-1": "2027-03-01", "heure-1": "9h30", "duree-1": "90", "lieu-1": "MSP de Lannion"}
NEW = {
    "date-1": "2027-03-08", "heure-1": "14:00", "duree-1": "60", "lieu-1": "https://visio.example/ars",
    "date-2": "2027-03-09", "heure-2": "10:00", "duree-2": "60", "lieu-2": "MSP de Lannion",
}  # fmt: skip


def signed_in(server: Server, sub: Submission) -> tuple[WebClient, str]:
    client = server.client()
    assert client.login(SECRETARIAT).status_code == 303
    return client, client.csrf_of(f"/reponses/{sub.id}")


def press(server: Server, sub: Submission, payload: str) -> list[Any]:
    with server.store.unit() as session:
        return exchange.handle_choice(
            session, server.store, server.settings, sub.user_id, {}, payload
        )


def scheduled(server: Server, client: WebClient, csrf: str, sub: Submission) -> Meeting:
    """Staff propose one slot, the respondent picks it in Telegram."""
    assert client.post(f"/reponses/{sub.id}/creneaux", data={"csrf_token": csrf, **OLD}).is_redirect
    [(meeting, [slot])] = exchange.meetings_of(server.store, sub.id or 0)
    press(server, sub, f"slot:{slot.id}")
    [(meeting, _)] = exchange.meetings_of(server.store, sub.id or 0)
    assert meeting.status == "scheduled"
    return meeting


def staff_jobs(server: Server) -> list[OutboxJob]:
    with server.store.unit() as session:
        return list(session.exec(select(OutboxJob).where(OutboxJob.kind == "staff")))


def test_staff_reschedule_cancels_the_old_slot_and_proposes_new_ones_in_one_step(
    server: Server,
) -> None:
    sub = server.subs["lannion"]
    client, csrf = signed_in(server, sub)
    meeting = scheduled(server, client, csrf, sub)
    page = client.get(f"/reponses/{sub.id}").text
    assert f'id="form-reporter-{meeting.id}"' in page and "Reporter" in page
    assert f'id="reporter-{meeting.id}-date-1"' in page  # suggested rows, ids of their own
    [invited] = staff_jobs(server)  # the agent's invitation to the slot the respondent chose
    [request_event] = Calendar.from_ical(invited.payload["ics"]).walk("VEVENT")

    done = client.post(
        f"/reponses/{sub.id}/rendez-vous/{meeting.id}/reporter", data={"csrf_token": csrf, **NEW}
    )
    assert done.is_redirect

    meetings = exchange.meetings_of(server.store, sub.id or 0)
    statuses = {m.id: m.status for m, _ in meetings}
    assert statuses[meeting.id] == "cancelled"
    [(fresh, slots)] = [(m, s) for m, s in meetings if m.status == "proposed"]
    assert [s.place for s in slots] == ["https://visio.example/ars", "MSP de Lannion"]

    # the respondent: the cancellation with its .ics, then the new slots, in this order
    thread = exchange.thread_of(server.store, sub.id or 0)
    cancel, proposal = thread[-2:]
    assert cancel.kind == "cancel" and proposal.kind == "proposal"
    assert "reporte le temps d'échange du lundi 1 mars 2027, 09 h 30 – 11 h 00" in cancel.text
    assert "est déplacé" in proposal.text and "lundi 8 mars 2027" in proposal.text
    assert any(f"ars:slot:{slots[0].id}" in b for row in proposal.buttons for b in row)
    assert cancel.attachment is not None and cancel.attachment["mime"] == "text/calendar"
    calendar = Calendar.from_ical(cancel.attachment["content"])
    assert str(calendar["method"]) == "CANCEL"
    [event] = calendar.walk("VEVENT")
    assert str(event["uid"]) == str(request_event["uid"])
    assert int(event["sequence"]) == int(request_event["sequence"]) + 1
    assert event.decoded("dtstart") == request_event.decoded("dtstart")
    assert event.decoded("dtstart").isoformat() == "2027-03-01T08:30:00+00:00"
    assert str(event["status"]) == "CANCELLED"

    # the agent: the invitation, then its cancellation by e-mail
    jobs = staff_jobs(server)
    assert [j.payload.get("method") for j in jobs] == ["REQUEST", "CANCEL"]
    assert jobs[-1].payload["subject"].startswith("Temps d'échange reporté")
    mailed = Calendar.from_ical(jobs[-1].payload["ics"])
    [mailed_event] = mailed.walk("VEVENT")
    assert str(mailed_event["uid"]) == str(event["uid"])
    assert int(mailed_event["sequence"]) == int(event["sequence"])

    # the history
    with server.store.unit() as session:
        values = [
            e.new_value
            for e in session.exec(
                select(FollowupEvent).where(FollowupEvent.submission_id == sub.id)
            )
        ]
    assert any(v.startswith(f"Temps d'échange reporté par {SECRETARIAT}") for v in values)
    page = client.get(f"/reponses/{sub.id}").text
    assert f"Temps d&#39;échange reporté par {SECRETARIAT}" in page

    # the respondent picks a new slot: a new meeting, a REQUEST of its own
    press(server, sub, f"slot:{slots[1].id}")
    assert exchange.meetings_of(server.store, sub.id or 0)[0][0].status == "scheduled"
    assert fresh.id != meeting.id
    assert [j.payload.get("method") for j in staff_jobs(server)] == ["REQUEST", "CANCEL", "REQUEST"]


def test_invalid_new_slots_leave_the_scheduled_meeting_untouched(server: Server) -> None:
    sub = server.subs["lannion"]
    client, csrf = signed_in(server, sub)
    meeting = scheduled(server, client, csrf, sub)
    before = len(exchange.thread_of(server.store, sub.id or 0))
    url = f"/reponses/{sub.id}/rendez-vous/{meeting.id}/reporter"
    for row, message in [
        ({**NEW, "date-2": "2020-03-09"}, "est déjà passé"),
        ({**NEW, "lieu-1": ""}, "Indiquez le lieu"),
        ({}, "Proposez au moins un créneau"),
    ]:
        refused = client.post(url, data={"csrf_token": csrf, **row})
        assert refused.status_code == 400
        assert "Le temps d&#39;échange n&#39;est pas reporté, rien n&#39;a changé." in refused.text
        assert message in refused.text
    assert client.post(url, data=NEW).status_code in (400, 403)  # no CSRF token
    [(still, _)] = exchange.meetings_of(server.store, sub.id or 0)
    assert still.status == "scheduled" and still.sequence == meeting.sequence
    assert len(exchange.thread_of(server.store, sub.id or 0)) == before
    assert [j.payload.get("method") for j in staff_jobs(server)] == ["REQUEST"]

    # only a planned meeting is rescheduled
    client.post(f"/reponses/{sub.id}/rendez-vous/{meeting.id}/annuler", data={"csrf_token": csrf})
    refused = client.post(url, data={"csrf_token": csrf, **NEW})
    assert refused.status_code == 400 and "Seul un temps d&#39;échange planifié" in refused.text


def test_a_joint_meeting_is_not_rescheduled_and_the_agent_is_told_why(server: Server) -> None:
    host, _ = submit(server.store, server.settings, user_id=301, consent_contact=True)
    guest, _ = submit(server.store, server.settings, user_id=302, consent_contact=True)
    client, csrf = signed_in(server, host)
    joint = {"date-1": "2027-03-01", "heure-1": "14:00", "duree-1": "60", "lieu-1": "Mairie"}
    assert client.post(
        f"/reponses/{host.id}/creneaux",
        data={"csrf_token": csrf, **joint, "inviter": str(guest.id)},
    ).is_redirect
    with server.store.unit() as session:
        meeting = session.exec(select(Meeting).where(Meeting.submission_id == host.id)).one()
        slot = session.exec(select(MeetingSlot).where(MeetingSlot.meeting_id == meeting.id)).one()
    press(server, host, f"slot:{slot.id}")
    page = client.get(f"/reponses/{host.id}").text
    assert f'id="form-reporter-{meeting.id}"' not in page
    assert "Un temps d'échange commun ne se reporte pas" in page
    refused = client.post(
        f"/reponses/{host.id}/rendez-vous/{meeting.id}/reporter", data={"csrf_token": csrf, **NEW}
    )
    assert refused.status_code == 400
    assert "Un temps d&#39;échange commun ne peut pas être reporté" in refused.text
    with server.store.unit() as session:
        assert session.get(Meeting, meeting.id).status == "scheduled"  # type: ignore[union-attr]
