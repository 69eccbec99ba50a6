"""Messages from the back office to respondents, through the adapter in process and the Bot API
emulator: delivered, or marked undelivered (user blocked the bot) and shown so in the back office.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from bot import exchange
from bot.storage.models import Meeting, MessageState, RespondentMessage
from bot.web.followup import load_config
from tests.conftest import FakeClock
from tests.mail.factories import submit
from tests.support.botapi import BotApiServer
from tests.telegram.conftest import StartBot
from tests.web.conftest import SECRETARIAT, add_accounts, start_server


def states(store: Any) -> list[tuple[str, str | None]]:
    with store.unit() as session:
        rows = session.exec(select(RespondentMessage).order_by(col(RespondentMessage.id)))
        return [(r.state, r.error) for r in rows]


async def settled(store: Any, count: int, timeout: float = 10) -> list[tuple[str, str | None]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = states(store)
        done = [s for s in found if s[0] in (MessageState.DELIVERED, MessageState.UNDELIVERED)]
        if len(done) >= count:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"messages not settled: {found}")
        await asyncio.sleep(0.05)


def secretariat(store: Any) -> Any:
    from bot.storage.models import StaffAccount

    with store.unit() as session:
        return session.exec(select(StaffAccount).where(StaffAccount.email == SECRETARIAT)).one()


async def test_a_message_to_a_user_who_blocked_the_bot_is_shown_undelivered_in_the_back_office(
    botapi: BotApiServer, start_bot: StartBot
) -> None:
    running = await start_bot(rate_limit=False)
    store, settings = running.app.store, running.app.settings
    add_accounts(store)
    sub, _ = submit(store, settings, user_id=777)
    user = botapi.user(777, first_name="Anne")
    await user.block()

    exchange.send_message(
        store, settings, secretariat(store), sub, "Pouvons-nous échanger la semaine prochaine ?"
    )
    [(state, error)] = await settled(store, 1)
    assert state == MessageState.UNDELIVERED
    assert error is not None and "blocked by the user" in error

    web = start_server(settings.model_copy(update={"web_cookie_secure": False}), store, FakeClock())
    try:
        client = web.client()
        client.login(SECRETARIAT)
        html = client.get(f"/reponses/{sub.id}").text
        assert "Pouvons-nous échanger la semaine prochaine ?" in html
        assert "Non remis" in html and "bot was blocked by the user" in html
    finally:
        web.stop()

    # unblocked, the next message goes through; the undelivered one stays as it was
    await user.unblock()
    exchange.send_message(store, settings, secretariat(store), sub, "Nouvel essai.")
    found = await settled(store, 2)
    assert [s for s, _ in found] == [MessageState.UNDELIVERED, MessageState.DELIVERED]
    [message] = await user.wait_for_messages(1, timeout=10)
    assert "Nouvel essai." in (message.plain or "")
    assert message.buttons == ["↩️ Répondre à l'ARS"]


async def test_status_changes_reach_the_respondent_in_french_and_a_reminder_is_sent_once(
    botapi: BotApiServer, start_bot: StartBot
) -> None:
    from bot.web.followup import sync, update_followup

    running = await start_bot(rate_limit=False)
    store, settings = running.app.store, running.app.settings
    add_accounts(store)
    sub, _ = submit(store, settings, user_id=778)
    user = botapi.user(778, first_name="Yann")
    config = load_config()
    sync(store, config)
    account = secretariat(store)
    update_followup(store, config, account, sub.id or 0, status="prise_en_charge")
    update_followup(store, config, account, sub.id or 0, status="close")
    update_followup(store, config, account, sub.id or 0, status="sans_suite")  # no text: silent
    await saw(user, "est prise en charge par l'ARS Bretagne")
    await saw(user, "Le suivi de votre réponse")
    await asyncio.sleep(0.6)
    assert len(texts_with(user, "Votre réponse")) == 1 + len(texts_with(user, "est enregistrée"))

    # a meeting in 30 hours: its reminder is due 24 hours before, queued once though passes race
    now = store.clock()
    start = (now + timedelta(hours=30)).astimezone(exchange.F.PARIS)
    slot = exchange.SlotInput(start, 60, "MSP de Lannion")
    exchange.propose(store, settings, account, sub, [slot])
    await saw(user, "vous propose un temps d'échange")
    [slot_button] = [
        data for m in user.all_messages() for row in m.keyboard for _, data in row
        if "slot" in str(data)
    ]  # fmt: skip
    await user.press(data=slot_button)
    await saw(user, "Temps d'échange planifié")
    with store.unit() as session:
        meeting = session.exec(select(Meeting)).one()
        assert meeting.remind_at == start - timedelta(hours=24)
        meeting.remind_at = store.clock() - timedelta(seconds=1)  # six hours later, as it were
        session.add(meeting)
    results = await asyncio.gather(
        *(asyncio.to_thread(exchange.queue_due_reminders, store) for _ in range(3))
    )
    assert sum(results) <= 1  # the bot's own pass may have taken it first
    await saw(user, "Rappel : temps d'échange avec l'ARS Bretagne demain")
    await asyncio.sleep(1.0)
    assert len(texts_with(user, "Rappel")) == 1


def texts_with(user: Any, fragment: str) -> list[str]:
    return [m.plain or "" for m in user.all_messages() if fragment in (m.plain or "")]


async def saw(user: Any, fragment: str, timeout: float = 10) -> None:
    await user.server.wait_for(lambda: texts_with(user, fragment), timeout=timeout)
