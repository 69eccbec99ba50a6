"""The one place that talks to the database.

A *turn* is one incoming user event handled inside one database transaction that holds a lock
on that user's conversation row: PostgreSQL `SELECT … FOR UPDATE`, SQLite `BEGIN IMMEDIATE`.
Two instances receiving the same user's updates therefore apply them one after the other, and
whatever a turn writes (answers, a submission and its e-mail job) commits together or not at all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, event, func, insert, update
from sqlalchemy import delete as sa_delete
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel, col, create_engine, select

from bot.storage.models import (
    AuditEntry,
    BotMarker,
    Conversation,
    OutboxJob,
    OutboxStatus,
    Submission,
    SubmissionCommune,
    SubmissionPlaceWord,
    UserNotice,
    utcnow,
)

Clock = Callable[[], datetime]
log = logging.getLogger(__name__)


def _territory_keys(answers: dict[str, Any]) -> Any:
    """The territory's communes, départements and leftover words; None if they cannot be read
    (a response is never lost over its index)."""
    try:
        from bot.territory import territory_keys

        return territory_keys(answers)
    except Exception:
        log.exception("territory of a submission could not be read; stored without its index")
        return None


class ConversationLocked(RuntimeError):
    """Raised when a conversation row could not be locked in time."""


def _private_database_file(path: Path) -> None:
    """Create a new SQLite file readable by its owner only (0600; SQLite gives its -wal and
    -shm files the same mode), in a directory created 0700; tighten an existing one we own."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    # an existing database left readable by others (an older version, a copy) is tightened
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(OSError):
            info = file.lstat()
            if info.st_uid == os.getuid() and info.st_mode & 0o077 and file.is_file():
                os.chmod(file, 0o600)


def make_engine(database_url: str) -> Engine:
    """Create an SQLAlchemy engine with the settings each backend needs for safe turns."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:" and "///" in database_url:
            _private_database_file(Path(path))
        engine = create_engine(
            database_url,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,  # errors and logs never show the values (users' answers)
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    url = database_url
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, hide_parameters=True
    )


CONVERSATION = Conversation.__table__  # type: ignore[attr-defined]
CONVERSATION_COLUMNS = [c.name for c in CONVERSATION.columns]
# The statements of a turn, built once (building them is most of an empty turn's cost).
SELECT_CONVERSATION = sa_select(CONVERSATION).where(CONVERSATION.c.user_id == bindparam("uid"))
SELECT_CONVERSATION_FOR_UPDATE = SELECT_CONVERSATION.with_for_update()
INSERT_CONVERSATION = insert(CONVERSATION)
DELETE_CONVERSATION = sa_delete(CONVERSATION).where(CONVERSATION.c.user_id == bindparam("uid"))
ENSURE_CONVERSATION_PG = pg_insert(CONVERSATION).on_conflict_do_nothing(index_elements=["user_id"])
UPDATE_CONVERSATION = (
    update(CONVERSATION)
    .where(CONVERSATION.c.user_id == bindparam("uid"))
    .values({name: bindparam(f"v_{name}") for name in CONVERSATION_COLUMNS if name != "user_id"})
)


class Turn:
    """What a turn works on: the locked conversation and the open transaction.

    The conversation is loaded and saved with two plain statements on the turn's connection;
    an ORM session on that same connection is made only when something else is written
    (a submission and its e-mail job), so an ordinary turn costs two round trips.
    """

    def __init__(self, connection: Connection, conversation: Conversation, store: Store) -> None:
        self.connection = connection
        self.conversation = conversation
        self.store = store
        self._session: Session | None = None
        self.erased = False

    def erase(self) -> None:
        """Delete the conversation row at the end of the turn instead of saving it (/supprimer)."""
        self.erased = True

    @property
    def session(self) -> Session:
        """An ORM session inside the turn's transaction (committed with the turn)."""
        if self._session is None:
            self._session = Session(
                bind=self.connection,
                expire_on_commit=False,
                join_transaction_mode="rollback_only",
            )
        return self._session

    def changed(self) -> None:
        """Kept for callers that mutate `conversation.data` in place: the turn always saves it."""

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


class Store:
    """Repository over the tables of `bot.storage.models`."""

    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock
        self.is_postgres = engine.dialect.name == "postgresql"
        self._local = threading.local()  # the turn open in this thread, if any
        # SQLite has one writer at a time and its busy handler waits by sleeping (up to 100 ms
        # a try): threads of this process queue on a lock instead, woken as soon as it is free.
        self._writer = contextlib.nullcontext() if self.is_postgres else threading.RLock()

    @classmethod
    def from_url(cls, database_url: str, clock: Clock = utcnow) -> Store:
        return cls(make_engine(database_url), clock)

    def create_all(self) -> None:
        """Create the tables directly (tests and throwaway databases; production uses migrate)."""
        SQLModel.metadata.create_all(self.engine)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def unit(self) -> Iterator[Session]:
        """A unit of work: the open turn's transaction when called inside a turn, else its own.

        Inside a turn everything joins the turn's transaction (committed with it), so a staff
        command or /mesdonnees never waits on the lock its own turn holds.
        """
        active: Turn | None = getattr(self._local, "turn", None)
        if active is not None:
            session = active.session
            yield session
            session.flush()
            return
        with self._writer, self.session() as session:
            yield session
            session.commit()

    # --- conversations -------------------------------------------------------------------
    @contextmanager
    def turn(self, user_id: int) -> Iterator[Turn]:
        """Lock the user's conversation for one turn; commit everything at the end."""
        if getattr(self._local, "turn", None) is not None:
            raise RuntimeError("a turn is already open in this thread")
        with self._writer, self.engine.connect() as connection, connection.begin():
            conv, is_new = self._lock_conversation(connection, user_id)
            turn = Turn(connection, conv, self)
            self._local.turn = turn
            try:
                yield turn
                if turn._session is not None:
                    turn._session.flush()
                if turn.erased:
                    if not is_new:
                        connection.execute(DELETE_CONVERSATION, {"uid": user_id})
                    return
                conv.version += 1
                conv.updated_at = self.clock()
                values = {name: getattr(conv, name) for name in CONVERSATION_COLUMNS}
                if is_new:
                    connection.execute(INSERT_CONVERSATION, values)
                else:
                    params = {f"v_{k}": v for k, v in values.items() if k != "user_id"}
                    connection.execute(UPDATE_CONVERSATION, {"uid": user_id, **params})
            finally:
                self._local.turn = None
                turn.close()

    def _lock_conversation(self, connection: Connection, user_id: int) -> tuple[Conversation, bool]:
        """Read the user's row under a lock (PostgreSQL: row lock; SQLite: the write lock)."""
        stmt = SELECT_CONVERSATION
        if self.is_postgres:
            now = self.clock()
            connection.execute(
                ENSURE_CONVERSATION_PG,
                {
                    "user_id": user_id,
                    "data": {},
                    "version": 0,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            stmt = SELECT_CONVERSATION_FOR_UPDATE
        row = connection.execute(stmt, {"uid": user_id}).mappings().first()
        if row is None:
            now = self.clock()
            return Conversation(user_id=user_id, data={}, created_at=now, updated_at=now), True
        values = dict(row)
        values["data"] = dict(values.get("data") or {})
        return Conversation(**values), False

    def get_conversation(self, user_id: int) -> Conversation | None:
        with self.unit() as session:
            return session.get(Conversation, user_id)

    def delete_conversation(self, user_id: int) -> None:
        with self.unit() as session:
            conv = session.get(Conversation, user_id)
            if conv is not None:
                session.delete(conv)

    # --- submissions and their e-mail jobs ---------------------------------------------------
    def add_submission(
        self,
        session: Session,
        *,
        user_id: int,
        form_id: str,
        recipient: str,
        answers: dict[str, Any],
        prefix: str = "AMI",
    ) -> Submission:
        """Insert a submission with its reference (PREFIX-YEAR-NNNN) in the caller's transaction,
        with its départements and the index rows of its territory (communes, place words)."""
        now = self.clock()
        keys = _territory_keys(answers)
        if keys is not None and "departements" not in answers:
            answers = {**answers, "departements": keys.departements}
        sub = Submission(
            reference=f"PENDING-{user_id}-{now.timestamp()}",
            user_id=user_id,
            form_id=form_id,
            recipient=recipient,
            answers=answers,
            departements=",".join(keys.departements)[:32] if keys is not None else "",
            created_at=now,
        )
        session.add(sub)
        session.flush()
        sub.reference = f"{prefix}-{now.year}-{sub.id:04d}"
        session.add(sub)
        if keys is not None:
            assert sub.id is not None
            session.add_all(SubmissionCommune(submission_id=sub.id, code=c) for c in keys.communes)
            session.add_all(
                SubmissionPlaceWord(submission_id=sub.id, word=w[:120])
                for w in dict.fromkeys(w[:120] for w in keys.words)
            )
        session.flush()
        return sub

    def add_outbox_job(
        self,
        session: Session,
        *,
        kind: str,
        recipient: str,
        message_id: str,
        submission_id: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> OutboxJob:
        """Queue an e-mail in the caller's transaction (the transactional outbox)."""
        job = OutboxJob(
            kind=kind,
            recipient=recipient,
            message_id=message_id,
            submission_id=submission_id,
            payload=payload or {},
            next_attempt_at=self.clock(),
            created_at=self.clock(),
        )
        session.add(job)
        session.flush()
        return job

    def reindex_territories(self) -> int:
        """Rewrite every response's territory index and départements (responses stored before
        migration 0002_territory, or after a data refresh). Reads every response: an explicit
        maintenance step (`python -m bot territory --reindex`), never part of a turn."""
        count = 0
        with self.unit() as session:
            for sub in session.exec(select(Submission).order_by(Submission.id)):  # type: ignore[arg-type]
                keys = _territory_keys(sub.answers or {})
                if keys is None or sub.id is None:
                    continue
                session.execute(
                    SubmissionCommune.__table__.delete().where(  # type: ignore[attr-defined]
                        SubmissionCommune.submission_id == sub.id
                    )
                )
                session.execute(
                    SubmissionPlaceWord.__table__.delete().where(  # type: ignore[attr-defined]
                        SubmissionPlaceWord.submission_id == sub.id
                    )
                )
                session.add_all(
                    SubmissionCommune(submission_id=sub.id, code=c) for c in keys.communes
                )
                session.add_all(
                    SubmissionPlaceWord(submission_id=sub.id, word=w)
                    for w in dict.fromkeys(w[:120] for w in keys.words)
                )
                sub.departements = ",".join(keys.departements)[:32]
                session.add(sub)
                count += 1
        return count

    def submissions(self) -> list[Submission]:
        with self.unit() as session:
            return list(session.exec(select(Submission).order_by(Submission.id)))  # type: ignore[arg-type]

    def submission(self, reference_or_id: str | int) -> Submission | None:
        with self.unit() as session:
            if isinstance(reference_or_id, int) or str(reference_or_id).isdecimal():
                return session.get(Submission, int(reference_or_id))
            ref = str(reference_or_id).strip().upper()
            return session.exec(select(Submission).where(Submission.reference == ref)).first()

    def submissions_of(self, user_id: int) -> list[Submission]:
        with self.unit() as session:
            stmt = select(Submission).where(Submission.user_id == user_id).order_by(Submission.id)  # type: ignore[arg-type]
            return list(session.exec(stmt))

    # --- outbox --------------------------------------------------------------------------
    def claim_jobs(
        self, limit: int = 10, lease: timedelta = timedelta(minutes=5)
    ) -> list[OutboxJob]:
        """Take due jobs for sending, leasing them so that no other worker takes them meanwhile."""
        now = self.clock()
        with self.unit() as session:
            stmt = (
                select(OutboxJob)
                .where(OutboxJob.status == OutboxStatus.PENDING)
                .where(OutboxJob.next_attempt_at <= now)
                .where((OutboxJob.locked_until.is_(None)) | (OutboxJob.locked_until < now))  # type: ignore[union-attr,operator]
                .order_by(OutboxJob.id)  # type: ignore[arg-type]
                .limit(limit)
            )
            if self.is_postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            jobs = list(session.exec(stmt))
            for job in jobs:
                job.locked_until = now + lease
                session.add(job)
            return jobs

    def finish_job(
        self,
        job_id: int,
        *,
        status: OutboxStatus,
        error: str | None = None,
        retry_at: datetime | None = None,
        notice: tuple[int, str] | None = None,
        delay_notified: bool | None = None,
        extra_notices: list[tuple[int, str]] | None = None,
        extra_jobs: list[OutboxJob] | None = None,
        clear_payload: bool = False,
    ) -> None:
        """Record a send attempt's outcome (notices, alert e-mails) in one transaction."""
        now = self.clock()
        with self.unit() as session:
            job = session.get(OutboxJob, job_id)
            if job is None:
                return
            job.attempts += 1
            job.locked_until = None
            job.status = status
            job.last_error = error
            if status == OutboxStatus.SENT:
                job.sent_at = now
            if retry_at is not None:
                job.next_attempt_at = retry_at
            if delay_notified is not None:
                job.delay_notified = delay_notified
            if clear_payload and status != OutboxStatus.PENDING:
                job.payload = {}
            session.add(job)
            for user_id, text in ([notice] if notice else []) + (extra_notices or []):
                session.add(UserNotice(user_id=user_id, text=text, created_at=now))
            for extra in extra_jobs or []:
                session.add(extra)

    def jobs(self, status: str | None = None) -> list[OutboxJob]:
        with self.unit() as session:
            stmt = select(OutboxJob).order_by(OutboxJob.id)  # type: ignore[arg-type]
            if status:
                stmt = stmt.where(OutboxJob.status == status)
            return list(session.exec(stmt))

    def requeue_job(self, job_id: int) -> bool:
        """Put a job back in the queue now (staff "resend")."""
        with self.unit() as session:
            result = session.exec(  # type: ignore[call-overload]
                update(OutboxJob)
                .where(col(OutboxJob.id) == job_id)
                .values(
                    status=OutboxStatus.PENDING, next_attempt_at=self.clock(), locked_until=None
                )
            )
            return bool(result.rowcount)

    # --- notices -------------------------------------------------------------------------
    def add_notice(self, user_id: int, text: str, session: Session | None = None) -> None:
        if session is not None:
            session.add(UserNotice(user_id=user_id, text=text, created_at=self.clock()))
            return
        with self.unit() as own:
            own.add(UserNotice(user_id=user_id, text=text, created_at=self.clock()))

    def pending_notices(self, limit: int = 50) -> list[UserNotice]:
        with self.unit() as session:
            stmt = (
                select(UserNotice)
                .where(UserNotice.delivered_at.is_(None))  # type: ignore[union-attr]
                .order_by(UserNotice.id)  # type: ignore[arg-type]
                .limit(limit)
            )
            return list(session.exec(stmt))

    def mark_notice_delivered(self, notice_id: int) -> bool:
        """Mark a notice delivered; False if another instance already did."""
        with self.unit() as session:
            result = session.exec(  # type: ignore[call-overload]
                update(UserNotice)
                .where(col(UserNotice.id) == notice_id)
                .where(UserNotice.delivered_at.is_(None))  # type: ignore[union-attr]
                .values(delivered_at=self.clock())
            )
            return bool(result.rowcount)

    def release_notice(self, notice_id: int) -> None:
        """Put a claimed notice back (its sending failed for a passing reason)."""
        with self.unit() as session:
            session.exec(  # type: ignore[call-overload]
                update(UserNotice).where(col(UserNotice.id) == notice_id).values(delivered_at=None)
            )

    def database_token(self) -> str:
        """16 random hex digits drawn once per database (kept in `bot_marker`): in the
        Message-IDs that must be the same for every instance of one database (the digest's)
        and differ between databases."""
        import secrets

        from sqlalchemy.exc import IntegrityError

        cached: str | None = getattr(self, "_database_token", None)
        if cached:
            return cached
        with self._writer, self.session() as session:
            row = session.get(BotMarker, "database-token")
            if row is not None:
                self._database_token = row.value
                return row.value
            token = secrets.token_hex(8)
            session.add(BotMarker(name="database-token", at=self.clock(), value=token))
            try:
                session.commit()
            except IntegrityError:  # another instance drew it first
                session.rollback()
                row = session.get(BotMarker, "database-token")
                token = row.value if row is not None else token
            self._database_token = token
            return token

    # --- health --------------------------------------------------------------------------
    def health(self, max_pending: timedelta, probe: str = "healthz") -> tuple[bool, str]:
        """(ok, French-free status line) for `/healthz`: a committed write, the outbox's age.

        The write is real (a row per instance rewritten and committed), so a full disk or a
        read-only database shows here and not only in users' failed turns.
        """
        now = self.clock()
        try:
            with self._writer, self.session() as session:
                row = session.get(BotMarker, probe)
                if row is None:
                    session.add(BotMarker(name=probe, at=now))
                else:
                    row.at = now
                    session.add(row)
                session.commit()
        except Exception as exc:
            return False, f"database write failed: {type(exc).__name__}"
        try:
            with self.session() as session:
                oldest = session.exec(
                    select(func.min(OutboxJob.created_at))
                    .where(OutboxJob.status == OutboxStatus.PENDING)
                    .where(OutboxJob.kind != "digest")  # a digest is queued ahead of its time
                ).one()
        except Exception as exc:
            return False, f"database read failed: {type(exc).__name__}"
        if oldest is not None:
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=now.tzinfo)
            age = now - oldest
            if age > max_pending:
                minutes = int(age.total_seconds() // 60)
                return False, f"outbox stuck: oldest pending e-mail is {minutes} min old"
        return True, "ok"

    # --- audit ---------------------------------------------------------------------------
    def audit(self, actor: str, action: str, target: str = "") -> None:
        with self.unit() as session:
            session.add(
                AuditEntry(actor=actor, action=action, target=target[:255], at=self.clock())
            )

    def audit_entries(self) -> list[AuditEntry]:
        with self.unit() as session:
            return list(session.exec(select(AuditEntry).order_by(AuditEntry.id)))  # type: ignore[arg-type]

    def count(self, model: type[SQLModel]) -> int:
        with self.unit() as session:
            return int(session.exec(select(func.count()).select_from(model)).one())  # type: ignore[call-overload]
