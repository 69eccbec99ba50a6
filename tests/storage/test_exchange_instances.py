"""Two bot instances on one database (SQLite and PostgreSQL): each message to a respondent is
claimed by one of them only, each reminder queued once, a crashed instance's claim taken over."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from bot import exchange
from bot.storage.models import Meeting, MeetingSlot, MessageState, RespondentMessage, StaffAccount
from bot.storage.store import Store
from bot.web.followup import load_config, sync
from tests.conftest import FakeClock, make_settings
from tests.mail.factories import submit
from tests.web.conftest import SECRETARIAT, add_accounts


def test_two_instances_share_messages_and_reminders_without_doubles(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    settings = make_settings(database_url, tmp_path)
    first = Store.from_url(database_url, clock)
    first.create_all()
    second = Store.from_url(database_url, clock)
    try:
        add_accounts(first)
        sub, _ = submit(first, settings, user_id=61)
        sync(first, load_config())
        with first.unit() as session:
            account = session.exec(
                select(StaffAccount).where(StaffAccount.email == SECRETARIAT)
            ).one()
        for i in range(10):
            exchange.send_message(first, settings, account, sub, f"Message {i}")

        with ThreadPoolExecutor(4) as pool:
            batches = list(pool.map(lambda s: exchange.claim_messages(s, 20), [first, second] * 2))
        claimed = [m.id for batch in batches for m in batch]
        assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 10

        # an instance died holding its claims: after the lease, another takes them over
        assert exchange.claim_messages(second) == []
        clock.advance(minutes=3)
        taken = exchange.claim_messages(second)
        assert len(taken) == 10 and {m.attempts for m in taken} == {2}
        for message in taken:
            assert message.id is not None
            exchange.finish_message(second, message.id, MessageState.DELIVERED)

        # a meeting tomorrow: its reminder, due, is queued once by racing instances
        start = clock() + timedelta(hours=30)
        slot = exchange.SlotInput(start, 60, "MSP de Lannion")
        exchange.propose(first, settings, account, sub, [slot])
        with first.unit() as session:
            [row] = session.exec(select(MeetingSlot)).all()
            data: dict[str, object] = {}
            exchange.handle_choice(session, first, settings, 61, data, f"slot:{row.id}")
        clock.advance(hours=7)
        with ThreadPoolExecutor(4) as pool:
            counts = list(pool.map(exchange.queue_due_reminders, [first, second] * 3))
        assert sum(counts) == 1
        with first.unit() as session:
            kinds = [m.kind for m in session.exec(select(RespondentMessage))]
            [meeting] = session.exec(select(Meeting)).all()
        assert kinds.count("reminder") == 1 and meeting.reminder_sent_at is not None
    finally:
        first.engine.dispose()
        second.engine.dispose()
