"""Webhook mode: the emulator pushes updates to PTB's own webhook server."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from tests.support.botapi import BotApiServer, run_webhook


def echo_app(server: BotApiServer, tag: str = "") -> Application:
    """An echo application; replies are prefixed with ``tag``."""
    app = server.application_builder().build()

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(f"{tag}{update.effective_message.text}")

    app.add_handler(MessageHandler(filters.TEXT, echo))
    return app


async def test_webhook_delivery_with_secret(server: BotApiServer) -> None:
    async with run_webhook(echo_app(server), secret_token="s3cret-token") as url:
        assert server.webhook_url == url
        set_call = server.calls("setWebhook")[0]
        assert set_call.params["secret_token"] == "s3cret-token"
        user = server.user(2001, "Hélène")
        # getUpdates is refused while a webhook is set
        async with server._session.post(f"{server.api_url}/getUpdates") as response:
            body = await response.json()
        assert response.status == 409
        assert body["description"].startswith("Conflict: can't use getUpdates method")
        for index in range(5):
            await user.send_text(f"w{index}")
        replies = await user.wait_for_messages(5)
    assert [r.plain for r in replies] == [f"w{i}" for i in range(5)]
    assert {d.status for d in server.webhook_deliveries} == {200}


async def test_wrong_secret_is_refused_by_ptb(server: BotApiServer) -> None:
    server.webhook_max_attempts = 2
    async with run_webhook(echo_app(server), secret_token="right") as url:
        server.webhook_secret_override("wrong")
        user = server.user(2002, "Mallory")
        await user.send_text("intrus")
        await server.wait_for(lambda: len(server.webhook_deliveries) == 2, 3)
        assert [d.status for d in server.webhook_deliveries] == [403, 403]
        assert [d.url for d in server.webhook_deliveries] == [url, url]
        await user.expect_no_message(0.2)
        info = await (await server._session.post(f"{server.api_url}/getWebhookInfo")).json()
        assert "403" in info["result"]["last_error_message"]
        server.webhook_secret_override(None)
        await user.send_text("légitime")
        [reply] = await user.wait_for_messages(1)
    assert reply.plain == "légitime"


async def test_load_balancer_round_robin(server: BotApiServer) -> None:
    async with (
        run_webhook(echo_app(server, "A:"), secret_token="tok") as url_a,
        run_webhook(echo_app(server, "B:"), secret_token="tok") as url_b,
    ):
        server.load_balance([url_a, url_b])
        user = server.user(2003, "Lb")
        for index in range(4):
            await user.send_text(str(index))
        replies = await user.wait_for_messages(4)
    assert sorted(r.plain for r in replies) == ["A:0", "A:2", "B:1", "B:3"]
    by_update = sorted((d.update_id, d.url) for d in server.webhook_deliveries)
    assert [url for _, url in by_update] == [url_a, url_b, url_a, url_b]


async def test_delete_webhook_returns_to_polling(server: BotApiServer) -> None:
    app = echo_app(server)
    async with run_webhook(app) as url:
        assert server.webhook_url == url
    # updater.stop() does not delete the webhook: Telegram keeps it too
    assert server.webhook_url == url
    async with app:
        assert await app.bot.delete_webhook()
        assert server.webhook_url is None
        user = server.user(2004, "Po")
        await user.send_text("hello")
        updates = await app.bot.get_updates(timeout=1)
        assert [u.message.text for u in updates] == ["hello"]
