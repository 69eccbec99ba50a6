"""The outbox worker: sends queued e-mails, retries with back-off, records the outcome once."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate

from bot.config import Settings
from bot.exchange import KIND_RESPONDENT, KIND_STAFF, build_staff_message
from bot.mail import fiche as F
from bot.mail.digest import build_digest_message
from bot.mail.digest import schedule_digest as _schedule_digest
from bot.mail.outbox import KIND_ALERT, KIND_ARS, KIND_COPY, KIND_DIGEST, unique_message_id
from bot.mail.render import build_submission_message
from bot.mail.transport import (
    EmlDirectoryTransport,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    make_transport,
)
from bot.mail.trust import KIND_VERIFY, build_code_message
from bot.storage.models import OutboxJob, OutboxStatus, Submission
from bot.storage.overlaps import Overlap, top_overlaps
from bot.storage.store import Store

log = logging.getLogger(__name__)
EMAIL_OVERLAPS = 20  # responses listed in an ARS e-mail; the back office lists them all

BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
JITTER = 0.2
DELAY_NOTICE_ATTEMPTS = 3
DELAY_NOTICE_AFTER = timedelta(minutes=15)
LEASE = timedelta(minutes=5)

SENT_NOTICE = (
    "Votre réponse {reference} a bien été transmise au secrétariat de l'{issuer} ({mailbox})."
)
DELAYED_NOTICE = (
    "L'envoi de votre réponse {reference} au secrétariat de l'{issuer} est retardé "
    "(serveur de messagerie indisponible) ; il sera retenté automatiquement. Votre réponse "
    "est enregistrée : vous n'avez rien à refaire."
)
SAVED_NOT_SENT_NOTICE = (
    "Votre réponse {reference} est enregistrée, mais elle n'a pas été envoyée par e-mail : "
    "aucun serveur de messagerie n'est configuré sur ce bot (mode démonstration). Pour qu'elle "
    "parvienne à l'{issuer}, transmettez-lui la fiche PDF reçue ici : {contact}."
)
FAILED_NOTICE = (
    "Votre réponse {reference} est bien enregistrée, mais le serveur de messagerie a refusé "
    "de la transmettre au secrétariat de l'{issuer}. Les personnes chargées du bot en ont "
    "été alertées et la renverront. Vous pouvez aussi écrire à l'{issuer} : {contact}."
)
FAILED_UNALERTED_NOTICE = (
    "Votre réponse {reference} est bien enregistrée, mais le serveur de messagerie a refusé "
    "de la transmettre au secrétariat de l'{issuer}, et personne n'a pu en être prévenu "
    "automatiquement. Merci d'écrire à l'{issuer} en indiquant votre référence, avec la fiche PDF "
    "reçue ici : {contact}."
)
STAFF_ALERT_NOTICE = (
    "⚠️ Envoi en échec définitif : e-mail n° {job_id} ({kind}{reference}) vers {recipient} "
    "refusé par le serveur ({error}). Après correction : /renvoyer {job_id}"
)
STAFF_DELAY_NOTICE = (
    "⚠️ L'e-mail n° {job_id} (réponse {reference}) à l'ARS est retardé : {error}. Il est "
    "retenté automatiquement ; vérifiez le serveur de messagerie et ses réglages (/envois)."
)
CODE_FAILED_NOTICE = (
    "Le code de vérification n'a pas pu être envoyé à {recipient} (adresse refusée par le "
    "serveur de messagerie). Votre réponse peut être envoyée sans copie : la fiche PDF vous "
    "est remise ici."
)
COPY_FAILED_NOTICE = (
    "La copie de votre réponse {reference} n'a pas pu être remise à {recipient} (adresse "
    "refusée par le serveur de messagerie). Cela ne change rien pour l'{issuer}, qui "
    "reçoit votre réponse de son côté."
)


def form_words(sub: Submission) -> dict[str, str]:
    """The issuer (« ARS Bretagne ») and its contact, from the response's form (`fiche:`)."""
    fiche = F.build_fiche(sub)
    return {"issuer": fiche.issuer or "ARS", "contact": fiche.contact or fiche.recipient}


class JobError(Exception):
    """A job that cannot be rendered (its submission vanished, a rendering bug)."""


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """30 s × 2^attempts, at most 1 h, ±20 % so that restarted workers do not stampede."""
    base = min(BASE_DELAY * (2 ** min(attempts, 20)), MAX_DELAY)
    return base * rng.uniform(1 - JITTER, 1 + JITTER)


class OutboxWorker:
    """Claims due jobs, renders and sends them, records each outcome with its user notice."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        transport: Transport | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        rng: random.Random | None = None,
        batch: int = 10,
        poll_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.settings = settings
        self.transport = transport or make_transport(settings)
        self.clock = clock or store.clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.batch = batch
        self.poll_seconds = poll_seconds

    async def run_once(self) -> int:
        """One pass over the due jobs; returns how many e-mails were accepted."""
        return (await self._pass())[1]

    async def _pass(self) -> tuple[int, int]:
        return await self.pass_once()

    async def pass_once(self, *, schedule_digest: bool = True) -> tuple[int, int]:
        """One batch: (jobs claimed, e-mails accepted). The bot's runtime keeps the digest
        queued by a job of its own (`schedule_digest=False`); alone, the worker does it."""
        if schedule_digest:
            await asyncio.to_thread(_schedule_digest, self.store, self.settings)
        jobs = await asyncio.to_thread(self.store.claim_jobs, self.batch, LEASE)
        sent = 0
        for job in jobs:
            sent += await self._process(job)
        return len(jobs), sent

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set (inside the bot process, or alone)."""
        while not stop.is_set():
            claimed = 0
            try:
                claimed, _ = await self._pass()
            except Exception:
                log.exception("outbox pass failed; trying again shortly")
            if claimed >= self.batch:
                continue  # more may be due right away
            sleeper = asyncio.ensure_future(self.sleep(self.poll_seconds))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for task in (sleeper, stopper):
                task.cancel()

    # ------------------------------------------------------------------ one job
    def _render(self, job: OutboxJob) -> tuple[EmailMessage, Submission | None]:
        if job.kind == KIND_DIGEST:
            return build_digest_message(self.store, self.settings, job), None
        if job.kind == KIND_VERIFY:
            return build_code_message(job, self.settings), None
        if job.kind == KIND_ALERT:
            return build_alert_message(job, self.settings), None
        if job.kind in (KIND_STAFF, KIND_RESPONDENT):
            return build_staff_message(job, self.settings), None
        if job.submission_id is None:
            raise JobError(f"tâche {job.id} sans réponse associée")
        sub = self.store.submission(job.submission_id)
        if sub is None:
            raise JobError(f"réponse {job.submission_id} introuvable")
        overlaps: list[Overlap] = []
        overlap_total = 0
        if job.kind == KIND_ARS:  # earlier responses sharing communes, from the index tables
            with self.store.unit() as session:
                overlaps, overlap_total = top_overlaps(
                    session, sub, earlier_only=True, limit=EMAIL_OVERLAPS
                )
        message = build_submission_message(
            sub,
            self.settings,
            kind=job.kind,
            recipient=job.recipient,
            message_id=job.message_id,
            overlaps=overlaps,
            overlap_total=overlap_total,
            now=self.clock(),
        )
        return message, sub

    async def _process(self, job: OutboxJob) -> int:
        assert job.id is not None
        sub: Submission | None = None
        try:
            message, sub = await asyncio.to_thread(self._render, job)
            await self.transport.send(message)
        except TemporaryFailure as exc:
            await asyncio.to_thread(self._retry, job, sub, str(exc))
            return 0
        except (PermanentFailure, JobError) as exc:
            await asyncio.to_thread(self._fail, job, sub, str(exc))
            return 0
        except Exception as exc:  # a bug or an unexpected error: keep the job, retry later
            log.exception("outbox job %s: unexpected error", job.id)
            await asyncio.to_thread(self._retry, job, sub, f"{type(exc).__name__}: {exc}")
            return 0
        notice = None
        if job.kind == KIND_ARS and sub is not None and job.sent_at is None:
            if isinstance(self.transport, EmlDirectoryTransport):
                text = SAVED_NOT_SENT_NOTICE.format(reference=sub.reference, **form_words(sub))
            else:
                text = SENT_NOTICE.format(
                    reference=sub.reference, mailbox=job.recipient, **form_words(sub)
                )
            notice = (sub.user_id, text)
        await asyncio.to_thread(
            self.store.finish_job,
            job.id,
            status=OutboxStatus.SENT,
            notice=notice,
            clear_payload=job.kind == KIND_VERIFY,  # a code is not kept once sent
        )
        log.info("outbox job %s (%s) sent to %s", job.id, job.kind, job.recipient)
        return 1

    def _retry(self, job: OutboxJob, sub: Submission | None, error: str) -> None:
        assert job.id is not None
        now = self.clock()
        retry_at = now + backoff(job.attempts, self.rng)
        notice = None
        late = (
            job.attempts + 1 >= DELAY_NOTICE_ATTEMPTS or now - job.created_at >= DELAY_NOTICE_AFTER
        )
        if job.kind == KIND_ARS and sub is not None and not job.delay_notified and late:
            text = DELAYED_NOTICE.format(reference=sub.reference, **form_words(sub))
            notice = (sub.user_id, text)
        staff: list[tuple[int, str]] = []
        if (
            notice is not None
        ):  # the same moment, staff learn it too (a wrong password, a relay down)
            text = STAFF_DELAY_NOTICE.format(
                job_id=job.id, reference=sub.reference if sub else "", error=error[:200]
            )
            staff = [(staff_id, text) for staff_id in self.settings.ars_staff_ids]
        log.warning("outbox job %s: temporary failure (%s), retry at %s", job.id, error, retry_at)
        self.store.finish_job(
            job.id,
            status=OutboxStatus.PENDING,
            error=error,
            retry_at=retry_at,
            notice=notice,
            delay_notified=True if notice else None,
            extra_notices=staff,
        )

    def _fail(self, job: OutboxJob, sub: Submission | None, error: str) -> None:
        """A permanent failure: the job waits for staff, who are alerted for real."""
        assert job.id is not None
        notice = None
        if sub is None and job.submission_id is not None:
            sub = self.store.submission(job.submission_id)
        alerts, staff_notices = self._alerts(job, sub, error)
        if sub is not None and job.kind == KIND_ARS:
            template = FAILED_NOTICE if (alerts or staff_notices) else FAILED_UNALERTED_NOTICE
            notice = (sub.user_id, template.format(reference=sub.reference, **form_words(sub)))
        elif sub is not None and job.kind == KIND_COPY:
            text = COPY_FAILED_NOTICE.format(
                reference=sub.reference, recipient=job.recipient, **form_words(sub)
            )
            notice = (sub.user_id, text)
        elif job.kind == KIND_VERIFY and job.payload.get("user_id"):
            text = CODE_FAILED_NOTICE.format(recipient=job.recipient)
            notice = (int(job.payload["user_id"]), text)
        log.error("outbox job %s (%s) failed permanently: %s", job.id, job.kind, error)
        self.store.finish_job(
            job.id,
            status=OutboxStatus.FAILED,
            error=error,
            notice=notice,
            extra_notices=staff_notices,
            extra_jobs=alerts,
            clear_payload=job.kind == KIND_VERIFY,
        )

    def _alerts(
        self, job: OutboxJob, sub: Submission | None, error: str
    ) -> tuple[list[OutboxJob], list[tuple[int, str]]]:
        """An e-mail to ALERT_EMAIL and a Telegram notice to each ARS staff id.

        Only for the e-mails that matter to the ARS (responses and digests): a refused copy or
        code concerns the user, who is told; an alert that fails alerts no one again (no loop).
        """
        if job.kind not in (KIND_ARS, KIND_DIGEST):
            return [], []
        reference = f", {sub.reference}" if sub is not None else ""
        now = self.clock()
        jobs = []
        alert_to = self.settings.alert_email.strip()
        if alert_to:
            jobs.append(
                OutboxJob(
                    kind=KIND_ALERT,
                    recipient=alert_to,
                    message_id=unique_message_id(f"alert-{job.id}", KIND_ALERT, self.settings),
                    payload={
                        "job_id": job.id,
                        "kind": job.kind,
                        "reference": sub.reference if sub is not None else "",
                        "recipient": job.recipient,
                        "error": error[:500],
                    },
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        text = STAFF_ALERT_NOTICE.format(
            job_id=job.id,
            kind=job.kind,
            reference=reference,
            recipient=job.recipient,
            error=error[:200],
        )
        notices = [(staff_id, text) for staff_id in self.settings.ars_staff_ids]
        return jobs, notices


def build_alert_message(job: OutboxJob, settings: Settings) -> EmailMessage:
    """The alert e-mail about a permanent failure (ids, reference, the server's answer)."""
    p = job.payload
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = job.recipient
    reference = f" {p.get('reference')}" if p.get("reference") else ""
    message["Subject"] = f"[Bot AMI CPTS] Envoi en échec définitif{reference}"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = job.message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        "Bonjour,\n\n"
        f"Le serveur de messagerie a refusé définitivement l'e-mail n° {p.get('job_id')} "
        f"({p.get('kind')}{reference}) destiné à {p.get('recipient')}.\n"
        f"Réponse du serveur : {p.get('error')}\n\n"
        "Il ne sera pas renvoyé automatiquement. Une fois la cause corrigée : "
        f"python -m bot outbox --resend {p.get('job_id')} (ou /renvoyer {p.get('job_id')} dans "
        "Telegram).\n"
    )
    return message


def deliver_pending(store: Store, settings: Settings) -> None:
    """Send what is due now, synchronously (the console calls this after each turn)."""

    async def _drain() -> None:
        worker = OutboxWorker(store, settings)
        for _ in range(20):
            claimed, _sent = await worker._pass()
            if claimed == 0:
                break

    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(_drain())
            return
        import threading

        thread = threading.Thread(target=lambda: asyncio.run(_drain()), daemon=True)
        thread.start()
        thread.join()
    except Exception:
        log.exception("sending the pending e-mails failed; they stay queued")
