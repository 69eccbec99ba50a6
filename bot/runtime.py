"""The background jobs, started and stopped the same way in every mode.

One list of jobs (`standard_jobs`) for every way the bot runs: Telegram (long polling or
webhook), the terminal (`python -m bot chat`, or `run` without a token) and the back office
(`python -m bot web`). Each job is one pass of work repeated every few seconds:

- `outbox`: send the queued e-mails (responses to the ARS, copies, codes, alerts, the digest);
- `digest`: keep the next periodic summary queued (DIGEST_EVERY_HOURS);
- `retention`: remind and erase idle drafts, purge responses past SUBMISSION_RETENTION_DAYS;
- `exchange-reminders`: queue the day-before reminders of the « temps d'échange »;
- `notices` and `messages`: hand the users what was produced outside their turns (mail
  accepted or delayed, reminders, the back office's messages). These two need a front end
  that can reach a user (a `Deliverer`: Telegram, the terminal); the back office has none,
  so it runs the other four, and so does `python -m bot worker` (the jobs without the bot).

Every job is safe with several instances on one database (leases, atomic claims). A failing
pass is logged with its traceback and retried with a growing delay; a job whose loop dies
anyway is logged and restarted. `Runtime.stop` cancels and awaits every task, so no task is
left pending when the event loop closes. The terminal has no timers: it calls `tick` after
each turn, which runs every job that is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.app import App
    from bot.config import Settings
    from bot.storage.store import Store

log = logging.getLogger(__name__)

POLL_EVERY = 3.0  # seconds between two passes of the quick jobs (notices, messages, reminders)
OUTBOX_EVERY = 5.0  # seconds between two outbox passes when nothing was due
DIGEST_EVERY = 60.0  # seconds between two checks that the next digest is queued
RETENTION_EVERY = 600.0  # seconds between two passes of the retention policy
MAX_BACKOFF = 300.0  # longest wait after repeated failures of one job
STOP_WITHIN = 10.0  # seconds the jobs get to finish their pass when stopping

# The jobs that need a front end able to reach a user (see `Deliverer`).
DELIVERY_JOBS = ("notices", "messages")
MAIL_AND_DATA_JOBS = ("outbox", "digest", "retention", "exchange-reminders")


class Deliverer(Protocol):
    """What a front end offers the runtime: hand pending messages to the users."""

    async def deliver_notices(self) -> int:
        """Send the pending `UserNotice`s (claimed one by one); how many were sent."""
        ...

    async def deliver_messages(self) -> int:
        """Send the back office's pending messages to respondents; how many were sent."""
        ...


@dataclass(frozen=True)
class Job:
    """One background job: `run` does one pass; it is repeated every `every` seconds."""

    name: str
    run: Callable[[], Awaitable[object]]
    every: float


@dataclass
class JobState:
    """What the runtime knows of a job (for logs, health and tests)."""

    passes: int = 0
    failures: int = 0  # in total
    failing: int = 0  # in a row, reset by a successful pass
    restarts: int = 0  # the job's loop died and was started again
    last_ok: float | None = None  # time.monotonic() of the last successful pass
    last_run: float | None = None
    last_error: str = ""


def standard_jobs(
    store: Store,
    settings: Settings,
    deliverer: Deliverer | None = None,
    *,
    services: dict[str, Any] | None = None,
    poll_every: float = POLL_EVERY,
    outbox_every: float = OUTBOX_EVERY,
    digest_every: float = DIGEST_EVERY,
    retention_every: float = RETENTION_EVERY,
) -> list[Job]:
    """The bot's background jobs; `deliverer` adds the two that reach users.

    `services["outbox_worker"]` (an `OutboxWorker` or a factory of one) replaces the default
    worker, e.g. a test's worker with its own transport.
    """
    from bot import exchange
    from bot.mail.digest import schedule_digest
    from bot.privacy import apply_retention

    made: list[Any] = []  # the worker, made at the first pass: a bad setting fails the job

    async def outbox() -> int:
        """Send everything due now (several batches if need be)."""
        if not made:
            made.append(_outbox_worker(store, settings, services or {}))
        worker = made[0]
        sent = 0
        for _ in range(100):
            claimed, accepted = await worker.pass_once(schedule_digest=False)
            sent += accepted
            if claimed < worker.batch:
                break
        return sent

    jobs = [
        Job("outbox", outbox, outbox_every),
        Job("digest", lambda: asyncio.to_thread(schedule_digest, store, settings), digest_every),
        Job(
            "retention",
            lambda: asyncio.to_thread(apply_retention, store, settings),
            retention_every,
        ),
        Job(
            "exchange-reminders",
            lambda: asyncio.to_thread(exchange.queue_due_reminders, store),
            poll_every,
        ),
    ]
    if deliverer is not None:
        jobs.append(Job("notices", deliverer.deliver_notices, poll_every))
        jobs.append(Job("messages", deliverer.deliver_messages, poll_every))
    return jobs


def app_jobs(app: App, deliverer: Deliverer | None = None, **intervals: float) -> list[Job]:
    """`standard_jobs` for an app built by the composition root (`bot.app.build_app`)."""
    return standard_jobs(app.store, app.settings, deliverer, services=app.services, **intervals)


def _outbox_worker(store: Store, settings: Settings, services: dict[str, Any]) -> Any:
    from bot.worker import OutboxWorker

    given = services.get("outbox_worker")
    if given is not None:
        return given() if callable(given) and not isinstance(given, OutboxWorker) else given
    return OutboxWorker(store, settings)


@dataclass
class Runtime:
    """Runs `jobs`, each in its own task, until `stop`; or one pass of each on `tick`."""

    jobs: Sequence[Job]
    max_backoff: float = MAX_BACKOFF
    stop_within: float = STOP_WITHIN
    states: dict[str, JobState] = field(default_factory=dict)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _stop: asyncio.Event | None = None
    _stopping: bool = False

    def __post_init__(self) -> None:
        names = [job.name for job in self.jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"two background jobs share a name: {names}")
        for name in names:
            self.states.setdefault(name, JobState())

    @property
    def names(self) -> list[str]:
        return [job.name for job in self.jobs]

    @property
    def running(self) -> list[str]:
        """The jobs whose task is alive now."""
        return [name for name, task in self._tasks.items() if not task.done()]

    # ------------------------------------------------------------------ one pass
    async def _pass(self, job: Job) -> bool:
        """Run one pass of `job`; a failure is logged with its traceback, never raised."""
        state = self.states[job.name]
        state.last_run = time.monotonic()
        try:
            await job.run()
        except Exception as exc:
            state.failures += 1
            state.failing += 1
            state.last_error = f"{type(exc).__name__}: {exc}"
            log.exception(
                "background job %s failed (%d in a row); next try in %.0f s",
                job.name,
                state.failing,
                self._delay(job, state),
            )
            return False
        state.passes += 1
        state.failing = 0
        state.last_ok = time.monotonic()
        return True

    def _delay(self, job: Job, state: JobState) -> float:
        """The job's period, doubled after each failure in a row (at most `max_backoff`)."""
        if not state.failing:
            return job.every
        return min(
            max(job.every, 1.0) * 2 ** min(state.failing, 16), max(self.max_backoff, job.every)
        )

    async def tick(self, names: Iterable[str] | None = None) -> None:
        """One pass of each job that is due (all of `names` if given), one after the other.

        The terminal calls this after each turn instead of running timers.
        """
        wanted = set(names) if names is not None else None
        now = time.monotonic()
        for job in self.jobs:
            state = self.states[job.name]
            if wanted is not None:
                if job.name not in wanted:
                    continue
            elif state.last_run is not None and now < state.last_run + self._delay(job, state):
                continue
            await self._pass(job)

    def tick_sync(self, names: Iterable[str] | None = None) -> None:
        """`tick` from synchronous code (in a thread of its own if a loop is running here)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self.tick(names))
            return
        thread = threading.Thread(target=lambda: asyncio.run(self.tick(names)), daemon=True)
        thread.start()
        thread.join()

    # ------------------------------------------------------------------ the loops
    async def start(self) -> None:
        """Start one task per job in the running loop (the first pass runs at once)."""
        if self._tasks:
            raise RuntimeError("background jobs already started")
        self._stop = asyncio.Event()
        self._stopping = False
        for job in self.jobs:
            self._spawn(job)
        log.info("background jobs started: %s", ", ".join(self.names))

    def _spawn(self, job: Job, delay: float = 0.0) -> None:
        task = asyncio.create_task(self._loop(job, delay), name=f"job:{job.name}")
        task.add_done_callback(functools.partial(self._ended, job))
        self._tasks[job.name] = task

    async def _loop(self, job: Job, delay: float = 0.0) -> None:
        assert self._stop is not None
        if delay:  # restarted after a crash: not in a tight loop
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
        while not self._stop.is_set():
            await self._pass(job)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._delay(job, self.states[job.name]))

    def _ended(self, job: Job, task: asyncio.Task[None]) -> None:
        """A job's task ended: expected when stopping; otherwise report it and restart it."""
        if self._stopping:
            return
        state = self.states[job.name]
        state.restarts += 1
        error = None if task.cancelled() else task.exception()
        state.last_error = "cancelled" if error is None else f"{type(error).__name__}: {error}"
        log.error(
            "background job %s stopped unexpectedly (%s); restarting it",
            job.name,
            state.last_error,
            exc_info=error,
        )
        self._spawn(job, min(2.0 ** min(state.restarts, 16), self.max_backoff))

    async def stop(self) -> None:
        """Let each job finish its pass (bounded), then cancel and await what is left."""
        if not self._tasks:
            return
        self._stopping = True
        assert self._stop is not None
        self._stop.set()
        tasks = list(self._tasks.values())
        _done, pending = await asyncio.wait(tasks, timeout=self.stop_within)
        for task in pending:
            log.warning("background job %s did not stop in time: cancelled", task.get_name())
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        log.info("background jobs stopped")


# ---------------------------------------------------------------------------- the modes


def telegram_runtime(application: Any) -> Runtime:
    """The jobs for a Telegram application (`build_application`), its adapter delivering."""
    from bot.adapters.telegram import frontend_of

    frontend = frontend_of(application)
    return Runtime(app_jobs(frontend.app, frontend, poll_every=frontend.notices_every))


def run_telegram(settings: Settings, webhook: bool = False) -> int:
    """`python -m bot run [--webhook]`: the bot on Telegram until SIGTERM/SIGINT."""
    from bot.adapters.telegram import build_application, serve
    from bot.app import build_app

    app = build_app(settings)
    application = build_application(app, rate_limit=settings.telegram_rate_limit)
    return asyncio.run(serve(application, webhook=webhook, runtime=telegram_runtime(application)))


@dataclass
class ConsoleDeliverer:
    """The terminal's deliverer: what reaches the console's user is kept until shown."""

    store: Store
    user_id: int
    shown: list[str] = field(default_factory=list)

    async def deliver_notices(self) -> int:
        return await asyncio.to_thread(self._notices)

    def _notices(self) -> int:
        count = 0
        for notice in self.store.pending_notices():
            if (
                notice.id is not None
                and notice.user_id == self.user_id
                and self.store.mark_notice_delivered(notice.id)
            ):
                self.shown.append(f"📬 {notice.text}")
                count += 1
        return count

    async def deliver_messages(self) -> int:
        return await asyncio.to_thread(self._messages)

    def _messages(self) -> int:
        from sqlmodel import select

        from bot import exchange
        from bot.storage.models import MessageState, RespondentMessage

        with self.store.unit() as session:  # claim only when one is ours (others' lose a try)
            ours = session.exec(
                select(RespondentMessage.id).where(
                    RespondentMessage.user_id == self.user_id,
                    RespondentMessage.direction == "out",
                    RespondentMessage.state == MessageState.PENDING,
                )
            ).first()
        if ours is None:
            return 0
        count = 0
        for message in exchange.claim_messages(self.store):
            assert message.id is not None
            if message.user_id != self.user_id:  # someone else's: left for their front end
                exchange.finish_message(self.store, message.id, MessageState.PENDING)
                continue
            self.shown.append(f"📬 {message.text}")
            exchange.finish_message(self.store, message.id, MessageState.DELIVERED)
            count += 1
        return count

    def take(self) -> list[str]:
        shown, self.shown = self.shown, []
        return shown


def console_runtime(app: App, user_id: int) -> tuple[Runtime, ConsoleDeliverer]:
    """The terminal's jobs: the same as Telegram's, run by `tick` after each turn (every
    quick job each time, so that « transmise » shows right after the response is sent)."""
    deliverer = ConsoleDeliverer(app.store, user_id)
    jobs = app_jobs(app, deliverer, poll_every=0.0, outbox_every=0.0, digest_every=0.0)
    return Runtime(jobs), deliverer


def web_runtime(store: Store, settings: Settings) -> Runtime:
    """The back office's jobs: mail and data ones; it cannot reach a Telegram user."""
    return Runtime(standard_jobs(store, settings))


def run_web(settings: Settings, host: str | None, port: int | None) -> int:
    """`python -m bot web`: the back office, with the mail and data jobs (`web_runtime`)."""
    from bot.web.app import run_web as serve_web

    return serve_web(settings, host, port, jobs=web_runtime)


def worker_runtime(store: Store, settings: Settings, outbox_worker: Any = None) -> Runtime:
    """`python -m bot worker`'s jobs: the back office's (mail and data), without a front end."""
    services = {"outbox_worker": outbox_worker} if outbox_worker is not None else None
    return Runtime(standard_jobs(store, settings, services=services))


def run_worker(settings: Settings, once: bool = False) -> int:
    """`python -m bot worker [--once]`: the mail and data jobs without the bot, until
    SIGTERM/SIGINT (or one pass of each with `once`)."""
    import signal

    from bot.mail.transport import ConfigurationError
    from bot.storage.migrations import DatabaseNotMigrated, ensure_migrated
    from bot.storage.models import OutboxStatus
    from bot.storage.store import Store
    from bot.worker import OutboxWorker

    store = Store.from_url(settings.database_url)
    try:
        ensure_migrated(store.engine)
        worker = OutboxWorker(store, settings)  # a bad mail setting stops here, not in a job
    except (DatabaseNotMigrated, ConfigurationError) as exc:
        print(exc)
        return 2
    runtime = worker_runtime(store, settings, worker)
    where = (
        f"SMTP {settings.smtp_host}:{settings.smtp_effective_port} ({settings.smtp_security})"
        if settings.smtp_host
        else f"fichiers .eml dans {settings.mail_outbox_dir}"
    )
    if once:
        sent_before = len(store.jobs(OutboxStatus.SENT))
        runtime.tick_sync(["digest"])  # queued first, as before: a digest due now leaves too
        runtime.tick_sync()  # then every job once (the digest is not due again yet)
        sent = len(store.jobs(OutboxStatus.SENT)) - sent_before
        pending = len(store.jobs(OutboxStatus.PENDING))
        failed = len(store.jobs(OutboxStatus.FAILED))
        print(f"{sent} e-mail(s) envoyé(s) ({where}) ; {pending} en attente ; {failed} en échec.")
        return 1 if failed else 0

    async def serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        print(f"Envoi des e-mails en file ({where}). Ctrl+C pour arrêter.", flush=True)
        try:
            async with background_jobs(runtime.jobs) as running:
                log.info("worker running (%s)", ", ".join(running.names))
                await stop.wait()
                log.info("stopping: finishing the jobs' passes")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        log.info("stopped cleanly")
        return 0

    return asyncio.run(serve())


@contextlib.asynccontextmanager
async def background_jobs(jobs: Sequence[Job]) -> AsyncIterator[Runtime]:
    """`async with background_jobs(jobs) as runtime:` the jobs run inside the block."""
    runtime = Runtime(jobs)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


__all__ = [
    "DELIVERY_JOBS",
    "MAIL_AND_DATA_JOBS",
    "ConsoleDeliverer",
    "Deliverer",
    "Job",
    "JobState",
    "Runtime",
    "app_jobs",
    "background_jobs",
    "console_runtime",
    "run_telegram",
    "run_web",
    "run_worker",
    "standard_jobs",
    "telegram_runtime",
    "web_runtime",
    "worker_runtime",
]
