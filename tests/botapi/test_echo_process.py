"""The bare echo bot, run as a separate process against the emulator."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.support.botapi import BotApiServer

ROOT = Path(__file__).resolve().parents[2]


async def test_echo_bot_subprocess(server: BotApiServer) -> None:
    env = dict(os.environ)
    env.update(
        TELEGRAM_BOT_TOKEN=server.token,
        TELEGRAM_API_BASE_URL=server.base_url,
        ECHO_POLL_TIMEOUT="1",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.echo_bot",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        user = server.user(4001, "Sub")
        await user.send_text("ping")
        await user.send_text("pong")
        replies = await user.wait_for_messages(2, timeout=10)
        assert [r.plain for r in replies] == ["ping", "pong"]
        assert server.latency_stats()["count"] == 2
    finally:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()
    assert process.returncode == 0
