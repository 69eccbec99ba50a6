"""kill -9 of the bot at random points: no acknowledged answer lost, no e-mail lost or doubled.

What is guaranteed, and tested here:

- a turn is one transaction: an answer the bot has replied to is in the database (the reply is
  sent after the commit); an update killed before its commit is either fetched again (it was
  never acknowledged to the Bot API) or lost *without a reply*, and the user is shown the
  current question again by /reprendre;
- e-mails are at-least-once with a stable Message-ID: a kill while the SMTP server holds the
  DATA (between its 250 and our commit of "sent") sends the message again, with the same
  Message-ID, after the job's lease (5 min) runs out — the receiving side deduplicates on it;
  any other kill sends each e-mail exactly once;
- scheduled work (retries with back-off, digests, reminders) lives in the database and
  survives a restart.

Waiting for a lease or a back-off to run out is simulated by moving the row's timestamps
(`time_travel_*`) while the bot is down.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.storage.models import OutboxJob, OutboxStatus, utcnow
from bot.storage.store import Store
from tests.ops.harness import (
    BotProcess,
    OpsBotApi,
    SmtpSink,
    act,
    ami_steps,
    answer_in_draft,
    answers_of,
    bot_env,
    complete_ami,
    do_step,
    draft_answers,
    migrate,
    persona,
    processes,
    resume_position,
    submission_matches,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


async def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.05)


def time_travel_backoff(store: Store) -> None:
    """As if the retry delay had elapsed."""
    with store.session() as session:
        session.exec(update(OutboxJob).values(next_attempt_at=utcnow() - timedelta(seconds=1)))  # type: ignore[call-overload]
        session.commit()


def time_travel_lease(store: Store) -> None:
    """As if the 5-minute lease of a job claimed by the killed process had run out."""
    with store.session() as session:
        session.exec(  # type: ignore[call-overload]
            update(OutboxJob)
            .where(OutboxJob.locked_until.is_not(None))  # type: ignore[union-attr]
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
        session.commit()


async def test_killed_during_a_form_the_bot_keeps_every_answer_it_acknowledged(
    api: OpsBotApi, any_db_url: str, tmp_path: Path
) -> None:
    env = bot_env(any_db_url, api, None, tmp_path)
    migrate(env)
    store = Store.from_url(any_db_url)
    rng = random.Random(20261123)
    p = persona(42)
    steps = ami_steps(p)
    user = api.user(4242, "Maela")
    # Three kills: right after a reply, and twice while an update is on its way or running.
    kills = {3: "between", 8: "during", 14: "during"}
    acknowledged: list[str] = []
    with processes() as bots:
        bot = BotProcess(env, tmp_path / "bot.log")
        bots.append(bot)
        await bot.start().wait_ready()
        index = 0
        while index < len(steps) - 1:  # the last step ("Envoyer") is the mail tests' business
            step = steps[index]
            mode = kills.pop(index, None)
            if mode == "during":
                await act(user, step)
                await asyncio.sleep(rng.uniform(0.0, 0.15))
            else:
                await do_step(api, user, step)
                if step.field:
                    acknowledged.append(step.field)
            if mode is None:
                index += 1
                continue
            bot.kill()
            answers = draft_answers(store, user.user_id)
            lost = [f for f in acknowledged if not answer_in_draft(answers, f, p)]
            assert not lost, (mode, index, lost, answers)
            await bot.start().wait_ready()
            position = await resume_position(api, user, steps)
            assert position in (index - 1, index), (mode, index, position)
            if position == index and step.field and step.field not in acknowledged:
                acknowledged.append(step.field)  # applied before the kill: kept
            index = position + 1
        answers = draft_answers(store, user.user_id)
        assert all(answer_in_draft(answers, f, p) for f in acknowledged)
        await do_step(api, user, steps[-1])
        [sub] = store.submissions()
        assert submission_matches(sub.answers, p), sub.answers
        assert bot.starts == 4
    store.engine.dispose()


async def test_outbox_survives_kills_and_resends_in_flight_mail_with_its_message_id(
    api: OpsBotApi, any_db_url: str, tmp_path: Path
) -> None:
    sink = SmtpSink()  # its port is chosen, but nobody listens yet: SMTP is down
    env = bot_env(any_db_url, api, sink, tmp_path, SMTP_TIMEOUT="5")
    migrate(env)
    store = Store.from_url(any_db_url)
    people = {5001: persona(501), 5002: persona(502)}
    with processes() as bots:
        bot = BotProcess(env, tmp_path / "bot.log")
        bots.append(bot)
        await bot.start().wait_ready()
        await asyncio.gather(
            *(complete_ami(api, api.user(uid, f"U{uid}"), p) for uid, p in people.items())
        )

        # 1. SMTP down: each job fails once and gets a retry date, in the database.
        def retried() -> bool:
            jobs = store.jobs()
            return len(jobs) == 2 and all(j.attempts == 1 for j in jobs)

        await wait_until(retried, 15, "a first failed attempt for each job")
        bot.kill()
        for job in store.jobs():
            assert job.status == OutboxStatus.PENDING and job.next_attempt_at > utcnow()

        # 2. The retry survives the restart; kill again while the server holds the DATA.
        sink.delay_before_250 = 3.0
        with sink:
            time_travel_backoff(store)
            await bot.start().wait_ready()
            await wait_until(sink.data_in_flight.is_set, 15, "DATA received by the server")
            bot.kill()
            [in_flight] = sink.message_ids()
            sink.delay_before_250 = 0.0

            # 3. After the lease, the message goes again with the same Message-ID; the other once.
            time_travel_lease(store)
            await bot.start().wait_ready()
            await wait_until(
                lambda: all(j.status == OutboxStatus.SENT for j in store.jobs()),
                20,
                "both jobs sent",
            )
            await asyncio.sleep(0.5)
            received = sink.messages()
        ids = [m.message_id for m in received]
        assert sorted(ids) == sorted([*{j.message_id for j in store.jobs()}, in_flight])
        assert ids.count(in_flight) == 2  # at-least-once: the same message, the same Message-ID
        deduplicated = {m.message_id: m for m in received}
        assert len(deduplicated) == len(people)  # what ARS sees after dedup: one per response
        for message in deduplicated.values():
            data = answers_of(message)
            assert submission_matches(data, people[data["telegram_user_id"]])
        assert all(j.attempts == 2 for j in store.jobs())  # the killed attempt left no trace

        # Each user is told once that the response reached the ARS.
        def told(uid: int) -> int:
            messages = api.user(uid).all_messages()
            return sum("bien été transmise" in m.plain for m in messages)

        await wait_until(lambda: all(told(uid) for uid in people), 15, "sent notices")
        await asyncio.sleep(0.5)
        assert [told(uid) for uid in people] == [1] * len(people)
    store.engine.dispose()
