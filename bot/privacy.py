"""Retention of personal data: drafts untouched too long are erased, after a reminder.

Nothing is scheduled in memory: what is due is computed from `conversation.updated_at` and
`reminder_sent_at`, so a restart neither skips nor repeats a reminder or an erasure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import select

from bot.config import Settings
from bot.engine.engine import AMI_FLOW
from bot.storage.models import Conversation, UserNotice
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
    return RetentionReport(reminded=reminded, erased=erased)
