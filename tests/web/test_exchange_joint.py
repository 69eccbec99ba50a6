"""Joint « temps d'échange » and the respondent's own cancellations, over HTTP and through the
respondent's buttons (bot/exchange.py), on SQLite and PostgreSQL.

Only overlapping responses whose respondents agreed to be put in touch are offered; a response
older than the consent question counts as not agreeing, and the page says so. Each invited
respondent gets their own proposal (naming no other respondent), picks or declines it, and gets
their own invitation; the agent sees who takes part.
"""

from __future__ import annotations

from typing import Any

from icalendar import Calendar
from sqlmodel import select

from bot import exchange
from bot.storage.models import Meeting, MeetingSlot, OutboxJob, Submission
from tests.mail.factories import submit
from tests.web.conftest import SECRETARIAT, Server, WebClient

SLOT = {"date-1": "2027-03-01", "heure-1": "14:00", "duree-1": "60", "lieu-1": "Mairie de Lannion"}


def neighbours(server: Server) -> tuple[Submission, Submission, Submission]:
    """Three more responses on the Lannion territory: two agreed to be put in touch."""
    host, _ = submit(server.store, server.settings, user_id=301, consent_contact=True)
    guest, _ = submit(server.store, server.settings, user_id=302, consent_contact=True)
    declining, _ = submit(server.store, server.settings, user_id=303, consent_contact=True)
    return host, guest, declining


def signed_in(server: Server, sub: Submission) -> tuple[WebClient, str]:
    client = server.client()
    assert client.login(SECRETARIAT).status_code == 303
    return client, client.csrf_of(f"/reponses/{sub.id}")


def staff_jobs(server: Server) -> list[OutboxJob]:
    with server.store.unit() as session:
        return list(session.exec(select(OutboxJob).where(OutboxJob.kind == "staff")))


def row_of(server: Server, sub: Submission) -> tuple[Meeting, MeetingSlot]:
    with server.store.unit() as session:
        meeting = session.exec(select(Meeting).where(Meeting.submission_id == sub.id)).one()
        slot = session.exec(select(MeetingSlot).where(MeetingSlot.meeting_id == meeting.id)).one()
        return meeting, slot


def press(server: Server, sub: Submission, payload: str) -> list[Any]:
    with server.store.unit() as session:
        return exchange.handle_choice(
            session, server.store, server.settings, sub.user_id, {}, payload
        )


def test_only_neighbours_who_agreed_are_offered_and_a_forged_invitation_is_refused(
    server: Server,
) -> None:
    host, guest, _ = neighbours(server)
    older, brest = server.subs["lannion"], server.subs["brest"]  # older: no consent answer
    client, csrf = signed_in(server, host)
    page = client.get(f"/reponses/{host.id}").text
    assert f'id="inviter-{guest.id}"' in page
    assert f'id="inviter-{older.id}"' not in page
    assert (
        f"{older.reference} — Lannion-Trégor Communauté : ne peut pas être invité, n'a pas "
        "accepté la mise en relation (ou réponse antérieure à la question)" in page
    )
    assert f'id="inviter-{brest.id}"' not in page  # no commune in common

    def post(**extra: Any) -> Any:
        return client.post(f"/reponses/{host.id}/creneaux", data={"csrf_token": csrf, **extra})

    refused = post(**SLOT, inviter=str(older.id))
    assert refused.status_code == 400 and older.reference in refused.text
    assert "n&#39;ont pas accepté la mise en relation" in refused.text
    refused = post(**SLOT, inviter=str(brest.id))
    assert refused.status_code == 400 and "ne recoupe pas ce territoire" in refused.text
    two = {**SLOT, "date-2": "2027-03-02", "heure-2": "10:00", "lieu-2": "MSP"}
    refused = post(**two, inviter=str(guest.id))
    assert refused.status_code == 400 and "un seul créneau" in refused.text
    assert exchange.meetings_of(server.store, host.id or 0) == []

    # a response that did not agree cannot start a joint meeting either
    page = client.get(f"/reponses/{older.id}").text
    assert 'id="commun-impossible"' in page and 'name="inviter"' not in page
    refused = client.post(
        f"/reponses/{older.id}/creneaux",
        data={"csrf_token": csrf, **SLOT, "inviter": str(host.id)},
    )
    assert refused.status_code == 400 and "n&#39;a pas accepté la mise en relation" in refused.text


def test_a_joint_meeting_is_accepted_declined_and_cancelled_for_everyone_invited(
    server: Server,
) -> None:
    host, guest, declining = neighbours(server)
    client, csrf = signed_in(server, host)
    sent = client.post(
        f"/reponses/{host.id}/creneaux",
        data={"csrf_token": csrf, **SLOT, "inviter": [str(guest.id), str(declining.id)]},
    )
    assert sent.status_code == 303
    assert (
        "commun proposé à 3 répondants dans Telegram" in client.get(sent.headers["location"]).text
    )

    # each respondent gets their own proposal; none names another response or person
    for sub, others in ((host, (guest, declining)), (guest, (host, declining))):
        [proposal] = exchange.thread_of(server.store, sub.id or 0)
        assert "un temps d'échange commun avec d'autres porteurs de projets" in proposal.text
        assert "(Lannion-Trégor Communauté)" in proposal.text and sub.reference in proposal.text
        assert all(o.reference not in proposal.text for o in others)
        assert [row[0][0] for row in proposal.buttons] == [
            "1. lun. 01/03 à 14:00",
            "Je ne pourrai pas participer",
            "↩️ Répondre à l'ARS",
        ]
    host_row, host_slot = row_of(server, host)
    guest_row, guest_slot = row_of(server, guest)
    assert host_row.joint_id == host_row.id == guest_row.joint_id

    # the host and the guest accept, each with their own invitation; the third declines
    invitations = {}
    for sub, slot in ((host, host_slot), (guest, guest_slot)):
        replies = press(server, sub, f"slot:{slot.id}")
        [document] = [r.document for r in replies if r.document is not None]
        assert [b.label for row in replies[-1].buttons for b in row] == [
            "Annuler ce temps d'échange"  # no « autre créneau »: the date is everyone's
        ]
        calendar = Calendar.from_ical(document.content)
        [event] = calendar.walk("VEVENT")
        assert (
            str(event["summary"])
            == f"Temps d'échange commun ARS Bretagne — AMI CPTS ({sub.reference})"
        )
        attendees = [str(a) for a in event["attendee"]]
        assert attendees == [
            f"mailto:{server.settings.ars_mailbox}",
            "mailto:paul.lecam@example.org",
        ]
        invitations[sub.reference] = str(event["uid"])
    assert len(set(invitations.values())) == 2  # one event per respondent's calendar
    _, declined_slot = row_of(server, declining)
    assert (
        "vous ne participerez pas"
        in press(server, declining, f"others:{declined_slot.meeting_id}")[0].text
    )
    assert [(j.recipient, j.payload["subject"].split(" — ")[0]) for j in staff_jobs(server)] == [
        (server.settings.ars_mailbox, "Temps d'échange commun : participation confirmée"),
        (server.settings.ars_mailbox, "Temps d'échange commun : participation confirmée"),
        (server.settings.ars_mailbox, "Temps d'échange commun décliné"),
    ]

    # the agent sees who takes part, on the first response's page and on an invited one's
    page = client.get(f"/reponses/{host.id}").text
    assert page.count("Participe</span>") == 2 and "Ne participera pas</span>" in page
    assert "Annuler ce temps d'échange commun (pour tous les invités)" in page
    assert "Annuler la participation de ce répondant" in client.get(f"/reponses/{guest.id}").text

    # cancelled from the first response: a CANCEL to each one who accepted
    assert client.post(
        f"/reponses/{host.id}/rendez-vous/{host_row.id}/annuler", data={"csrf_token": csrf}
    ).is_redirect
    for sub in (host, guest):
        meeting, _slot = row_of(server, sub)
        assert meeting.status == "cancelled" and meeting.sequence == 2
        cancel = exchange.thread_of(server.store, sub.id or 0)[-1]
        assert cancel.attachment is not None
        [event] = Calendar.from_ical(cancel.attachment["content"]).walk("VEVENT")
        assert str(event["uid"]) == invitations[sub.reference] and int(event["sequence"]) == 2
    assert row_of(server, declining)[0].status == "declined"  # nothing to cancel there


def test_the_respondent_asks_for_another_slot_and_both_sides_get_the_cancellation(
    server: Server,
) -> None:
    sub = server.subs["lannion"]
    client, csrf = signed_in(server, sub)
    assert client.post(
        f"/reponses/{sub.id}/creneaux", data={"csrf_token": csrf, **SLOT}
    ).is_redirect
    meeting, slot = row_of(server, sub)
    replies = press(server, sub, f"slot:{slot.id}")
    [planned] = [r.document for r in replies if r.document is not None]
    assert [b.label for row in replies[-1].buttons for b in row] == [
        "Annuler ce temps d'échange",
        "Demander un autre créneau",
    ]
    replies = press(server, sub, f"resched:{meeting.id}")
    assert "est annulé et l'ARS Bretagne, qui en est prévenue, vous proposera" in replies[0].text
    [document] = [r.document for r in replies if r.document is not None]
    assert document.filename == f"annulation-{sub.reference}.ics"
    request = Calendar.from_ical(planned.content).walk("VEVENT")[0]
    calendar = Calendar.from_ical(document.content)
    [event] = calendar.walk("VEVENT")
    assert str(calendar["method"]) == "CANCEL" and str(event["status"]) == "CANCELLED"
    assert str(event["uid"]) == str(request["uid"])
    assert int(event["sequence"]) == int(request["sequence"]) + 1 == 2
    assert event.decoded("dtstart") == request.decoded("dtstart")
    *_, job = staff_jobs(server)
    assert job.payload["subject"] == f"Nouveau créneau demandé par le répondant — {sub.reference}"
    assert job.payload["method"] == "CANCEL"
    assert str(Calendar.from_ical(job.payload["ics"]).walk("VEVENT")[0]["uid"]) == str(
        request["uid"]
    )
    # the back office shows it, and new slots may be proposed at once
    page = client.get(f"/reponses/{sub.id}").text
    assert "Annulé par le répondant, qui demande un autre créneau" in page
    assert "Demande un autre créneau à la place du lundi 1 mars 2027" in page
    assert press(server, sub, f"resched:{meeting.id}")[0].text.startswith("Cette proposition")
    later = {**SLOT, "date-1": "2027-03-08"}
    assert client.post(
        f"/reponses/{sub.id}/creneaux", data={"csrf_token": csrf, **later}
    ).is_redirect


def test_a_new_proposal_withdraws_the_unanswered_invitations_of_a_joint_one(
    server: Server,
) -> None:
    host, guest, accepting = neighbours(server)
    client, csrf = signed_in(server, host)
    invited = {"inviter": [str(guest.id), str(accepting.id)]}
    assert client.post(
        f"/reponses/{host.id}/creneaux", data={"csrf_token": csrf, **SLOT, **invited}
    ).is_redirect
    _, slot = row_of(server, accepting)
    press(server, accepting, f"slot:{slot.id}")
    later = {**SLOT, "date-1": "2027-03-08"}
    assert client.post(
        f"/reponses/{host.id}/creneaux", data={"csrf_token": csrf, **later}
    ).is_redirect
    assert row_of(server, guest)[0].status == "withdrawn"
    assert "a retiré les créneaux" in exchange.thread_of(server.store, guest.id or 0)[-1].text
    assert row_of(server, accepting)[0].status == "scheduled"  # cancelled by staff if need be
    _, old_slot = row_of(server, guest)
    assert press(server, guest, f"slot:{old_slot.id}")[0].text.startswith("Cette proposition")
