"""The outbox worker: sends queued e-mails, retries with back-off, records the outcome once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from email.message import EmailMessage

from bot.config import Settings
from bot.mail import fiche as F
from bot.mail.digest import build_digest_message, schedule_digest
from bot.mail.outbox import KIND_ARS, KIND_COPY, KIND_DIGEST
from bot.mail.render import build_submission_message
from bot.mail.transport import (
    ConfigurationError,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    make_transport,
)
from bot.staff.overlaps import overlaps_in_index
from bot.storage.models import OutboxJob, OutboxStatus, Submission
from bot.storage.store import Store

log = logging.getLogger(__name__)

BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
JITTER = 0.2
DELAY_NOTICE_ATTEMPTS = 3
DELAY_NOTICE_AFTER = timedelta(minutes=15)
LEASE = timedelta(minutes=5)

SENT_NOTICE = (
    "Votre réponse {reference} a bien été transmise au secrétariat de l'ARS Bretagne ({mailbox})."
)
DELAYED_NOTICE = (
    "L'envoi de votre réponse {reference} au secrétariat de l'ARS Bretagne est retardé "
    "(serveur de messagerie indisponible) ; il sera retenté automatiquement. Votre réponse "
    "est enregistrée : vous n'avez rien à refaire."
)
FAILED_NOTICE = (
    "Votre réponse {reference} est bien enregistrée, mais le serveur de messagerie a refusé "
    "de la transmettre au secrétariat de l'ARS Bretagne. L'équipe de l'ARS en a été alertée "
    "et la renverra. Vous pouvez aussi la contacter : {contact}."
)
COPY_FAILED_NOTICE = (
    "La copie de votre réponse {reference} n'a pas pu être remise à {recipient} (adresse "
    "refusée par le serveur de messagerie). Cela ne change rien pour l'ARS Bretagne, qui "
    "reçoit votre réponse de son côté."
)


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
        await asyncio.to_thread(schedule_digest, self.store, self.settings)
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
        if job.submission_id is None:
            raise JobError(f"tâche {job.id} sans réponse associée")
        sub = self.store.submission(job.submission_id)
        if sub is None:
            raise JobError(f"réponse {job.submission_id} introuvable")
        overlaps = []
        if job.kind == KIND_ARS:  # earlier responses sharing communes, from the index tables
            with self.store.unit() as session:
                overlaps = overlaps_in_index(session, sub, earlier_only=True)
        message = build_submission_message(
            sub,
            self.settings,
            kind=job.kind,
            recipient=job.recipient,
            message_id=job.message_id,
            overlaps=overlaps,
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
            text = SENT_NOTICE.format(reference=sub.reference, mailbox=self.settings.ars_mailbox)
            notice = (sub.user_id, text)
        await asyncio.to_thread(
            self.store.finish_job, job.id, status=OutboxStatus.SENT, notice=notice
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
            notice = (sub.user_id, DELAYED_NOTICE.format(reference=sub.reference))
        log.warning("outbox job %s: temporary failure (%s), retry at %s", job.id, error, retry_at)
        self.store.finish_job(
            job.id,
            status=OutboxStatus.PENDING,
            error=error,
            retry_at=retry_at,
            notice=notice,
            delay_notified=True if notice else None,
        )

    def _fail(self, job: OutboxJob, sub: Submission | None, error: str) -> None:
        assert job.id is not None
        notice = None
        if sub is None and job.submission_id is not None:
            sub = self.store.submission(job.submission_id)
        if sub is not None and job.kind == KIND_ARS:
            text = FAILED_NOTICE.format(reference=sub.reference, contact=F.ARS_CONTACT)
            notice = (sub.user_id, text)
        elif sub is not None and job.kind == KIND_COPY:
            text = COPY_FAILED_NOTICE.format(reference=sub.reference, recipient=job.recipient)
            notice = (sub.user_id, text)
        log.error("outbox job %s (%s) failed permanently: %s", job.id, job.kind, error)
        self.store.finish_job(job.id, status=OutboxStatus.FAILED, error=error, notice=notice)


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


def run_worker_cli(settings: Settings, once: bool) -> int:
    """`python -m bot worker [--once]`: send the queued e-mails without the bot."""
    from bot.storage.migrations import DatabaseNotMigrated, ensure_migrated

    store = Store.from_url(settings.database_url)
    try:
        ensure_migrated(store.engine)
        worker = OutboxWorker(store, settings)
    except (DatabaseNotMigrated, ConfigurationError) as exc:
        print(exc)
        return 2
    where = (
        f"SMTP {settings.smtp_host}:{settings.smtp_effective_port} ({settings.smtp_security})"
        if settings.smtp_host
        else f"fichiers .eml dans {settings.mail_outbox_dir}"
    )
    if once:

        async def _drain() -> int:
            total = 0
            for _ in range(100):
                claimed, sent = await worker._pass()
                total += sent
                if claimed == 0:
                    break
            return total

        sent = asyncio.run(_drain())
        pending = len(store.jobs(OutboxStatus.PENDING))
        failed = len(store.jobs(OutboxStatus.FAILED))
        print(f"{sent} e-mail(s) envoyé(s) ({where}) ; {pending} en attente ; {failed} en échec.")
        return 1 if failed else 0

    async def _forever() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        print(f"Envoi des e-mails en file ({where}). Ctrl+C pour arrêter.", flush=True)
        await worker.run(stop)

    asyncio.run(_forever())
    return 0
