"""Talking with respondents: messages both ways, the « temps d'échange », status messages.

Everything is a database row written in the transaction of what caused it: the back office
writes `respondent_message` rows (and `meeting` / `meeting_slot`), whichever bot instance runs
sends them (`claim_messages`, the Telegram adapter's notices loop) and records their delivery;
the respondent's buttons and replies are handled inside their turn (`handle_choice`,
`record_reply`); e-mails to staff go through the outbox (`KIND_STAFF`). Nothing is scheduled in
memory: a restart, or a second instance, picks up where the last pass stopped.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from bot.config import ROOT, Settings
from bot.mail import fiche as F
from bot.storage.models import (
    MEETING_STATUS_LABELS,
    Followup,
    FollowupEvent,
    Meeting,
    MeetingSlot,
    MessageState,
    OutboxJob,
    RespondentMessage,
    StaffAccount,
    Submission,
)

if TYPE_CHECKING:
    from bot.engine.messages import Reply
    from bot.storage.store import Store

log = logging.getLogger(__name__)

TEXTS_PATH = ROOT / "config" / "exchange.yaml"
KIND_STAFF = "staff"  # outbox: an e-mail to the agent (a reply, an invitation, a cancellation)
KIND_RESPONDENT = "respondent"  # outbox: a message e-mailed to the respondent's proven address
MAX_TEXT = 4000
MAX_SLOTS = 5
LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 8
REPLY_KEY = "_ars_reply"  # in the conversation: the response a typed text answers
SCHEDULED = "echange_planifie"  # the follow-up status a chosen slot sets
WEEKDAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]


# --- texts -------------------------------------------------------------------------------------
class ExchangeTexts(BaseModel):
    """config/exchange.yaml, checked: every key required, none unknown."""

    model_config = ConfigDict(extra="forbid")

    status_messages: dict[str, str]
    message: str
    reply_button: str
    reply_prompt: str
    reply_sent: str
    reply_empty: str
    reply_too_long: str
    proposal: str
    proposal_others_button: str
    others_asked: str
    chosen: str
    chosen_caption: str
    cancel_button: str
    cancelled_by_you: str
    cancel_caption: str
    reschedule_button: str
    reschedule_asked: str
    rescheduled_by_ars: str
    rescheduled_proposal: str
    joint_proposal: str
    joint_decline_button: str
    joint_declined: str
    joint_cancelled_by_you: str
    cancelled_by_ars: str
    proposal_withdrawn: str
    reminder: str
    stale: str


class TextsError(ValueError):
    """config/exchange.yaml is wrong (French message, for operators)."""


_TEXTS: ExchangeTexts | None = None


def load_texts(path: Path = TEXTS_PATH, statuses: list[str] | None = None) -> ExchangeTexts:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TextsError(f"Impossible de lire {path} : {exc}") from exc
    try:
        texts = ExchangeTexts.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'fichier'} : {e['msg']}" for e in exc.errors()
        )
        raise TextsError(f"Le fichier {path} n'est pas valide — {problems}") from exc
    if statuses is None:
        from bot.web.followup import load_config

        statuses = [s.id for s in load_config().statuses]
    unknown = sorted(set(texts.status_messages) - set(statuses))
    if unknown:
        raise TextsError(f"Le fichier {path} cite des statuts inconnus : {', '.join(unknown)}")
    return texts


def texts() -> ExchangeTexts:
    global _TEXTS
    if _TEXTS is None:
        _TEXTS = load_texts()
    return _TEXTS


# --- dates --------------------------------------------------------------------------------------
def when_label(slot: MeetingSlot) -> str:
    """« mardi 12 janvier 2027, 10 h 00 – 11 h 00 » (Paris time)."""
    start = slot.starts_at.astimezone(F.PARIS)
    end = slot.ends_at.astimezone(F.PARIS)
    return (
        f"{WEEKDAYS[start.weekday()]} {F.french_date(start.date())}, "
        f"{start:%H} h {start:%M} – {end:%H} h {end:%M}"
    )


def place_label(slot: MeetingSlot) -> str:
    place = slot.place.strip()
    if place.startswith(("http://", "https://")):
        return f"en visioconférence ({place})"
    return place or "lieu à préciser"


def wished_date(sub: Submission) -> date | None:
    """The date the form understood from the « Calendrier » answer, if any."""
    calendar = (sub.answers or {}).get("calendar")
    if isinstance(calendar, dict) and calendar.get("date"):
        try:
            return date.fromisoformat(str(calendar["date"]))
        except ValueError:
            return None
    return None


def suggest_slots(sub: Submission, now: datetime, count: int = 3) -> list[datetime]:
    """Working-day slots (10:00, 14:00, Paris time) on or after the respondent's wished date,
    and at least two days from now: what the back office pre-fills."""
    today = now.astimezone(F.PARIS).date()
    day = max(wished_date(sub) or today, today + timedelta(days=2))
    hours = (time(10, 0), time(14, 0))
    found: list[datetime] = []
    while len(found) < count:
        if day.weekday() < 5:
            for hour in hours:
                if len(found) < count:
                    found.append(datetime.combine(day, hour, tzinfo=F.PARIS))
        day += timedelta(days=1)
    return found


@dataclass(frozen=True)
class SlotInput:
    starts_at: datetime
    minutes: int
    place: str


class Refused(ValueError):
    """Input the staff must correct; the message is French."""


def parse_slot(day: str, hour: str, minutes: str, place: str, now: datetime) -> SlotInput | None:
    """One slot of the proposal form; None when the row is left empty."""
    day, hour, minutes, place = day.strip(), hour.strip(), minutes.strip(), place.strip()
    if not day and not hour:
        return None
    try:
        when_day = date.fromisoformat(day)
    except ValueError:
        raise Refused(
            f"Date de créneau invalide : « {day} » (format attendu : AAAA-MM-JJ)."
        ) from None
    match = re.fullmatch(r"(\d{1,2})\s*[:h]\s*(\d{2})?", hour)
    if not match or int(match.group(1)) > 23 or int(match.group(2) or 0) > 59:
        raise Refused(f"Heure de créneau invalide : « {hour} » (par exemple 14:30).")
    start = datetime.combine(
        when_day, time(int(match.group(1)), int(match.group(2) or 0)), tzinfo=F.PARIS
    )
    if start <= now:
        raise Refused(f"Le créneau du {F.french_date(when_day)} est déjà passé.")
    if not minutes.isdigit() or not 15 <= int(minutes) <= 480:
        raise Refused("La durée d'un créneau va de 15 à 480 minutes.")
    if not place:
        raise Refused("Indiquez le lieu ou le lien de visioconférence de chaque créneau.")
    if len(place) > 500:
        raise Refused("Le lieu d'un créneau dépasse 500 caractères.")
    return SlotInput(start.astimezone(UTC), int(minutes), place)


# --- calendar invitations -------------------------------------------------------------------------
def invitation(
    meeting: Meeting,
    slot: MeetingSlot,
    sub: Submission,
    settings: Settings,
    *,
    cancel: bool = False,
) -> bytes:
    """The .ics of a meeting (METHOD REQUEST, or CANCEL), made with `icalendar`."""
    from icalendar import Calendar, Event, vCalAddress, vText

    from bot.mail.outbox import mail_domain

    cal = Calendar()
    cal.add("prodid", "-//ARS Bretagne//Bot AMI CPTS//FR")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    event.add("uid", f"meeting-{meeting.id}@{mail_domain(settings)}")
    event.add("sequence", meeting.sequence)
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", slot.starts_at.astimezone(UTC))
    event.add("dtend", slot.ends_at.astimezone(UTC))
    joint = " commun" if meeting.joint_id is not None else ""
    event.add("summary", f"Temps d'échange{joint} ARS Bretagne — AMI CPTS ({sub.reference})")
    place = slot.place.strip()
    if place.startswith(("http://", "https://")):
        event.add("url", place)
        event.add("location", "Visioconférence")
    else:
        event.add("location", place)
    event.add(
        "description",
        f"Temps d'échange{joint} avec l'ARS Bretagne au sujet de la réponse {sub.reference} "
        f"à l'appel à manifestation d'intérêt CPTS."
        + (
            "\nD'autres porteurs de projets dont le territoire recoupe le vôtre y sont invités."
            if joint
            else ""
        )
        + (f"\nLien : {place}" if place.startswith(("http://", "https://")) else ""),
    )
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    organizer = vCalAddress(f"mailto:{meeting.organizer or settings.ars_mailbox}")
    organizer.params["cn"] = vText("ARS Bretagne")
    event.add("organizer", organizer)
    for name, email in _attendees(sub, meeting, settings):
        attendee = vCalAddress(f"mailto:{email}")
        attendee.params["cn"] = vText(name)
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        event.add("attendee", attendee, encode=False)
    cal.add_component(event)
    return cal.to_ical()


def _attendees(sub: Submission, meeting: Meeting, settings: Settings) -> list[tuple[str, str]]:
    """The agent, then the response's first referent (as written in the response). Only this
    respondent, even for a joint meeting: each invited respondent gets their own invitation,
    and no respondent's address reaches another through a calendar file."""
    people = [("ARS Bretagne", meeting.organizer or settings.ars_mailbox)]
    referents = (sub.answers or {}).get("referents") or []
    if referents and isinstance(referents[0], dict) and referents[0].get("email"):
        people.append((str(referents[0].get("name") or "Référent"), str(referents[0]["email"])))
    return people


# --- queueing ------------------------------------------------------------------------------------
def queue(
    session: Session,
    now: datetime,
    sub: Submission,
    *,
    kind: str,
    text: str,
    author: str = "",
    buttons: list[list[tuple[str, str]]] | None = None,
    attachment: dict[str, Any] | None = None,
) -> RespondentMessage:
    """An outbound message to the response's respondent, sent by the next bot pass."""
    message = RespondentMessage(
        submission_id=sub.id or 0,
        user_id=sub.user_id,
        direction="out",
        kind=kind,
        author=author,
        text=text,
        buttons=[[list(b) for b in row] for row in (buttons or [])],
        attachment=attachment,
        state=MessageState.PENDING,
        created_at=now,
    )
    session.add(message)
    session.flush()
    return message


def _reply_button(sub: Submission) -> list[tuple[str, str]]:
    return [(texts().reply_button, f"ars:reply:{sub.id}")]


def agent_address(session: Session, sub_id: int, settings: Settings) -> str:
    """The assigned agent's address, else the secretariat's mailbox."""
    row = session.get(Followup, sub_id)
    if row is not None and row.agent_id is not None:
        agent = session.get(StaffAccount, row.agent_id)
        if agent is not None and agent.active:
            return agent.email
    return settings.ars_mailbox


def mail_staff(
    session: Session,
    store: Store,
    settings: Settings,
    sub: Submission,
    subject: str,
    body: str,
    ics: bytes | None = None,
    cancel: bool = False,
    recipient: str | None = None,
) -> OutboxJob:
    """An e-mail to the agent following the response (or `recipient`: the organizer of a joint
    meeting, who invited its respondents)."""
    from bot.mail.outbox import unique_message_id

    payload: dict[str, Any] = {"subject": subject, "body": body}
    if ics is not None:
        payload["ics"] = ics.decode("utf-8")
        payload["method"] = "CANCEL" if cancel else "REQUEST"
    return store.add_outbox_job(
        session,
        kind=KIND_STAFF,
        recipient=recipient or agent_address(session, sub.id or 0, settings),
        message_id=unique_message_id(sub.reference, KIND_STAFF, settings),
        submission_id=sub.id,
        payload=payload,
    )


def build_staff_message(job: OutboxJob, settings: Settings) -> EmailMessage:
    """The outbox's rendering of a `KIND_STAFF` job: text, and the .ics when there is one."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = job.recipient
    message["Subject"] = str(job.payload.get("subject", "Bot AMI CPTS"))
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = job.message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(str(job.payload.get("body", "")))
    ics = job.payload.get("ics")
    if ics:
        method = str(job.payload.get("method", "REQUEST"))
        message.add_attachment(
            str(ics).encode("utf-8"),
            maintype="text",
            subtype="calendar",
            filename="invitation.ics" if method != "CANCEL" else "annulation.ics",
            params={"method": method},
        )
    return message


# --- the back office's side ------------------------------------------------------------------------
def verified_referent(session: Session, sub: Submission) -> str | None:
    """The response's first referent address, if its respondent proved they hold it (the code
    of bot/mail/trust.py): the only address a message may also be e-mailed to."""
    from bot.mail.outbox import first_referent_address
    from bot.mail.trust import is_verified

    address = first_referent_address(sub.answers or {})
    if address and is_verified(session, sub.user_id, address):
        return address
    return None


def send_message(
    store: Store,
    settings: Settings,
    account: StaffAccount,
    sub: Submission,
    text: str,
    *,
    by_email: bool = False,
) -> None:
    """A message to the respondent in Telegram, and by e-mail to their proven address if asked."""
    from bot.mail.outbox import unique_message_id

    text = text.strip()
    if not text:
        raise Refused("Le message est vide.")
    if len(text) > MAX_TEXT:
        raise Refused("Le message dépasse 4 000 caractères : raccourcissez-le, s'il vous plaît.")
    with store.unit() as session:
        address = verified_referent(session, sub) if by_email else None
        if by_email and address is None:
            raise Refused(
                "Le répondant n'a pas d'adresse vérifiée : le message ne peut partir que dans "
                "Telegram."
            )
        queue(
            session,
            store.clock(),
            sub,
            kind="message",
            text=texts().message.format(reference=sub.reference, text=text),
            author=account.email,
            buttons=[_reply_button(sub)],
        )
        if address is not None:
            store.add_outbox_job(
                session,
                kind=KIND_RESPONDENT,
                recipient=address,
                message_id=unique_message_id(sub.reference, KIND_RESPONDENT, settings),
                submission_id=sub.id,
                payload={
                    "subject": f"Message de l'ARS Bretagne — votre réponse {sub.reference}",
                    "body": texts().message.format(reference=sub.reference, text=text)
                    + "\n\nPour répondre, utilisez le bouton « Répondre à l'ARS » dans la "
                    "conversation Telegram avec le bot AMI CPTS.",
                },
            )
        _event(session, store, sub, account.email, account.id, "message", text[:200])


def consented(sub: Submission) -> bool:
    """Whether the respondent agreed to be put in touch with neighbouring projects (the review's
    toggle, `consent_contact`); a response older than the question has not."""
    return (sub.answers or {}).get("consent_contact") is True


def _check_count(slots: list[SlotInput]) -> None:
    if not slots:
        raise Refused("Proposez au moins un créneau.")
    if len(slots) > MAX_SLOTS:
        raise Refused("Cinq créneaux au plus.")


def propose(
    store: Store,
    settings: Settings,
    account: StaffAccount,
    sub: Submission,
    slots: list[SlotInput],
    guests: list[Submission] | None = None,
) -> Meeting:
    """Offer one to five slots; earlier proposals still open are withdrawn.

    With `guests` (responses whose territory overlaps, checked by the caller), a joint meeting:
    one slot, offered to this respondent and to each guest, every one of whom must have agreed
    to be put in touch. Each gets their own meeting row (same `joint_id`, same slot), picks or
    declines it in Telegram and receives their own invitation; the messages name no other
    respondent.
    """
    guests = [g for g in (guests or []) if g.id != sub.id]
    _check_count(slots)
    if guests:
        if len(slots) != 1:
            raise Refused(
                "Un temps d'échange commun se propose sur un seul créneau : chaque invité "
                "l'accepte ou le décline."
            )
        if not consented(sub):
            raise Refused(
                "Ce répondant n'a pas accepté la mise en relation avec les projets voisins : "
                "un temps d'échange commun ne peut pas lui être proposé."
            )
        refused = [g.reference for g in guests if not consented(g)]
        if refused:
            raise Refused(
                "Ces réponses n'ont pas accepté la mise en relation (ou sont antérieures à la "
                f"question) : {', '.join(refused)}."
            )
    now = store.clock()
    with store.unit() as session:
        planned = session.exec(
            select(Meeting.id).where(Meeting.submission_id == sub.id, Meeting.status == "scheduled")
        ).first()
        if planned is not None:
            raise Refused(
                "Un temps d'échange est déjà planifié pour cette réponse : reportez-le (bouton "
                "« Reporter ») ou annulez-le d'abord (le répondant en est prévenu)."
            )
        _withdraw_open(session, store, account, sub, now)
        organizer = agent_address(session, sub.id or 0, settings)
        meeting = _offer(session, store, account, sub, slots, organizer, now, joint=bool(guests))
        for guest in guests:
            _offer(session, store, account, guest, slots, organizer, now, joint_id=meeting.id,
                   initiator=sub)  # fmt: skip
        return meeting


def _withdraw_open(
    session: Session, store: Store, account: StaffAccount, sub: Submission, now: datetime
) -> None:
    """The proposals of this response still unanswered make way for a new one."""
    for old in session.exec(
        select(Meeting).where(
            Meeting.submission_id == sub.id,
            col(Meeting.status).in_(["proposed", "others_asked"]),
        )
    ):
        old.status = "withdrawn"
        old.updated_at = now
        session.add(old)
        if old.joint_id is not None and old.joint_id == old.id:
            _withdraw_invitations(session, store, account, old, now)


def reschedule_by_staff(
    store: Store,
    settings: Settings,
    account: StaffAccount,
    sub: Submission,
    meeting_id: int,
    slots: list[SlotInput],
) -> Meeting:
    """Move a scheduled one-respondent meeting in one step: the old slot is cancelled (CANCEL
    invitation, same UID, SEQUENCE + 1, to the respondent and the agent) and the new slots are
    offered, in one transaction. Nothing is changed when the new slots are refused.

    A joint meeting is refused: each respondent accepted its one slot on their own, so a new
    slot needs a new joint proposal that each accepts or declines again."""
    _check_count(slots)
    now = store.clock()
    with store.unit() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is None or meeting.submission_id != sub.id:
            raise Refused("Ce temps d'échange n'existe pas pour cette réponse.")
        if meeting.status != "scheduled" or meeting.chosen_slot_id is None:
            raise Refused(
                "Seul un temps d'échange planifié (créneau choisi par le répondant) peut être "
                "reporté ; pour des créneaux encore en attente, proposez-en simplement de "
                "nouveaux."
            )
        if meeting.joint_id is not None:
            raise Refused(
                "Un temps d'échange commun ne peut pas être reporté : chaque invité a accepté "
                "ce créneau de son côté et doit pouvoir accepter ou décliner le nouveau. "
                "Annulez-le, puis proposez un nouveau temps d'échange commun."
            )
        slot = session.get(MeetingSlot, meeting.chosen_slot_id)
        when = when_label(slot) if slot is not None else ""
        _cancel_row(
            session, store, settings, account, meeting, sub, now,
            text=texts().rescheduled_by_ars.format(when=when, reference=sub.reference),
            event=f"Temps d'échange reporté par {account.email} (créneau du {when} annulé)",
            moved=True,
        )  # fmt: skip
        _withdraw_open(session, store, account, sub, now)
        organizer = agent_address(session, sub.id or 0, settings)
        return _offer(session, store, account, sub, slots, organizer, now, moved=when)


def _withdraw_invitations(
    session: Session, store: Store, account: StaffAccount, first: Meeting, now: datetime
) -> None:
    """A new proposal replaces a joint one: the invitations still unanswered are withdrawn, and
    their respondents told (those who accepted keep their meeting until staff cancel it)."""
    for row in session.exec(
        select(Meeting).where(
            Meeting.joint_id == first.id, Meeting.id != first.id, Meeting.status == "proposed"
        )
    ):
        guest = session.get(Submission, row.submission_id)
        row.status = "withdrawn"
        row.updated_at = now
        session.add(row)
        if guest is not None:
            queue(
                session,
                now,
                guest,
                kind="cancel",
                text=texts().proposal_withdrawn.format(reference=guest.reference),
                author=account.email,
                buttons=[_reply_button(guest)],
            )


def _offer(
    session: Session,
    store: Store,
    account: StaffAccount,
    sub: Submission,
    slots: list[SlotInput],
    organizer: str,
    now: datetime,
    *,
    joint: bool = False,
    joint_id: int | None = None,
    initiator: Submission | None = None,
    moved: str = "",
) -> Meeting:
    """One respondent's meeting row, its slots, and the proposal message to them (`moved`: the
    date of the slot this proposal replaces, when staff reschedule)."""
    meeting = Meeting(
        submission_id=sub.id or 0,
        user_id=sub.user_id,
        created_by=account.email,
        organizer=organizer,
        joint_id=joint_id,
        created_at=now,
        updated_at=now,
    )
    session.add(meeting)
    session.flush()
    if joint:
        meeting.joint_id = meeting.id
        session.add(meeting)
    rows: list[MeetingSlot] = []
    for position, slot in enumerate(sorted(slots, key=lambda s: s.starts_at), start=1):
        row = MeetingSlot(
            meeting_id=meeting.id or 0,
            position=position,
            starts_at=slot.starts_at,
            ends_at=slot.starts_at + timedelta(minutes=slot.minutes),
            place=slot.place,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    listing = "\n".join(f"{r.position}. {when_label(r)} — {place_label(r)}" for r in rows)
    buttons = [[(f"{r.position}. {_short_when(r)}", f"ars:slot:{r.id}")] for r in rows]
    if meeting.joint_id is None:
        buttons.append([(texts().proposal_others_button, f"ars:others:{meeting.id}")])
        template = texts().rescheduled_proposal if moved else texts().proposal
        text = template.format(reference=sub.reference, slots=listing, when=moved)
    else:
        buttons.append([(texts().joint_decline_button, f"ars:others:{meeting.id}")])
        territory = str((sub.answers or {}).get("territory") or "").strip()
        text = texts().joint_proposal.format(
            reference=sub.reference, slots=listing, territory=territory or "non précisé"
        )
    buttons.append(_reply_button(sub))
    queue(session, now, sub, kind="proposal", text=text, author=account.email, buttons=buttons)
    if initiator is not None:
        listing = f"temps d'échange commun, à l'initiative de la réponse {initiator.reference} : "
        listing += "; ".join(f"{when_label(r)} — {place_label(r)}" for r in rows)
    elif meeting.joint_id is not None:
        listing = "temps d'échange commun : " + listing
    elif moved:
        listing = f"nouveaux créneaux (report du {moved}) :\n" + listing
    _event(session, store, sub, account.email, account.id, "meeting", listing)
    return meeting


def joint_rows(store: Store, joint_ids: list[int]) -> dict[int, list[tuple[Meeting, Submission]]]:
    """Every respondent's row of these joint meetings, with its response, first invited first."""
    if not joint_ids:
        return {}
    groups: dict[int, list[tuple[Meeting, Submission]]] = {}
    with store.unit() as session:
        rows = session.exec(
            select(Meeting, Submission)
            .join(Submission, col(Submission.id) == col(Meeting.submission_id))
            .where(col(Meeting.joint_id).in_(joint_ids))
            .order_by(col(Meeting.id))
        )
        for meeting, sub in rows:
            groups.setdefault(meeting.joint_id or 0, []).append((meeting, sub))
    return groups


def _short_when(slot: MeetingSlot) -> str:
    start = slot.starts_at.astimezone(F.PARIS)
    return f"{WEEKDAYS[start.weekday()][:3]}. {start:%d/%m} à {start:%H:%M}"


OPEN = ("proposed", "scheduled", "others_asked")


def cancel_by_staff(store: Store, settings: Settings, account: StaffAccount, sub: Submission,
                    meeting_id: int) -> None:  # fmt: skip
    """Cancel a meeting of this response. From the response that started a joint meeting, the
    whole meeting (every invited respondent's row still open); from an invited response, only
    that respondent's participation."""
    now = store.clock()
    with store.unit() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is None or meeting.submission_id != sub.id:
            raise Refused("Ce temps d'échange n'existe pas pour cette réponse.")
        if meeting.status not in OPEN:
            raise Refused("Ce temps d'échange n'est plus en cours.")
        rows = [(meeting, sub)]
        if meeting.joint_id is not None and meeting.joint_id == meeting.id:
            for other in session.exec(
                select(Meeting).where(
                    Meeting.joint_id == meeting.id,
                    Meeting.id != meeting.id,
                    col(Meeting.status).in_(OPEN),
                )
            ):
                guest = session.get(Submission, other.submission_id)
                if guest is not None:
                    rows.append((other, guest))
        for row, row_sub in rows:
            _cancel_row(session, store, settings, account, row, row_sub, now)


def _cancel_row(
    session: Session,
    store: Store,
    settings: Settings,
    account: StaffAccount,
    meeting: Meeting,
    sub: Submission,
    now: datetime,
    *,
    text: str = "",
    event: str = "annulé",
    moved: bool = False,
) -> None:
    """Cancel one row (`moved`: staff reschedule it; `text`, `event`: what they say then)."""
    slot = session.get(MeetingSlot, meeting.chosen_slot_id) if meeting.chosen_slot_id else None
    meeting.status = "cancelled"
    meeting.sequence += 1
    meeting.updated_at = now
    session.add(meeting)
    if slot is not None:
        ics = invitation(meeting, slot, sub, settings, cancel=True)
        queue(
            session,
            now,
            sub,
            kind="cancel",
            text=text
            or texts().cancelled_by_ars.format(when=when_label(slot), reference=sub.reference),
            author=account.email,
            buttons=[_reply_button(sub)],
            attachment=_ics_attachment(ics, "annulation.ics"),
        )
        done = "reporté" if moved else "annulé"
        mail_staff(
            session, store, settings, sub,
            f"Temps d'échange {done} — {sub.reference}",
            f"Le temps d'échange du {when_label(slot)} ({sub.reference}) est {done} par "
            f"{account.email}."
            + (" De nouveaux créneaux sont proposés au répondant." if moved else ""),
            ics, cancel=True, recipient=_organizer(meeting),
        )  # fmt: skip
    else:  # slots offered, none chosen: the respondent's buttons go stale, say so
        queue(
            session,
            now,
            sub,
            kind="cancel",
            text=texts().proposal_withdrawn.format(reference=sub.reference),
            author=account.email,
            buttons=[_reply_button(sub)],
        )
    _event(session, store, sub, account.email, account.id, "meeting", event)


def _ics_attachment(ics: bytes, filename: str) -> dict[str, Any]:
    return {"filename": filename, "mime": "text/calendar", "content": ics.decode("utf-8")}


def _event(
    session: Session,
    store: Store,
    sub: Submission,
    actor: str,
    actor_id: int | None,
    kind: str,
    value: str,
    old: str = "",
) -> None:
    session.add(
        FollowupEvent(
            submission_id=sub.id or 0,
            at=store.clock(),
            actor_id=actor_id,
            actor=actor[:320],
            kind=kind,
            old_value=old,
            new_value=value,
        )
    )


def status_changed(session: Session, store: Store, submission_id: int, status: str,
                   author: str) -> None:  # fmt: skip
    """The short message a respondent gets when staff move their response to `status`."""
    template = texts().status_messages.get(status)
    sub = session.get(Submission, submission_id)
    if not template or sub is None:
        return
    queue(
        session,
        store.clock(),
        sub,
        kind="status",
        text=template.format(reference=sub.reference),
        author=author,
        buttons=[_reply_button(sub)],
    )


def thread_of(store: Store, submission_id: int) -> list[RespondentMessage]:
    with store.unit() as session:
        return list(
            session.exec(
                select(RespondentMessage)
                .where(RespondentMessage.submission_id == submission_id)
                .order_by(col(RespondentMessage.id))
            )
        )


def meetings_of(store: Store, submission_id: int) -> list[tuple[Meeting, list[MeetingSlot]]]:
    with store.unit() as session:
        meetings = list(
            session.exec(
                select(Meeting)
                .where(Meeting.submission_id == submission_id)
                .order_by(col(Meeting.id).desc())
            )
        )
        return [
            (
                m,
                list(
                    session.exec(
                        select(MeetingSlot)
                        .where(MeetingSlot.meeting_id == m.id)
                        .order_by(col(MeetingSlot.position))
                    )
                ),
            )
            for m in meetings
        ]


# --- the respondent's side (inside their turn) -------------------------------------------------------
def _organizer(meeting: Meeting) -> str | None:
    """Where the agent's e-mails about a joint meeting go: its organizer, who invited every
    respondent (None: the agent following the response, as for a meeting with one respondent)."""
    return (meeting.organizer or None) if meeting.joint_id is not None else None


def _meeting_buttons(meeting: Meeting) -> list[list[tuple[str, str]]]:
    """Under a planned meeting (the invitation, the reminder): cancel, and for a meeting with
    one respondent, ask for another slot (a joint meeting's date is the same for everyone)."""
    rows = [[(texts().cancel_button, f"ars:cancel:{meeting.id}")]]
    if meeting.joint_id is None:
        rows.append([(texts().reschedule_button, f"ars:resched:{meeting.id}")])
    return rows


def handle_choice(
    session: Session,
    store: Store,
    settings: Settings,
    user_id: int,
    data: dict[str, Any],
    payload: str,
) -> list[Reply]:
    """A button of an ARS message: « Répondre à l'ARS », a slot, « aucun ne me convient » (for
    a joint meeting « je ne pourrai pas participer »), « annuler », « demander un autre
    créneau ». Only the respondent the message was for can use it."""
    from bot.engine.messages import Button, Document, Reply

    t = texts()
    action, _, raw = payload.partition(":")
    ident = int(raw) if raw.isdigit() and len(raw) < 10 else 0
    now = store.clock()
    if action == "reply":
        sub = session.get(Submission, ident)
        if sub is None or sub.user_id != user_id:
            return [Reply(t.stale)]
        data[REPLY_KEY] = sub.id
        return [Reply(t.reply_prompt.format(reference=sub.reference))]
    if action == "slot":
        slot = session.get(MeetingSlot, ident)
        meeting = session.get(Meeting, slot.meeting_id) if slot is not None else None
        if slot is None or meeting is None or meeting.user_id != user_id:
            return [Reply(t.stale)]
        if meeting.status != "proposed":
            return [Reply(t.stale)]
        sub = session.get(Submission, meeting.submission_id)
        if sub is None:
            return [Reply(t.stale)]
        meeting.status = "scheduled"
        meeting.chosen_slot_id = slot.id
        meeting.sequence += 1
        meeting.updated_at = now
        reminder = slot.starts_at - timedelta(hours=settings.meeting_reminder_hours)
        meeting.remind_at = reminder if reminder > now else None
        meeting.reminder_sent_at = None
        session.add(meeting)
        ics = invitation(meeting, slot, sub, settings)
        when, place = when_label(slot), place_label(slot)
        joint = meeting.joint_id is not None
        chose = "Participation confirmée au temps d'échange commun" if joint else "Créneau choisi"
        session.add(
            RespondentMessage(
                submission_id=sub.id or 0, user_id=user_id, direction="in", kind="choice",
                text=f"{chose} : {when}, {place}", state=MessageState.DELIVERED,
                created_at=now, delivered_at=now,
            )
        )  # fmt: skip
        _set_status(session, store, sub, SCHEDULED)
        if joint:
            subject = f"Temps d'échange commun : participation confirmée — {sub.reference} — {when}"
            body = (
                f"Le répondant de la réponse {sub.reference} participera au temps d'échange "
                f"commun du {when}, {place}.\nSon invitation est jointe (fichier .ics)."
            )
        else:
            subject = f"Temps d'échange confirmé — {sub.reference} — {when}"
            body = (
                f"Le répondant de la réponse {sub.reference} a choisi le créneau du {when}, "
                f"{place}.\nL'invitation est jointe (fichier .ics)."
            )
        mail_staff(session, store, settings, sub, subject, body, ics, recipient=_organizer(meeting))
        text = t.chosen.format(when=when, place=place, reference=sub.reference)
        document = Document(
            filename=f"temps-echange-{sub.reference}.ics",
            content=ics,
            mime_type="text/calendar",
            caption=t.chosen_caption,
        )
        buttons = [
            [Button(label, data) for label, data in row] for row in _meeting_buttons(meeting)
        ]
        return [Reply(text), Reply("", buttons, document=document)]
    if action in ("others", "cancel", "resched"):
        meeting = session.get(Meeting, ident)
        if meeting is None or meeting.user_id != user_id:
            return [Reply(t.stale)]
        sub = session.get(Submission, meeting.submission_id)
        expected = "proposed" if action == "others" else "scheduled"
        if sub is None or meeting.status != expected:
            return [Reply(t.stale)]
        if action == "resched" and meeting.joint_id is not None:
            return [Reply(t.stale)]
        meeting.updated_at = now
        if action == "others":
            return _decline(session, store, settings, meeting, sub, user_id, now)
        return _cancel_by_respondent(session, store, settings, meeting, sub, user_id, now,
                                     reschedule=action == "resched")  # fmt: skip
    return [Reply(t.stale)]


def _decline(
    session: Session,
    store: Store,
    settings: Settings,
    meeting: Meeting,
    sub: Submission,
    user_id: int,
    now: datetime,
) -> list[Reply]:
    """« Aucun ne me convient » (other slots wanted), or, for a joint meeting, « je ne pourrai
    pas participer » (declined)."""
    from bot.engine.messages import Reply

    t = texts()
    if meeting.joint_id is not None:
        meeting.status = "declined"
        session.add(meeting)
        note = "Ne participera pas au temps d'échange commun proposé."
        _inbound(session, sub, user_id, "declined", note, now)
        mail_staff(
            session, store, settings, sub,
            f"Temps d'échange commun décliné — {sub.reference}",
            f"Le répondant de la réponse {sub.reference} ne participera pas au temps "
            "d'échange commun proposé. Vous pouvez lui écrire depuis le back-office.",
            recipient=_organizer(meeting),
        )  # fmt: skip
        return [Reply(t.joint_declined.format(reference=sub.reference))]
    meeting.status = "others_asked"
    session.add(meeting)
    note = "Aucun des créneaux proposés ne convient : d'autres sont demandés."
    _inbound(session, sub, user_id, "others", note, now)
    mail_staff(
        session, store, settings, sub,
        f"D'autres créneaux sont demandés — {sub.reference}",
        f"Le répondant de la réponse {sub.reference} demande d'autres créneaux pour "
        "le temps d'échange. Proposez-en depuis le back-office.",
    )  # fmt: skip
    return [Reply(t.others_asked)]


def _cancel_by_respondent(
    session: Session,
    store: Store,
    settings: Settings,
    meeting: Meeting,
    sub: Submission,
    user_id: int,
    now: datetime,
    *,
    reschedule: bool,
) -> list[Reply]:
    """The respondent cancels a planned meeting, or asks for another slot (which cancels this
    one too: the date will not hold). Both sides get the .ics CANCEL: same UID, SEQUENCE + 1."""
    from bot.engine.messages import Document, Reply

    t = texts()
    slot = session.get(MeetingSlot, meeting.chosen_slot_id or 0)
    meeting.status = "reschedule_asked" if reschedule else "cancelled"
    meeting.sequence += 1
    meeting.remind_at = None
    session.add(meeting)
    when = when_label(slot) if slot is not None else ""
    joint = meeting.joint_id is not None
    if reschedule:
        note = f"Demande un autre créneau à la place du {when} (temps d'échange annulé)."
        subject = f"Nouveau créneau demandé par le répondant — {sub.reference}"
        body = (
            f"Le répondant de la réponse {sub.reference} ne pourra pas être présent le {when} "
            "et demande un autre créneau : le temps d'échange est annulé (fichier .ics joint). "
            "Proposez de nouveaux créneaux depuis le back-office."
        )
        text = t.reschedule_asked.format(when=when, reference=sub.reference)
    elif joint:
        note = f"Participation au temps d'échange commun du {when} annulée."
        subject = f"Participation au temps d'échange commun annulée — {sub.reference}"
        body = (
            f"Le répondant de la réponse {sub.reference} a annulé sa participation au temps "
            f"d'échange commun du {when} (fichier .ics joint)."
        )
        text = t.joint_cancelled_by_you.format(when=when, reference=sub.reference)
    else:
        note = f"Temps d'échange du {when} annulé."
        subject = f"Temps d'échange annulé par le répondant — {sub.reference}"
        body = (
            f"Le répondant de la réponse {sub.reference} a annulé le temps d'échange du "
            f"{when}. Proposez d'autres créneaux depuis le back-office."
        )
        text = t.cancelled_by_you.format(when=when, reference=sub.reference)
    _inbound(session, sub, user_id, "reschedule" if reschedule else "cancel", note, now)
    cancellation = invitation(meeting, slot, sub, settings, cancel=True) if slot else None
    mail_staff(session, store, settings, sub, subject, body, cancellation, cancel=True,
               recipient=_organizer(meeting))  # fmt: skip
    replies = [Reply(text)]
    if cancellation is not None:
        replies.append(
            Reply(
                "",
                document=Document(
                    filename=f"annulation-{sub.reference}.ics",
                    content=cancellation,
                    mime_type="text/calendar",
                    caption=t.cancel_caption,
                ),
            )
        )
    return replies


def _inbound(
    session: Session, sub: Submission, user_id: int, kind: str, text: str, now: datetime
) -> RespondentMessage:
    row = RespondentMessage(
        submission_id=sub.id or 0,
        user_id=user_id,
        direction="in",
        kind=kind,
        text=text,
        state=MessageState.DELIVERED,
        created_at=now,
        delivered_at=now,
    )
    session.add(row)
    return row


def _set_status(session: Session, store: Store, sub: Submission, status: str) -> None:
    row = session.get(Followup, sub.id, with_for_update=store.is_postgres)
    if row is None or row.status == status:
        return
    _event(session, store, sub, "répondant (Telegram)", None, "status", status, old=row.status)
    row.status = status
    row.updated_at = store.clock()
    session.add(row)


def record_reply(
    session: Session,
    store: Store,
    settings: Settings,
    user_id: int,
    submission_id: int,
    text: str,
) -> tuple[list[Reply], bool]:
    """The respondent's answer after « Répondre à l'ARS »; (replies, done)."""
    from bot.engine.messages import Reply

    t = texts()
    sub = session.get(Submission, submission_id)
    if sub is None or sub.user_id != user_id:
        return [Reply(t.stale)], True
    if not text:
        return [Reply(t.reply_empty)], False
    if len(text) > MAX_TEXT:
        return [Reply(t.reply_too_long)], False
    _inbound(session, sub, user_id, "message", text, store.clock())
    mail_staff(
        session, store, settings, sub,
        f"Message du répondant — {sub.reference}",
        f"Le répondant de la réponse {sub.reference} a écrit depuis Telegram :\n\n{text}\n\n"
        "Répondez-lui depuis le back-office (fiche de la réponse, « Échanges »).",
    )  # fmt: skip
    return [Reply(t.reply_sent.format(reference=sub.reference))], True


# --- the running bot's passes -----------------------------------------------------------------------
def claim_messages(store: Store, limit: int = 20) -> list[RespondentMessage]:
    """Outbound messages to send now, each claimed for a lease (safe across instances)."""
    now = store.clock()
    table = RespondentMessage.__table__  # type: ignore[attr-defined]
    claimable = or_(
        table.c.state == MessageState.PENDING,
        (table.c.state == MessageState.SENDING) & (table.c.locked_until < now),
    )
    with store.unit() as session:
        ids = list(
            session.exec(
                select(RespondentMessage.id)
                .where(RespondentMessage.direction == "out")
                .where(claimable)
                .order_by(col(RespondentMessage.id))
                .limit(limit)
            )
        )
    claimed: list[RespondentMessage] = []
    for ident in ids:
        with store.unit() as session:
            result = session.execute(
                update(table)
                .where(table.c.id == ident, claimable)
                .values(
                    state=MessageState.SENDING,
                    locked_until=now + LEASE,
                    attempts=table.c.attempts + 1,
                )
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                row = session.get(RespondentMessage, ident)
                if row is not None:
                    session.refresh(row)
                    claimed.append(row)
    return claimed


def finish_message(store: Store, message_id: int, state: str, error: str | None = None) -> None:
    """Record the outcome: delivered, undelivered (with Telegram's reason) or back to pending."""
    with store.unit() as session:
        row = session.get(RespondentMessage, message_id)
        if row is None:
            return
        if state == MessageState.PENDING and row.attempts >= MAX_ATTEMPTS:
            state = MessageState.UNDELIVERED
        row.state = state
        row.error = (error or None) and error[:500]
        row.locked_until = None
        if state == MessageState.DELIVERED:
            row.delivered_at = store.clock()
        session.add(row)


def queue_due_reminders(store: Store) -> int:
    """The day-before reminders now due, queued once whatever the number of instances."""
    now = store.clock()
    with store.unit() as session:
        due = list(
            session.exec(
                select(Meeting.id).where(
                    Meeting.status == "scheduled",
                    col(Meeting.reminder_sent_at).is_(None),
                    col(Meeting.remind_at).is_not(None),
                    col(Meeting.remind_at) <= now,
                )
            )
        )
    table = Meeting.__table__  # type: ignore[attr-defined]
    queued = 0
    for ident in due:
        with store.unit() as session:
            result = session.execute(
                update(table)
                .where(
                    table.c.id == ident,
                    table.c.reminder_sent_at.is_(None),
                    table.c.status == "scheduled",
                )
                .values(reminder_sent_at=now)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another instance took it
            meeting = session.get(Meeting, ident)
            assert meeting is not None
            session.refresh(meeting)
            slot = session.get(MeetingSlot, meeting.chosen_slot_id or 0)
            sub = session.get(Submission, meeting.submission_id)
            if slot is None or sub is None:
                continue
            queue(
                session,
                now,
                sub,
                kind="reminder",
                text=texts().reminder.format(
                    when=when_label(slot), place=place_label(slot), reference=sub.reference
                ),
                buttons=[*_meeting_buttons(meeting), _reply_button(sub)],
            )
            queued += 1
    return queued


STATE_LABELS = {
    MessageState.PENDING: ("En attente d'envoi", "info"),
    MessageState.SENDING: ("En cours d'envoi", "info"),
    MessageState.DELIVERED: ("Remis", "success"),
    MessageState.UNDELIVERED: ("Non remis", "error"),
}
MEETING_LABELS = MEETING_STATUS_LABELS  # the French label of each status
# a respondent's row in a joint meeting, as the agent sees it
PARTICIPATION_LABELS = {
    "proposed": ("Invitation envoyée, sans réponse", "info"),
    "scheduled": ("Participe", "success"),
    "declined": ("Ne participera pas", "warning"),
    "cancelled": ("Participation annulée", "error"),
    "withdrawn": ("Invitation retirée", "error"),
}
