"""Database tables (SQLModel). One row per conversation holds its whole state."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, Text, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(**kw: Any) -> Any:
    return Field(sa_column=Column(UtcDateTime(), **kw))


class Conversation(SQLModel, table=True):
    """Where a user is: the active flow, its state, the answers given so far."""

    __tablename__ = "conversation"

    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    flow: str | None = Field(default=None, max_length=64)  # "ami_bretagne", "orientation" or None
    state: str | None = Field(default=None, max_length=128)  # the flow's current step
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = Field(default=0)  # optimistic concurrency: bumped on every save
    consent_at: datetime | None = _ts(nullable=True)
    reminder_sent_at: datetime | None = _ts(nullable=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )


class Submission(SQLModel, table=True):
    """A completed AMI response, immutable once stored."""

    __tablename__ = "submission"
    __table_args__ = (UniqueConstraint("reference"),)

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=32, index=True)  # AMI-2026-0007
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    form_id: str = Field(max_length=64)
    recipient: str = Field(max_length=320)
    answers: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # the response's départements, « 22,56 » (its territory's, else its actors' communes'):
    # the délégation départementale it goes to
    departements: str = Field(default="", max_length=32, index=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )


class SubmissionCommune(SQLModel, table=True):
    """One commune (INSEE code) of a response's territory: the index overlaps are found by."""

    __tablename__ = "submission_commune"

    submission_id: int = Field(foreign_key="submission.id", primary_key=True)
    code: str = Field(max_length=5, primary_key=True, index=True)


class SubmissionPlaceWord(SQLModel, table=True):
    """A place name of a territory text that was not understood (« broceliande »): the only
    words still compared between responses, exactly."""

    __tablename__ = "submission_place_word"

    submission_id: int = Field(foreign_key="submission.id", primary_key=True)
    word: str = Field(max_length=120, primary_key=True, index=True)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # permanent failure (5xx): needs staff attention


class OutboxJob(SQLModel, table=True):
    """An e-mail to send, written in the same transaction as what it is about."""

    __tablename__ = "outbox_job"
    __table_args__ = (UniqueConstraint("message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # "ars", "copy", "digest"
    submission_id: int | None = Field(default=None, foreign_key="submission.id", index=True)
    recipient: str = Field(max_length=320)
    message_id: str = Field(max_length=255)  # stable Message-ID: the same job never mails twice
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=OutboxStatus.PENDING, max_length=16, index=True)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )
    locked_until: datetime | None = _ts(nullable=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sent_at: datetime | None = _ts(nullable=True)
    delay_notified: bool = Field(default=False)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )


class UserNotice(SQLModel, table=True):
    """A message for a user produced outside a turn (mail accepted, mail delayed, reminder)."""

    __tablename__ = "user_notice"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )
    delivered_at: datetime | None = _ts(nullable=True)


class AuditEntry(SQLModel, table=True):
    """Who looked at or exported what (staff access to personal data)."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False))
    actor: str = Field(max_length=64)  # "telegram:123", "cli"
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=255)


class AddressVerification(SQLModel, table=True):
    """A short code e-mailed to an address, typed back by the user to prove they hold it.

    Only a hash of the code is kept. A row with `verified_at` set lets copies go to that address
    for that user; rows also count towards the per-user and per-address limits on codes.
    """

    __tablename__ = "address_verification"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    address: str = Field(max_length=320, index=True)
    code_hash: str = Field(max_length=64)
    attempts: int = Field(default=0)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    verified_at: datetime | None = _ts(nullable=True)


class BotMarker(SQLModel, table=True):
    """Small named facts about this database: a row per instance rewritten by every `/healthz`
    (proof that the database takes writes), and this database's random token (Message-IDs)."""

    __tablename__ = "bot_marker"

    name: str = Field(primary_key=True, max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False))
    value: str = Field(default="", max_length=255)


# --- the ARS back office (bot/web): its own tables, none of the above is altered ----------------


class StaffAccount(SQLModel, table=True):
    """A back-office user: secretariat, délégation (with its départements) or manager."""

    __tablename__ = "staff_account"
    __table_args__ = (UniqueConstraint("email"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320)  # stored lower-case
    role: str = Field(max_length=16)  # "secretariat", "delegation", "manager"
    departements: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    password_hash: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    active: bool = Field(default=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )


class StaffSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "staff_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    account_id: int = Field(foreign_key="staff_account.id", index=True)
    csrf_token: str = Field(max_length=64)
    via: str = Field(default="password", max_length=16)  # "password" or "oidc"
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )
    last_seen_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class LoginAttempt(SQLModel, table=True):
    """A sign-in try (throttling per account and per address holds across instances)."""

    __tablename__ = "login_attempt"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False, index=True)
    )
    email: str = Field(max_length=320, index=True)
    ip: str = Field(max_length=64, index=True)
    success: bool = Field(default=False)


class Followup(SQLModel, table=True):
    """The ARS's follow-up of one response, with what the list filters and sorts on."""

    __tablename__ = "followup"

    submission_id: int = Field(
        sa_column=Column(
            "submission_id", ForeignKey("submission.id"), primary_key=True, autoincrement=False
        )
    )
    reference: str = Field(max_length=32, index=True)
    submitted_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))
    status: str = Field(max_length=32, index=True)
    delegation: str | None = Field(default=None, max_length=8, index=True)  # a département
    departements: str = Field(default="", max_length=64)  # inferred, "22,29"
    agent_id: int | None = Field(default=None, foreign_key="staff_account.id")
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    objectives: str = Field(default="", max_length=128)  # ",information,reflection,"
    first_actor: str = Field(default="", max_length=255)
    territory: str = Field(default="", max_length=255)
    overlap_count: int = Field(default=0)
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False))  # normalised
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )


class FollowupEvent(SQLModel, table=True):
    """One change to a follow-up (status, assignment, label, note, resend): the audit trail."""

    __tablename__ = "followup_event"

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False))
    actor_id: int | None = Field(default=None, foreign_key="staff_account.id")
    actor: str = Field(max_length=320)  # the e-mail at the time, kept if the account goes
    kind: str = Field(max_length=32)  # "status", "delegation", "agent", "labels", "note", "resend"
    old_value: str = Field(default="", sa_column=Column(Text, nullable=False))
    new_value: str = Field(default="", sa_column=Column(Text, nullable=False))


# --- talking with respondents (issue 15): messages, the « temps d'échange » ----------------------


class MessageState(StrEnum):
    PENDING = "pending"  # waiting for a running bot to send it
    SENDING = "sending"  # claimed by an instance (lease in `locked_until`)
    DELIVERED = "delivered"  # Telegram accepted it (or, inbound, it was received)
    UNDELIVERED = "undelivered"  # Telegram refused it for good (the user blocked the bot…)


class RespondentMessage(SQLModel, table=True):
    """One message of a response's thread with its respondent, either way, with its delivery.

    Outbound rows (`direction` "out") are written by the back office and sent by whichever bot
    instance runs; inbound rows ("in") are the respondent's answers, received in a turn.
    """

    __tablename__ = "respondent_message"

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    direction: str = Field(max_length=3)  # "out" or "in"
    kind: str = Field(max_length=16)  # "message", "status", "proposal", "invitation"…
    author: str = Field(default="", max_length=320)  # staff e-mail (out), "" (in)
    text: str = Field(sa_column=Column(Text, nullable=False))
    # inline buttons, rows of [label, payload]; an attachment {filename, mime, content (text)}
    buttons: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    attachment: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    state: str = Field(default=MessageState.PENDING, max_length=16, index=True)
    attempts: int = Field(default=0)
    locked_until: datetime | None = _ts(nullable=True)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )
    delivered_at: datetime | None = _ts(nullable=True)


class Meeting(SQLModel, table=True):
    """A « temps d'échange » proposed to a respondent: slots offered, one chosen, a reminder."""

    __tablename__ = "meeting"

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    # "proposed", "scheduled", "others_asked" (the respondent wants other slots), "cancelled",
    # "withdrawn", "reschedule_asked" (the respondent cancelled and wants another slot),
    # "declined" (a joint meeting the respondent will not attend)
    status: str = Field(default="proposed", max_length=16, index=True)
    chosen_slot_id: int | None = Field(default=None)
    # a joint « temps d'échange »: the same key (the id of the first respondent's meeting) on
    # the meeting row of every respondent invited; None for a meeting with one respondent. Not
    # a foreign key: the group outlives the erasure of any one of its rows (/supprimer).
    joint_id: int | None = Field(default=None, index=True)
    created_by: str = Field(default="", max_length=320)
    organizer: str = Field(default="", max_length=320)  # the agent's e-mail (invitations)
    sequence: int = Field(default=0)  # iCalendar SEQUENCE, bumped on every change
    remind_at: datetime | None = _ts(nullable=True, index=True)
    reminder_sent_at: datetime | None = _ts(nullable=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )


class MeetingSlot(SQLModel, table=True):
    """One slot offered for a meeting: when, and where (a place or a video link)."""

    __tablename__ = "meeting_slot"

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id", index=True)
    position: int = Field(default=1)  # 1…5, the order shown
    starts_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    ends_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    place: str = Field(default="", max_length=500)  # an address, or a https:// video link


# what each meeting status reads as, for staff and respondents (/mesdonnees, back office)
MEETING_STATUS_LABELS = {
    "proposed": "Créneaux proposés, en attente de choix",
    "scheduled": "Planifié",
    "others_asked": "D'autres créneaux sont demandés",
    "cancelled": "Annulé",
    "withdrawn": "Remplacé par une nouvelle proposition",
    "reschedule_asked": "Annulé par le répondant, qui demande un autre créneau",
    "declined": "Décliné par le répondant",
}
