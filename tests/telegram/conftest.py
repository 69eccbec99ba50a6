"""Fixtures for the Telegram adapter: the Bot API emulator and the bot running against it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.telegram import TelegramFrontend, build_application, frontend_of, serve
from bot.config import Settings
from bot.engine.messages import Incoming, Reply
from bot.runtime import telegram_runtime
from tests.conftest import make_settings
from tests.support.botapi import BotApiServer, free_port

TOKEN = "123456:TEST-TOKEN"
BOT_USERNAME = "cpts_test_bot"


def build_test_app(settings: Settings, qa: Any = None) -> Any:
    """The real composition root; without the flows (not merged yet) an engine without flows."""
    from bot.app import App, build_app

    try:
        return build_app(settings, qa=qa, create_schema=True)
    except ModuleNotFoundError as exc:
        if "forms" not in str(exc):
            raise
    from bot.engine.engine import DialogueEngine
    from bot.qa import QAService
    from bot.storage.store import Store

    store = Store.from_url(settings.database_url)
    store.create_all()
    qa = qa or QAService.load()
    engine = DialogueEngine(store=store, qa=qa, settings=settings)
    return App(settings=settings, store=store, qa=qa, engine=engine)


def has_flow(app: Any, name: str) -> bool:
    return name in app.engine.flows


@dataclass
class Running:
    """The emulator, the bot's application and its adapter object, running together."""

    server: BotApiServer
    application: Any
    frontend: TelegramFrontend
    app: Any
    stop: asyncio.Event
    task: asyncio.Task[int]

    async def shutdown(self) -> int:
        self.stop.set()
        return await asyncio.wait_for(self.task, 20)


@pytest.fixture
async def botapi() -> AsyncIterator[BotApiServer]:
    async with BotApiServer(token=TOKEN, bot_username=BOT_USERNAME) as server:
        yield server


@pytest.fixture
def tg_settings(tmp_path: Path) -> Settings:
    return make_settings(f"sqlite:///{tmp_path / 'bot.sqlite3'}", tmp_path)


StartBot = Callable[..., Any]


@pytest.fixture
async def start_bot(
    botapi: BotApiServer, tg_settings: Settings, qa_service: Any
) -> AsyncIterator[StartBot]:
    """Start the bot in-process (long polling) against the emulator; stopped at teardown."""
    started: list[Running] = []

    async def start(
        *,
        rate_limit: bool = True,
        notices_every: float = 0.2,
        engine: Any = None,
        **overrides: Any,
    ) -> Running:
        settings = tg_settings.model_copy(update=overrides) if overrides else tg_settings
        app = build_test_app(settings, qa_service)
        if engine is not None:
            app.engine = engine
        application = build_application(
            app,
            token=TOKEN,
            base_url=botapi.base_url,
            rate_limit=rate_limit,
            notices_every=notices_every,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(
            serve(
                application,
                stop=stop,
                poll_timeout=1,
                handle_signals=False,
                runtime=telegram_runtime(application),
            )
        )
        await botapi.wait_for(lambda: task.done() or bool(botapi.calls("getupdates")), timeout=10)
        if task.done():
            task.result()
        running = Running(botapi, application, frontend_of(application), app, stop, task)
        started.append(running)
        return running

    yield start
    for running in started:
        if not running.task.done():
            await running.shutdown()


@pytest.fixture
async def bot(start_bot: StartBot) -> Running:
    return await start_bot()


class StubEngine:
    """An engine whose replies a test scripts (to test rendering independently of dialogues).

    `script(incoming) -> list[Reply]`; `delay` seconds of (blocking) work per turn.
    """

    def __init__(self, script: Callable[[Incoming], list[Reply]], delay: float = 0.0) -> None:
        from bot.engine.texts import menu_texts

        self.script = script
        self.delay = delay
        self.texts = menu_texts()
        self.seen: list[Incoming] = []
        self.lock = threading.Lock()

    def handle(self, incoming: Incoming, render_documents: bool = True) -> list[Reply]:
        with self.lock:
            self.seen.append(incoming)
        if self.delay:
            time.sleep(self.delay)
        return self.script(incoming)

    def render_document(self, reply: Reply) -> Reply:
        return reply


@asynccontextmanager
async def serving_webhook(
    botapi: BotApiServer, tg_settings: Any, qa_service: Any, **extra: Any
) -> AsyncIterator[int]:
    """A bot serving its webhook on a free port (secret « s3cret-token »), registered with the
    Bot API emulator; yields the port, then stops the bot and checks it exited cleanly."""
    port = free_port()
    settings = tg_settings.model_copy(
        update={
            "webhook_url": f"http://127.0.0.1:{port}/tg/hook",
            "webhook_port": port,
            "webhook_secret": "s3cret-token",
            **extra,
        }
    )
    app = build_test_app(settings, qa_service)
    application = build_application(app, token=TOKEN, base_url=botapi.base_url)
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            application,
            webhook=True,
            stop=stop,
            handle_signals=False,
            runtime=telegram_runtime(application),
        )
    )
    try:
        await botapi.wait_for(lambda: botapi.webhook_url is not None, timeout=10)
        yield port
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0
