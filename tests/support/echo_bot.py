"""A bare PTB echo bot: the baseline for throughput benchmarks against the Bot API emulator.

In-process::

    app = build_echo_application(token, base_url)

As a process (polls until SIGINT/SIGTERM)::

    TELEGRAM_BOT_TOKEN=123:ABC TELEGRAM_API_BASE_URL=http://127.0.0.1:PORT/bot \\
        python -m tests.support.echo_bot

Optional env: ``TELEGRAM_API_BASE_FILE_URL`` (default derived from the base URL),
``ECHO_POLL_TIMEOUT`` (getUpdates long-poll timeout in seconds, default 10),
``ECHO_CONCURRENT_UPDATES`` (PTB concurrent_updates, default 1 = sequential).
No rate limiter is used on purpose: this is the raw baseline.
"""

from __future__ import annotations

import os
import sys

from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply with the same text."""
    message = update.effective_message
    if message is not None and message.text:
        await message.reply_text(message.text, do_quote=False)


def file_url_for(base_url: str) -> str:
    """Derive the file base URL from the API base URL (``…/bot`` → ``…/file/bot``)."""
    if base_url.endswith("/bot"):
        return base_url[: -len("/bot")] + "/file/bot"
    return base_url.rstrip("/") + "/file/bot"


def build_echo_application(
    token: str,
    base_url: str,
    base_file_url: str | None = None,
    *,
    concurrent_updates: int | bool = 1,
    aiohttp: bool = False,
) -> Application:
    """Build the echo Application pointed at ``base_url`` (e.g. ``http://127.0.0.1:PORT/bot``).

    ``aiohttp=True`` gives it the bot's own HTTP backend instead of PTB's default (httpx).
    """
    builder = (
        Application.builder()
        .token(token)
        .base_url(base_url)
        .base_file_url(base_file_url or file_url_for(base_url))
        .concurrent_updates(concurrent_updates)
    )
    if aiohttp:
        from bot.adapters.telegram_aiohttp import AiohttpRequest

        builder = builder.request(AiohttpRequest(64)).get_updates_request(AiohttpRequest(1))
    application = builder.build()
    application.add_handler(MessageHandler(filters.TEXT, echo))
    return application


def main() -> int:
    """Run the echo bot with long polling from environment variables."""
    token = os.environ.get("TELEGRAM_BOT_TOKEN")
    base_url = os.environ.get("TELEGRAM_API_BASE_URL")
    if not token or not base_url:
        print("TELEGRAM_BOT_TOKEN and TELEGRAM_API_BASE_URL are required", file=sys.stderr)
        return 2
    concurrency = int(os.environ.get("ECHO_CONCURRENT_UPDATES", "1"))
    application = build_echo_application(
        token,
        base_url,
        os.environ.get("TELEGRAM_API_BASE_FILE_URL"),
        concurrent_updates=concurrency,
        aiohttp=os.environ.get("ECHO_HTTP") == "aiohttp",
    )
    print("echo bot polling", flush=True)
    application.run_polling(
        poll_interval=0,
        timeout=int(float(os.environ.get("ECHO_POLL_TIMEOUT", "10"))),
        allowed_updates=Update.ALL_TYPES,
        close_loop=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
