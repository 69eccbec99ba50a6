"""The store keeps every turn, serialises one user's turns, and migrates cleanly."""

from __future__ import annotations

import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from bot.storage import OutboxStatus, Store
from bot.storage.migrations import DatabaseNotMigrated, ensure_migrated, upgrade
from bot.storage.store import make_engine
from tests.conftest import FakeClock


@pytest.fixture
def store(database_url: str, clock: FakeClock) -> Store:
    upgrade(database_url)
    return Store(make_engine(database_url), clock)


def test_answers_given_in_a_turn_survive_a_new_store_instance(
    database_url: str, store: Store
) -> None:
    with store.turn(42) as turn:
        turn.conversation.flow = "ami_bretagne"
        turn.conversation.data["ami_bretagne"] = {"context": "Une MSP à Lannion"}
    fresh = Store.from_url(database_url)
    conv = fresh.get_conversation(42)
    assert conv is not None
    assert conv.flow == "ami_bretagne"
    assert conv.data["ami_bretagne"]["context"] == "Une MSP à Lannion"
    assert conv.version == 1


def test_a_failed_turn_keeps_the_previous_answers(store: Store) -> None:
    with store.turn(7) as turn:
        turn.conversation.data["answer"] = "first"
    with pytest.raises(RuntimeError), store.turn(7) as turn:
        turn.conversation.data["answer"] = "lost"
        raise RuntimeError("crash in the middle of a turn")
    conv = store.get_conversation(7)
    assert conv is not None and conv.data["answer"] == "first"


def test_two_concurrent_turns_of_one_user_are_applied_one_after_the_other(store: Store) -> None:
    with store.turn(5) as turn:
        turn.conversation.data["log"] = []

    def append(tag: str) -> None:
        with store.turn(5) as turn:
            log = list(turn.conversation.data["log"])
            time.sleep(0.05)  # hold the lock while the other thread waits
            turn.conversation.data["log"] = [*log, tag]

    threads = [threading.Thread(target=append, args=(f"t{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    conv = store.get_conversation(5)
    assert conv is not None
    assert sorted(conv.data["log"]) == [f"t{i}" for i in range(6)]  # no update lost
    assert conv.version == 7


def test_submission_and_its_mail_job_commit_together_or_not_at_all(store: Store) -> None:
    with pytest.raises(RuntimeError), store.turn(9) as turn:
        sub = store.add_submission(
            turn.session, user_id=9, form_id="ami_bretagne", recipient="a@example.org", answers={}
        )
        store.add_outbox_job(
            turn.session,
            kind="ars",
            recipient="a@example.org",
            message_id=f"<{sub.reference}>",
            submission_id=sub.id,
        )
        raise RuntimeError("crash before commit")
    assert store.submissions() == []
    assert store.jobs() == []
    with store.turn(9) as turn:
        sub = store.add_submission(
            turn.session,
            user_id=9,
            form_id="ami_bretagne",
            recipient="a@example.org",
            answers={"x": 1},
        )
        store.add_outbox_job(
            turn.session,
            kind="ars",
            recipient="a@example.org",
            message_id=f"<{sub.reference}>",
            submission_id=sub.id,
        )
    assert [s.reference for s in store.submissions()] == [sub.reference]
    assert sub.reference.startswith("AMI-2026-")
    assert [j.status for j in store.jobs()] == [OutboxStatus.PENDING]


def test_a_claimed_job_is_not_claimed_again_until_its_lease_expires(
    store: Store, clock: FakeClock
) -> None:
    with store.turn(1) as turn:
        store.add_outbox_job(turn.session, kind="ars", recipient="a@example.org", message_id="<m1>")
    assert len(store.claim_jobs()) == 1
    assert store.claim_jobs() == []
    clock.advance(minutes=6)
    assert len(store.claim_jobs()) == 1


def test_notices_are_delivered_once(store: Store) -> None:
    store.add_notice(3, "Votre réponse a été transmise.")
    (notice,) = store.pending_notices()
    assert store.mark_notice_delivered(notice.id) is True
    assert store.mark_notice_delivered(notice.id) is False
    assert store.pending_notices() == []


def test_migrations_produce_exactly_the_models_schema(database_url: str, store: Store) -> None:
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_start_up_refuses_an_unmigrated_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    with pytest.raises(DatabaseNotMigrated, match="python -m bot migrate"):
        ensure_migrated(engine)


def test_a_released_notice_is_delivered_again(store: Store) -> None:
    store.add_notice(4, "Votre réponse a été transmise.")
    (notice,) = store.pending_notices()
    assert store.mark_notice_delivered(notice.id)
    store.release_notice(notice.id)  # Telegram was unreachable: try again later
    assert [n.id for n in store.pending_notices()] == [notice.id]
