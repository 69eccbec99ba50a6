"""Queue the e-mails of a submission in the submitting turn's transaction."""

from __future__ import annotations

from email.headerregistry import Address
from email.utils import parseaddr

from sqlmodel import Session

from bot.config import Settings
from bot.storage.models import OutboxJob, Submission
from bot.storage.store import Store

KIND_ARS = "ars"
KIND_COPY = "copy"
KIND_DIGEST = "digest"


def mail_domain(settings: Settings) -> str:
    """The domain of MAIL_FROM, used on the right of every Message-ID."""
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2].strip()
    return domain or "localhost"


def message_id(reference: str, kind: str, settings: Settings) -> str:
    """A stable Message-ID: the same submission and kind always give the same one."""
    return f"<{reference}.{kind}@{mail_domain(settings)}>"


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


def copy_recipient(submission: Submission) -> str | None:
    """The first referent's e-mail when the respondent asked for a copy and it is usable."""
    answers = submission.answers or {}
    if not answers.get("copy_to_referent"):
        return None
    for referent in answers.get("referents") or []:
        address = valid_address(str(referent.get("email") or "").strip())
        if address:
            return address
    return None


def enqueue_submission(
    store: Store, session: Session, submission: Submission, settings: Settings
) -> list[OutboxJob]:
    """Queue the ARS e-mail (and the respondent's copy) in the caller's transaction."""
    assert submission.id is not None, "the submission must be flushed first"
    jobs = [
        store.add_outbox_job(
            session,
            kind=KIND_ARS,
            recipient=settings.ars_mailbox,
            message_id=message_id(submission.reference, KIND_ARS, settings),
            submission_id=submission.id,
        )
    ]
    copy_to = copy_recipient(submission)
    if copy_to:
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
