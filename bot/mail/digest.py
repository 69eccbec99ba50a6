"""The periodic summary e-mail to the ARS mailbox, scheduled as a future outbox job.

The next digest is a PENDING outbox job whose `next_attempt_at` is its due time and whose
payload holds the window it covers (`since`, `until`). Being a database row, it survives
restarts; its Message-ID is derived from the window, so two instances cannot queue it twice;
each window starts where the previous one ended, so nothing is skipped or counted twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.config import Settings
from bot.mail import fiche as F
from bot.mail.outbox import KIND_DIGEST, mail_domain
from bot.mail.render import mail_address, render_html, render_text
from bot.storage.models import OutboxJob, OutboxStatus, Submission
from bot.storage.overlaps import overlaps_in_index
from bot.storage.store import Store


def _window_start(last: OutboxJob | None, now: datetime) -> datetime:
    if last is not None and last.payload.get("until"):
        return datetime.fromisoformat(last.payload["until"])
    return now


def schedule_digest(store: Store, settings: Settings) -> OutboxJob | None:
    """Make sure the next digest is queued (or, when switched off, that none is pending)."""
    period = settings.digest_every_hours
    token = store.database_token() if period > 0 else ""
    try:
        with store.session() as session:
            pending = list(
                session.exec(
                    select(OutboxJob)
                    .where(OutboxJob.kind == KIND_DIGEST)
                    .where(OutboxJob.status == OutboxStatus.PENDING)
                )
            )
            if period <= 0:
                for job in pending:
                    session.delete(job)
                session.commit()
                return None
            if pending:
                return None
            last = session.exec(
                select(OutboxJob)
                .where(OutboxJob.kind == KIND_DIGEST)
                .order_by(col(OutboxJob.id).desc())
            ).first()
            now = store.clock()
            step = timedelta(hours=period)
            since = _window_start(last, now)
            due = since + step
            if due < now:  # the bot was stopped for a while: one digest now for the whole gap
                due = since + step * ((now - since) // step)
            job = store.add_outbox_job(
                session,
                kind=KIND_DIGEST,
                recipient=settings.ars_mailbox,
                message_id=(
                    f"<digest-{due:%Y%m%dT%H%M%S}.{KIND_DIGEST}.{token}@{mail_domain(settings)}>"
                ),
                payload={"since": since.isoformat(), "until": due.isoformat()},
            )
            job.next_attempt_at = due
            session.add(job)
            session.commit()
            return job
    except IntegrityError:  # another instance queued the same digest first
        return None


def build_digest_message(store: Store, settings: Settings, job: OutboxJob) -> EmailMessage:
    """New responses of the window, their territory overlaps, and the failed or delayed sends."""
    since = datetime.fromisoformat(job.payload["since"])
    until = datetime.fromisoformat(job.payload["until"])
    subs: list[Submission] = store.submissions()
    known = [s for s in subs if s.created_at < until]
    new = [s for s in known if s.created_at >= since]
    entries = []
    for sub in new:
        with store.unit() as session:  # earlier responses sharing communes, from the index
            overlaps = overlaps_in_index(session, sub, earlier_only=True)
        fiche = F.build_fiche(sub)
        entries.append(
            {
                "reference": sub.reference,
                "submitted": fiche.submitted,
                "where": fiche.where or fiche.not_given,
                "first_actor": fiche.who,
                "objectives": ", ".join(fiche.checked()),
                "overlaps": overlaps,
            }
        )
    refs = {s.id: s.reference for s in subs}
    jobs = [j for j in store.jobs() if j.kind != KIND_DIGEST]
    failed = [_job_line(j, refs) for j in jobs if j.status == OutboxStatus.FAILED]
    delayed = [
        _job_line(j, refs) for j in jobs if j.status == OutboxStatus.PENDING and j.attempts > 0
    ]
    context = {
        "since": F.french_date(since),
        "until": F.french_date(until),
        "entries": entries,
        "failed": failed,
        "delayed": delayed,
        "overlap_count": sum(1 for e in entries if e["overlaps"]),
    }
    msg = EmailMessage()
    parts = [f"{len(entries)} nouvelle(s) réponse(s)"]
    if failed:
        parts.append(f"{len(failed)} envoi(s) en échec")
    msg["Subject"] = (
        f"[AMI CPTS] Récapitulatif du {F.french_date(until, False)} — {', '.join(parts)}"
    )
    msg["From"] = mail_address(settings.mail_from, "Bot CPTS — ARS Bretagne")
    msg["To"] = mail_address(job.recipient or settings.ars_mailbox)
    msg["Message-ID"] = job.message_id
    msg["Date"] = format_datetime(until)
    msg.set_content(render_text("digest.txt.j2", **context), cte="quoted-printable")
    msg.add_alternative(render_html("digest.html.j2", **context), subtype="html")
    return msg


def _job_line(job: OutboxJob, refs: dict[int | None, str]) -> dict[str, str]:
    return {
        "id": str(job.id),
        "reference": refs.get(job.submission_id, "—"),
        "kind": {"ars": "e-mail ARS", "copy": "copie au référent"}.get(job.kind, job.kind),
        "recipient": job.recipient,
        "attempts": str(job.attempts),
        "error": (job.last_error or "")[:200],
    }
