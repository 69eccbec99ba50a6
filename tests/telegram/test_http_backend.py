"""The aiohttp request backend keeps python-telegram-bot's behaviour: results, errors, uploads."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.adapters.telegram_aiohttp import AiohttpRequest
from tests.support.botapi import BotApiServer

TOKEN = "123456:HTTP-BACKEND"


def _bot(base_url: str, **request_options: float) -> Bot:
    return Bot(TOKEN, base_url=base_url, request=AiohttpRequest(**request_options))


async def test_messages_documents_and_bot_api_errors_go_through_aiohttp() -> None:
    async with BotApiServer(token=TOKEN) as server:
        user = server.user(4242)
        await user.send_text("bonjour")
        async with _bot(server.base_url) as bot:
            me = await bot.get_me()
            assert me.is_bot
            sent = await bot.send_message(4242, "<b>Réponse</b> &amp; suite", parse_mode="HTML")
            assert sent.text == "Réponse & suite"
            await bot.send_document(4242, b"%PDF-1.4 fiche", filename="AMI-2026-0001.pdf")
            with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
                await bot.send_message(4242, "")
        [document] = user.documents()
        assert document.file_name == "AMI-2026-0001.pdf"
        assert document.data == b"%PDF-1.4 fiche"


async def test_an_unreachable_server_is_a_network_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    with pytest.raises(NetworkError):
        async with _bot(f"http://127.0.0.1:{port}/bot") as bot:  # initialising calls getMe
            await bot.get_me()


async def test_a_server_that_does_not_answer_in_time_is_a_timeout() -> None:
    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        request = AiohttpRequest(read_timeout=0.3)
        await request.initialize()
        try:
            with pytest.raises(TimedOut):
                await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
        finally:
            await request.shutdown()
    finally:
        await runner.cleanup()
