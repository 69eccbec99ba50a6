"""Two `python -m bot run --webhook` processes share one PostgreSQL database.

The emulator spreads one user's updates over both instances (alternately). Turns must apply
in order, none lost, none applied twice; the outbox is drained by both and every e-mail leaves
once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from itertools import count
from typing import Any

import pytest
import pytest_asyncio

from bot.storage.models import OutboxJob, OutboxStatus
from bot.storage.store import Store
from tests.ops.harness import (
    TOKEN,
    WEBHOOK_SECRET,
    BotProcess,
    OpsBotApi,
    SmtpSink,
    ami_steps,
    answers_of,
    bot_env,
    complete_ami,
    do_step,
    draft_answers,
    free_port,
    migrate,
    persona,
    processes,
    submission_matches,
    wait_shown,
)
from tests.postgres_cluster import PostgresCluster

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.asyncio(loop_scope="module"),
]

QUESTIONS = [
    "Qu'est-ce qu'une CPTS ?",
    "combien de financement pour une ESP",
    "quelles missions socles ?",
    "Qui peut faire partie d'une ESP ?",
    "C'est quoi le FIR ?",
    "Quelle différence entre ESP et CPTS ?",
]


@dataclass
class Cluster:
    """Two bot instances behind the emulator's load balancer, one database, one SMTP sink."""

    api: OpsBotApi
    smtp: SmtpSink
    store: Store
    bots: list[BotProcess]
    urls: list[str]


def alternate_per_user() -> Any:
    """A chooser sending each user's successive updates to A, B, A, B…"""
    counters: dict[int, count[int]] = {}

    def choose(update: dict[str, Any], urls: list[str]) -> str:
        body = update.get("message") or update.get("callback_query") or {}
        user = (body.get("from") or {}).get("id", 0)
        return urls[next(counters.setdefault(user, count())) % len(urls)]

    return choose


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def telegram_like_api() -> AsyncIterator[OpsBotApi]:
    """Webhook delivery as Telegram does it: one update per chat in flight at a time."""
    async with OpsBotApi(TOKEN, per_chat_sequential=True, webhook_retry_delay=0.2) as server:
        yield server


@pytest.fixture(scope="module")
def module_smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(
    telegram_like_api: OpsBotApi,
    module_smtp: SmtpSink,
    postgres: PostgresCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Cluster]:
    """Started once for the module: the tests use distinct users."""
    api, smtp = telegram_like_api, module_smtp
    pg_url = postgres.new_database()
    tmp_path = tmp_path_factory.mktemp("two-instances")
    base = bot_env(pg_url, api, smtp, tmp_path, WEBHOOK_SECRET=WEBHOOK_SECRET)
    migrate(base)
    with processes() as bots:
        urls = []
        for name in ("a", "b"):
            port = free_port()
            url = f"http://127.0.0.1:{port}/telegram"
            env = base | {"WEBHOOK_URL": url, "WEBHOOK_LISTEN": "127.0.0.1"}
            env["WEBHOOK_PORT"] = str(port)
            bots.append(BotProcess(env, tmp_path / f"bot-{name}.log", webhook=True).start())
            urls.append(url)
        await asyncio.gather(*(bot.wait_ready() for bot in bots))
        api.load_balance(urls, alternate_per_user())
        store = Store.from_url(pg_url)
        try:
            yield Cluster(api, smtp, store, bots, urls)
        finally:
            store.engine.dispose()


def delivered_once(api: OpsBotApi) -> None:
    """Every update reached exactly one instance, at the first attempt."""
    by_update: dict[int, list[Any]] = {}
    for delivery in api.webhook_deliveries:
        by_update.setdefault(delivery.update_id, []).append(delivery)
    for update_id, deliveries in by_update.items():
        assert [d.status for d in deliveries] == [200], (update_id, deliveries)


async def reference_answers(api: OpsBotApi) -> list[str]:
    """The answer to each question, asked one at a time by a user of its own."""
    reference = api.user(7001, "Anne")
    expected = []
    for question in QUESTIONS:
        since = len(reference.all_messages())
        await reference.send_text(question)
        await api.wait_for(lambda s=since: len(reference.all_messages()) > s, timeout=15)
        expected.append(reference.all_messages()[-1].plain)
    return expected


async def test_two_instances_answer_each_question_once_in_order_when_users_wait(
    cluster: Cluster,
) -> None:
    api = cluster.api
    expected = await reference_answers(api)
    users = [api.user(7100 + i, f"User{i}") for i in range(4)]

    async def converse(user: Any) -> None:
        for question in QUESTIONS:
            since = len(user.all_messages())
            await user.send_text(question)
            await api.wait_for(lambda u=user, s=since: len(u.all_messages()) > s, timeout=15)

    await asyncio.gather(*(converse(user) for user in users))
    for user in users:
        await user.expect_no_message(within=0.3)
        assert [m.plain for m in user.all_messages()] == expected, user.user_id
    delivered_once(api)
    assert {d.url for d in api.webhook_deliveries} == set(cluster.urls)


async def test_two_instances_lose_and_double_no_turn_of_a_burst(cluster: Cluster) -> None:
    """Bursts alternately delivered to A and B: every question answered exactly once."""
    api = cluster.api
    expected = await reference_answers(api)
    users = [api.user(7150 + i, f"User{i}") for i in range(3)]
    for question in QUESTIONS:
        for user in users:
            await user.send_text(question)
    for user in users:
        await api.wait_for(lambda u=user: len(u.all_messages()) >= len(QUESTIONS), timeout=30)
        await user.expect_no_message(within=0.5)
        assert sorted(m.plain for m in user.all_messages()) == sorted(expected), user.user_id
    delivered_once(api)


async def test_two_instances_apply_one_users_burst_in_order(cluster: Cluster) -> None:
    """The user types a section's answers without waiting; Telegram sends them one by one."""
    api = cluster.api
    for attempt in range(3):  # a race: give it a few chances to show
        p = persona(11 + attempt)
        user = api.user(7201 + attempt, "Yann")
        steps = ami_steps(p)
        for step in steps[:2]:  # /ami, consent
            await do_step(api, user, step)
        since = len(user.all_messages())
        for step in steps[2:5]:  # name, profession, commune: delivered A, B, A
            await user.send_text(step.value)
        await wait_shown(api, user, "exercice coordonné", since, 15)
        await user.expect_no_message(within=0.3)
        [actor] = draft_answers(cluster.store, user.user_id)["actors"]
        assert (actor["name"], actor["profession"], actor["commune"]) == (
            p["actor"],
            p["profession"],
            p["commune"],
        )
    delivered_once(api)


async def test_two_instances_drain_the_outbox_and_each_email_leaves_once(
    cluster: Cluster,
) -> None:
    api = cluster.api
    people = {7300 + i: persona(300 + i) for i in range(6)}
    await asyncio.gather(
        *(complete_ami(api, api.user(uid, f"U{uid}"), p) for uid, p in people.items())
    )
    received = await cluster.smtp.wait_for(len(people), timeout=30)
    await asyncio.sleep(1.0)  # a double sending would show now
    received = cluster.smtp.messages()
    ids = [m.message_id for m in received]
    assert len(ids) == len(set(ids)) == len(people)
    by_user = {answers_of(m)["telegram_user_id"]: m for m in received}
    assert set(by_user) == set(people)
    for uid, message in by_user.items():
        assert submission_matches(answers_of(message), people[uid]), answers_of(message)
        assert people[uid]["referent"] in message.text_body()
    jobs = cluster.store.jobs()
    assert len(jobs) == len(people)
    assert all(j.status == OutboxStatus.SENT and j.attempts == 1 for j in jobs)
    assert cluster.store.count(OutboxJob) == len(people)
    delivered_once(api)
