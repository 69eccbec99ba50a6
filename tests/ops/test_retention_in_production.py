"""Retention must run inside the deployed bot, not only when a test calls it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.storage.models import Conversation, utcnow
from bot.storage.store import Store
from tests.ops.harness import BotProcess, OpsBotApi, bot_env, migrate, processes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


async def test_the_running_bot_reminds_an_idle_draft_before_erasing_it(
    api: OpsBotApi, sqlite_url: str, tmp_path: Path
) -> None:
    env = bot_env(sqlite_url, api, None, tmp_path)
    migrate(env)
    store = Store.from_url(sqlite_url)
    with store.turn(6001) as turn:  # a draft left 25 days ago: the 7-day reminder is due
        turn.conversation.flow = "ami_bretagne"
        turn.conversation.data = {"ami_bretagne": {"answers": {"actors": [{"name": "Dr Le Du"}]}}}
    with store.session() as session:
        session.exec(  # type: ignore[call-overload]
            update(Conversation).values(updated_at=utcnow() - timedelta(days=25))
        )
        session.commit()
    user = api.user(6001, "Nolwenn")
    with processes() as bots:
        bot = BotProcess(env, tmp_path / "bot.log")
        bots.append(bot)
        await bot.start().wait_ready()
        [reminder] = await user.wait_for_messages(1, timeout=10)
    assert "sera effacé le" in reminder.plain
    store.engine.dispose()
