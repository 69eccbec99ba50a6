"""Retention of personal data: drafts untouched too long are erased, after a reminder.

Nothing is scheduled in memory: what is due is computed from `conversation.updated_at` and
`reminder_sent_at`, so a restart neither skips nor repeats a reminder or an erasure.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session, col, select

from bot.config import AMI_FLOW, Settings
from bot.storage.models import (
    MEETING_STATUS_LABELS,
    AddressVerification,
    Conversation,
    Followup,
    FollowupEvent,
    Meeting,
    MeetingSlot,
    OutboxJob,
    OutboxStatus,
    RespondentMessage,
    Submission,
    SubmissionCommune,
    SubmissionPlaceWord,
    UserNotice,
)
from bot.storage.store import Store

REMINDER = (
    "Bonjour, votre réponse à l'AMI CPTS de l'ARS Bretagne n'est pas terminée. Sans nouvelle "
    "activité de votre part, ce brouillon sera effacé le {date}, conformément à notre politique "
    "de conservation. Tapez /reprendre pour la terminer, ou /supprimer pour l'effacer dès maintenant."
)
ERASED = (
    "Votre brouillon de réponse à l'AMI CPTS, inactif depuis {days} jours, a été effacé. "
    "Vous pouvez recommencer à tout moment avec /ami."
)


@dataclass(frozen=True)
class RetentionReport:
    reminded: int
    erased: int
    purged: int = 0  # submitted responses past SUBMISSION_RETENTION_DAYS


def _has_data(conv: Conversation) -> bool:
    """Anything the user gave (a form or guide in progress), beyond the engine's bookkeeping."""
    return any(not key.startswith("_") and value for key, value in conv.data.items())


def _has_ami_draft(conv: Conversation) -> bool:
    """An AMI response begun and not sent: the only thing worth a reminder."""
    draft = conv.data.get(AMI_FLOW) or {}
    return isinstance(draft, dict) and bool(draft.get("answers"))


def apply_retention(
    store: Store, settings: Settings, now: datetime | None = None
) -> RetentionReport:
    """Send the reminders that are due and erase the drafts whose time is up."""
    now = now or store.clock()
    erase_before = now - timedelta(days=settings.draft_retention_days)
    remind_before = erase_before + timedelta(days=settings.draft_reminder_days)
    reminded = erased = 0
    with store.unit() as session:
        stmt = select(Conversation).where(Conversation.updated_at < remind_before)
        if store.is_postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        for conv in session.exec(stmt):
            if not _has_data(conv):
                continue
            if conv.updated_at < erase_before:
                had_ami_draft = _has_ami_draft(conv)
                conv.data = {}
                conv.flow = None
                conv.state = None
                conv.reminder_sent_at = None
                flag_modified(conv, "data")
                session.add(conv)
                if had_ami_draft:
                    session.add(
                        UserNotice(
                            user_id=conv.user_id,
                            text=ERASED.format(days=settings.draft_retention_days),
                            created_at=now,
                        )
                    )
                erased += 1
            elif not _has_ami_draft(conv):
                continue
            elif conv.reminder_sent_at is None or conv.reminder_sent_at < conv.updated_at:
                erase_on = conv.updated_at + timedelta(days=settings.draft_retention_days)
                conv.reminder_sent_at = now
                session.add(conv)
                session.add(
                    UserNotice(
                        user_id=conv.user_id,
                        text=REMINDER.format(date=erase_on.strftime("%d/%m/%Y")),
                        created_at=now,
                    )
                )
                reminded += 1
    purged = purge_submissions(store, settings, now)
    return RetentionReport(reminded=reminded, erased=erased, purged=purged)


# =========================================================================== the user's rights
DPO_DEFAULT = (
    "Délégué à la protection des données, ARS Bretagne, 6 place des Colombes, CS 14253, "
    "35042 Rennes Cedex"
)
KIND_LABELS = {
    "ars": "votre réponse, au secrétariat de l'ARS Bretagne",
    "copy": "la copie de votre réponse",
    "verify": "un code de vérification",
}
STATUS_LABELS = {"pending": "en attente d'envoi", "sent": "envoyé", "failed": "en échec"}


def dpo(settings: Settings) -> str:
    return settings.dpo_contact.strip() or DPO_DEFAULT


def notice_values(settings: Settings) -> dict[str, str]:
    """The values the privacy notice shows: configured durations and contacts, never fixed."""
    return {
        "draft_days": str(settings.draft_retention_days),
        "reminder_days": str(settings.draft_reminder_days),
        "retention_days": str(settings.submission_retention_days),
        "dpo": dpo(settings),
        "mailbox": settings.ars_mailbox,
    }


def _verification_ids(session: Session, user_id: int) -> list[int]:
    stmt = select(AddressVerification.id).where(AddressVerification.user_id == user_id)
    return [i for i in session.exec(stmt) if i is not None]


def _code_jobs(session: Session, verification_ids: list[int]) -> list[OutboxJob]:
    jobs: list[OutboxJob] = []
    for vid in verification_ids:
        stmt = select(OutboxJob).where(OutboxJob.message_id.like(f"<code-{vid}.%"))  # type: ignore[attr-defined]
        jobs += list(session.exec(stmt))
    return jobs


def remove_mail_files(settings: Settings, reference: str) -> None:
    """The `.eml` files of a response (demo mode without SMTP), if any."""
    directory = Path(settings.mail_outbox_dir)
    if not reference or not directory.is_dir():
        return
    for path in directory.glob(f"{reference}-*.eml"):
        with contextlib.suppress(OSError):
            path.unlink()


@dataclass(frozen=True)
class Erasure:
    kept: list[str]  # references the ARS has received (it holds them now)
    erased_submissions: list[str]  # references erased before reaching the ARS


def delete_submission(session: Session, sub: Submission) -> None:
    """Delete a response with every row that refers to it: its e-mail jobs, its territory
    index (communes, words) and the back office's follow-up and history."""
    _delete_exchanges(session, [sub.id or 0])
    for model in (OutboxJob, SubmissionCommune, SubmissionPlaceWord, FollowupEvent, Followup):
        session.exec(delete(model).where(col(model.submission_id) == sub.id))  # type: ignore[attr-defined]
    session.flush()
    session.delete(sub)


def _delete_exchanges(session: Session, submission_ids: list[int]) -> None:
    """The messages and « temps d'échange » (with their slots) of these responses."""
    meeting_ids = list(
        session.exec(select(Meeting.id).where(col(Meeting.submission_id).in_(submission_ids)))
    )
    if meeting_ids:
        session.exec(delete(MeetingSlot).where(col(MeetingSlot.meeting_id).in_(meeting_ids)))  # type: ignore[call-overload]
        session.exec(delete(Meeting).where(col(Meeting.id).in_(meeting_ids)))  # type: ignore[call-overload]
    session.exec(
        delete(RespondentMessage).where(col(RespondentMessage.submission_id).in_(submission_ids))  # type: ignore[call-overload]
    )
    session.flush()


def erase_user(session: Session, settings: Settings, user_id: int) -> Erasure:
    """Erase everything about the user that the ARS has not received (in the caller's turn).

    Kept: submissions whose e-mail the ARS mailbox accepted, with their e-mail records. Erased:
    notices, address verifications and their code e-mails, and every submission not yet
    received by the ARS together with its e-mail jobs (they will not be sent) and files.
    The conversation row itself is deleted by the turn (`Turn.erase`).
    """
    kept: list[str] = []
    erased: list[str] = []
    subs = list(session.exec(select(Submission).where(Submission.user_id == user_id)))
    # the conversation with the ARS held here goes with the rest, even for a response the ARS
    # keeps: the bot will not write to this person again (the agents have had the e-mails)
    _delete_exchanges(session, [s.id for s in subs if s.id is not None])
    for sub in subs:
        jobs = list(session.exec(select(OutboxJob).where(OutboxJob.submission_id == sub.id)))
        if any(j.kind == "ars" and j.status == OutboxStatus.SENT for j in jobs):
            kept.append(sub.reference)
            continue
        erased.append(sub.reference)
        remove_mail_files(settings, sub.reference)
        delete_submission(session, sub)
    vids = _verification_ids(session, user_id)
    for job in _code_jobs(session, vids):
        session.delete(job)
    session.flush()
    session.exec(delete(AddressVerification).where(col(AddressVerification.user_id) == user_id))  # type: ignore[call-overload]
    session.exec(delete(UserNotice).where(col(UserNotice.user_id) == user_id))  # type: ignore[call-overload]
    session.flush()
    return Erasure(kept=kept, erased_submissions=erased)


def _when(value: datetime | None) -> str:
    from bot.mail.fiche import french_date

    return french_date(value) if value else "—"


def my_data(
    session: Session,
    settings: Settings,
    user_id: int,
    conversation: Conversation,
    draft_text: str | None,
) -> tuple[str, dict[str, Any]]:
    """Everything held about the user: a readable French text and the same as plain JSON."""
    from bot.mail.fiche import build_fiche

    lines = [
        "VOS DONNÉES — bot AMI CPTS de l'ARS Bretagne",
        f"Établi le {_when(datetime.now(UTC))}.",
        "",
        f"Identifiant Telegram : {user_id}",
        f"Accord à l'information sur vos données : {_when(conversation.consent_at)}",
        f"Première conversation : {_when(conversation.created_at)} ; "
        f"dernière activité : {_when(conversation.updated_at)}",
        "",
        "== Réponse en cours (brouillon) ==",
        draft_text or "Aucune.",
        "",
        "== Réponses envoyées ==",
    ]
    data: dict[str, Any] = {
        "telegram_user_id": user_id,
        "consent_at": conversation.consent_at.isoformat() if conversation.consent_at else None,
        "draft": draft_text,
        "submissions": [],
        "emails": [],
        "notices": [],
    }
    subs = list(
        session.exec(
            select(Submission).where(Submission.user_id == user_id).order_by(Submission.id)  # type: ignore[arg-type]
        )
    )
    if not subs:
        lines.append("Aucune.")
    for sub in subs:
        fiche = build_fiche(sub)
        lines += [
            "",
            f"Réponse {sub.reference}, envoyée le {fiche.submitted}",
            *fiche.lines(),
        ]
        data["submissions"].append(
            {"reference": sub.reference, "created_at": sub.created_at.isoformat(), **sub.answers}
        )
    sub_ids = [s.id for s in subs if s.id is not None]
    jobs = (
        list(
            session.exec(
                select(OutboxJob)
                .where(OutboxJob.submission_id.in_(sub_ids))  # type: ignore[union-attr]
                .order_by(OutboxJob.id)  # type: ignore[arg-type]
            )
        )
        if sub_ids
        else []
    )
    jobs += _code_jobs(session, _verification_ids(session, user_id))
    lines += ["", "== E-mails envoyés à votre sujet =="]
    if not jobs:
        lines.append("Aucun.")
    for job in jobs:
        what = KIND_LABELS.get(job.kind, job.kind)
        status = STATUS_LABELS.get(job.status, job.status)
        when = f", le {_when(job.sent_at)}" if job.sent_at else ""
        lines.append(f"• {what} → {job.recipient} : {status}{when}")
        data["emails"].append(
            {
                "kind": job.kind,
                "recipient": job.recipient,
                "status": job.status,
                "sent_at": job.sent_at.isoformat() if job.sent_at else None,
            }
        )
    verified = session.exec(
        select(AddressVerification)
        .where(AddressVerification.user_id == user_id)
        .where(AddressVerification.verified_at.is_not(None))  # type: ignore[union-attr]
    )
    addresses = sorted({v.address for v in verified})
    lines += ["", "== Adresses vérifiées pour recevoir une copie =="]
    lines += [f"• {a}" for a in addresses] or ["Aucune."]
    notices = list(
        session.exec(
            select(UserNotice).where(UserNotice.user_id == user_id).order_by(UserNotice.id)  # type: ignore[arg-type]
        )
    )
    lines += ["", "== Messages que le bot vous a envoyés de lui-même =="]
    lines += [f"• {_when(n.created_at)} : {n.text}" for n in notices] or ["Aucun."]
    data["notices"] = [{"created_at": n.created_at.isoformat(), "text": n.text} for n in notices]
    lines += ["", "== Échanges avec l'ARS Bretagne (messages, temps d'échange) =="]
    sub_refs = {s.id: s.reference for s in subs}
    exchanged = list(
        session.exec(
            select(RespondentMessage)
            .where(col(RespondentMessage.submission_id).in_(list(sub_refs)))
            .order_by(col(RespondentMessage.id))
        )
    )
    for m in exchanged:
        who = "ARS → vous" if m.direction == "out" else "vous → ARS"
        lines.append(
            f"• {_when(m.created_at)} ({sub_refs.get(m.submission_id, '')}, {who}) : {m.text}"
        )
    meetings = list(
        session.exec(select(Meeting).where(col(Meeting.submission_id).in_(list(sub_refs))))
    )

    for meeting in meetings:
        slot = session.get(MeetingSlot, meeting.chosen_slot_id) if meeting.chosen_slot_id else None
        when = f", {_when(slot.starts_at)} — {slot.place}" if slot is not None else ""
        # a joint meeting: only that it is one; the other respondents invited are not named
        joint = " commun (avec d'autres porteurs de projets voisins)" if meeting.joint_id else ""
        status = MEETING_STATUS_LABELS.get(meeting.status, meeting.status)
        lines.append(
            f"• Temps d'échange{joint} ({sub_refs.get(meeting.submission_id, '')}) : {status}{when}"
        )
    if not exchanged and not meetings:
        lines.append("Aucun.")
    data["exchanges"] = [
        {
            "reference": sub_refs.get(m.submission_id),
            "direction": m.direction,
            "kind": m.kind,
            "text": m.text,
            "state": m.state,
            "created_at": m.created_at.isoformat(),
        }
        for m in exchanged
    ]
    data["meetings"] = [
        {
            "reference": sub_refs.get(m.submission_id),
            "status": m.status,
            "joint": m.joint_id is not None,
            "slot": (
                {
                    "starts_at": slot.starts_at.isoformat(),
                    "ends_at": slot.ends_at.isoformat(),
                    "place": slot.place,
                }
                if (slot := session.get(MeetingSlot, m.chosen_slot_id or 0)) is not None
                else None
            ),
        }
        for m in meetings
    ]
    lines += [
        "",
        "== Conservation et contacts ==",
        f"Brouillon : effacé après {settings.draft_retention_days} jours sans activité. "
        f"Réponses envoyées : effacées de ce bot après {settings.submission_retention_days} "
        "jours ; l'ARS Bretagne conserve ce qu'elle a reçu le temps du traitement de l'AMI.",
        f"Délégué à la protection des données : {dpo(settings)}.",
        "Réclamation : Commission nationale de l'informatique et des libertés (CNIL), www.cnil.fr.",
    ]
    return "\n".join(lines) + "\n", data


# =========================================================================== retention of responses
def purge_submissions(store: Store, settings: Settings, now: datetime | None = None) -> int:
    """Erase submitted responses older than SUBMISSION_RETENTION_DAYS, their e-mails and files.

    Also erases what only served them: address verifications and code e-mails, and notices
    already delivered, once older than DRAFT_RETENTION_DAYS.
    """
    now = now or store.clock()
    before = now - timedelta(days=settings.submission_retention_days)
    short = now - timedelta(days=settings.draft_retention_days)
    purged = 0
    with store.unit() as session:
        old = session.exec(select(Submission).where(Submission.created_at < before))  # type: ignore[operator]
        for sub in list(old):
            remove_mail_files(settings, sub.reference)
            delete_submission(session, sub)
            purged += 1
        stale = list(
            session.exec(
                select(AddressVerification).where(AddressVerification.created_at < short)  # type: ignore[operator]
            )
        )
        for job in _code_jobs(session, [v.id for v in stale if v.id is not None]):
            if job.status != OutboxStatus.PENDING:
                session.delete(job)
        for row in stale:
            session.delete(row)
        session.exec(
            delete(UserNotice)  # type: ignore[call-overload]
            .where(UserNotice.delivered_at.is_not(None))  # type: ignore[union-attr]
            .where(col(UserNotice.created_at) < short)
        )
    return purged
