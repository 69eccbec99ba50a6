"""Who may receive what: proven addresses for copies, and limits on submissions and e-mails.

A copy of a response goes only to an address the user proved they hold: the bot e-mails a
short code to it (an outbox job of kind "verify"), the user types it back in the chat. Only a
hash of the code is stored; a code expires after `COPY_CODE_MINUTES` and allows
`COPY_CODE_ATTEMPTS` tries. Limits over a rolling 24 h window keep one user from flooding the
ARS mailbox or a third party's: submissions per user, codes per user and per address, copies
per address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from enum import StrEnum

from sqlalchemy import func
from sqlmodel import Session, select

from bot.config import Settings
from bot.storage.models import AddressVerification, OutboxJob, Submission

KIND_VERIFY = "verify"
WINDOW = timedelta(hours=24)
CODE_DIGITS = 6


def _hash(user_id: int, address: str, code: str) -> str:
    return hashlib.sha256(f"{user_id}:{address.lower()}:{code}".encode()).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def is_verified(session: Session, user_id: int, address: str) -> bool:
    """True when this user proved they hold this address (a code typed back in time)."""
    stmt = (
        select(AddressVerification.id)
        .where(AddressVerification.user_id == user_id)
        .where(func.lower(AddressVerification.address) == address.lower())
        .where(AddressVerification.verified_at.is_not(None))  # type: ignore[union-attr]
        .limit(1)
    )
    return session.exec(stmt).first() is not None


def submissions_today(session: Session, user_id: int, now: datetime) -> int:
    stmt = (
        select(func.count())
        .select_from(Submission)
        .where(Submission.user_id == user_id)
        .where(Submission.created_at > now - WINDOW)  # type: ignore[operator]
    )
    return int(session.exec(stmt).one())


def copies_today(session: Session, address: str, now: datetime) -> int:
    stmt = (
        select(func.count())
        .select_from(OutboxJob)
        .where(OutboxJob.kind == "copy")
        .where(func.lower(OutboxJob.recipient) == address.lower())
        .where(OutboxJob.created_at > now - WINDOW)  # type: ignore[operator]
    )
    return int(session.exec(stmt).one())


def _codes_today(session: Session, now: datetime, **where: object) -> int:
    stmt = (
        select(func.count())
        .select_from(AddressVerification)
        .where(AddressVerification.created_at > now - WINDOW)  # type: ignore[operator]
    )
    if "user_id" in where:
        stmt = stmt.where(AddressVerification.user_id == where["user_id"])
    if "address" in where:
        stmt = stmt.where(func.lower(AddressVerification.address) == str(where["address"]).lower())
    return int(session.exec(stmt).one())


@dataclass(frozen=True)
class CodeSent:
    verification_id: int
    code: str


class Refused(StrEnum):
    USER_LIMIT = "user_limit"
    ADDRESS_LIMIT = "address_limit"


def start_verification(
    session: Session, settings: Settings, *, user_id: int, address: str, now: datetime
) -> CodeSent | Refused:
    """Create a code for the address (within the limits) and queue its e-mail."""
    if _codes_today(session, now, user_id=user_id) >= settings.copy_codes_per_day:
        return Refused.USER_LIMIT
    if _codes_today(session, now, address=address) >= settings.copy_codes_per_day:
        return Refused.ADDRESS_LIMIT
    code = new_code()
    row = AddressVerification(
        user_id=user_id,
        address=address,
        code_hash=_hash(user_id, address, code),
        created_at=now,
        expires_at=now + timedelta(minutes=settings.copy_code_minutes),
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    from bot.mail.outbox import unique_message_id

    session.add(
        OutboxJob(
            kind=KIND_VERIFY,
            recipient=address,
            message_id=unique_message_id(f"code-{row.id}", KIND_VERIFY, settings),
            payload={
                "code": code,
                "user_id": user_id,
                "verification_id": row.id,
                "minutes": settings.copy_code_minutes,
            },
            next_attempt_at=now,
            created_at=now,
        )
    )
    session.flush()
    return CodeSent(row.id, code)


class Check(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    NONE = "none"


def check_code(
    session: Session, settings: Settings, *, user_id: int, address: str, typed: str, now: datetime
) -> tuple[Check, int]:
    """Compare a typed code with the latest one sent to the address; (outcome, tries left)."""
    stmt = (
        select(AddressVerification)
        .where(AddressVerification.user_id == user_id)
        .where(AddressVerification.address == address)
        .order_by(AddressVerification.id.desc())  # type: ignore[union-attr]
        .limit(1)
    )
    row = session.exec(stmt).first()
    if row is None:
        return Check.NONE, 0
    if row.verified_at is not None:
        return Check.OK, 0
    if row.attempts >= settings.copy_code_attempts:
        return Check.EXHAUSTED, 0
    if row.expires_at <= now:
        return Check.EXPIRED, 0
    row.attempts += 1
    digits = "".join(c for c in typed if c.isdigit())
    if hmac.compare_digest(_hash(user_id, address, digits), row.code_hash):
        row.verified_at = now
        session.add(row)
        session.flush()
        return Check.OK, 0
    session.add(row)
    session.flush()
    left = settings.copy_code_attempts - row.attempts
    return (Check.WRONG, left) if left > 0 else (Check.EXHAUSTED, 0)


def build_code_message(job: OutboxJob, settings: Settings) -> EmailMessage:
    """The e-mail that carries a verification code (plain text, nothing else)."""
    code = str(job.payload.get("code", ""))
    minutes = int(job.payload.get("minutes", settings.copy_code_minutes))
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = job.recipient
    message["Subject"] = "Code de vérification pour recevoir une copie de votre réponse"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = job.message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        "Bonjour,\n\n"
        "Quelqu'un a demandé, depuis le bot AMI CPTS de l'ARS Bretagne sur Telegram, à recevoir "
        "à cette adresse une copie de sa réponse à l'appel à manifestation d'intérêt.\n\n"
        f"Si c'est vous, tapez ce code dans la conversation avec le bot : {code}\n"
        f"Il est valable {minutes} minutes.\n\n"
        "Si ce n'est pas vous, ignorez ce message : rien ne vous sera envoyé.\n"
    )
    return message
