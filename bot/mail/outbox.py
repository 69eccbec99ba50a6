"""Queue the e-mails of a submission in the submitting turn's transaction."""

from __future__ import annotations

import secrets
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any

from sqlmodel import Session

from bot.config import Settings
from bot.mail.trust import copies_today, is_verified
from bot.storage.models import OutboxJob, Submission
from bot.storage.store import Store

KIND_ARS = "ars"
KIND_COPY = "copy"
KIND_DIGEST = "digest"
KIND_ALERT = "alert"


def mail_domain(settings: Settings) -> str:
    """The domain of MAIL_FROM, used on the right of every Message-ID."""
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2].strip()
    return domain or "localhost"


def unique_message_id(reference: str, kind: str, settings: Settings) -> str:
    """A Message-ID unique everywhere: reference, kind, a random part, the sender's domain.

    It is made once, stored with the job, and reused by every retry (stable across retries),
    while two databases that both number their first response AMI-2026-0001 never collide.
    """
    return f"<{reference}.{kind}.{secrets.token_hex(8)}@{mail_domain(settings)}>"


message_id = unique_message_id


def valid_address(value: str | None) -> str | None:
    """The address if it can go in a header as is, otherwise None."""
    if not value or any(c in value for c in '\r\n<>,;"() ') or value.count("@") != 1:
        return None
    local, domain = value.split("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
        return None
    try:
        Address(addr_spec=value)
    except (ValueError, IndexError, TypeError):
        return None
    return value


def ars_recipient(submission: Submission, settings: Settings) -> str:
    """Where a response goes: the address stored when it was submitted (its form's recipient,
    the one the respondent was told), else its form's rule: the form's `recipient.address`,
    otherwise the ARS_MAILBOX setting (docs/forms.md)."""
    from bot.mail.fiche import form_spec, recipient_address

    stored = valid_address(str(submission.recipient or "").strip())
    return stored or recipient_address(form_spec(submission.form_id), settings)


def first_referent_address(answers: dict[str, Any]) -> str | None:
    """The first usable referent e-mail of a set of answers."""
    for referent in answers.get("referents") or []:
        address = valid_address(str((referent or {}).get("email") or "").strip())
        if address:
            return address
    return None


def copy_recipient(submission: Submission) -> str | None:
    """The first referent's e-mail when the respondent asked for a copy and it is usable."""
    answers = submission.answers or {}
    if not answers.get("copy_to_referent"):
        return None
    return first_referent_address(answers)


def enqueue_submission(
    store: Store, session: Session, submission: Submission, settings: Settings
) -> list[OutboxJob]:
    """Queue the ARS e-mail (and the respondent's copy) in the caller's transaction.

    The copy is queued only to an address this user proved they hold (`bot.mail.trust`) and while
    that address has received fewer than COPIES_PER_DAY copies in 24 h; otherwise the user has
    the PDF in the chat only.
    """
    assert submission.id is not None, "the submission must be flushed first"
    jobs = [
        store.add_outbox_job(
            session,
            kind=KIND_ARS,
            recipient=ars_recipient(submission, settings),
            message_id=message_id(submission.reference, KIND_ARS, settings),
            submission_id=submission.id,
        )
    ]
    copy_to = copy_recipient(submission)
    now = store.clock()
    if (
        copy_to
        and is_verified(session, submission.user_id, copy_to)
        and copies_today(session, copy_to, now) < settings.copies_per_day
    ):
        jobs.append(
            store.add_outbox_job(
                session,
                kind=KIND_COPY,
                recipient=copy_to,
                message_id=message_id(submission.reference, KIND_COPY, settings),
                submission_id=submission.id,
            )
        )
    return jobs
