"""The background jobs (bot/runtime.py): the same in every mode, supervised, stopped cleanly.

Real parts: the Bot API emulator, an aiosmtpd relay, SQLite, the back office's ASGI lifespan,
`python -m bot worker` as a child process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.adapters.telegram import build_application
from bot.runtime import (
    DELIVERY_JOBS,
    MAIL_AND_DATA_JOBS,
    Job,
    Runtime,
    console_runtime,
    telegram_runtime,
    web_runtime,
)
from tests.conftest import Chat, make_settings
from tests.forms.walk import fill_to_review
from tests.ops.harness import ARS, ROOT, SmtpSink, migrate
from tests.support.botapi import BotApiServer, free_port
from tests.telegram.conftest import TOKEN, StartBot, build_test_app

EVERY_JOB = {*MAIL_AND_DATA_JOBS, *DELIVERY_JOBS}
PERSONAS = Path(__file__).parents[1] / "forms" / "personas.yaml"


def persona(name: str) -> dict[str, Any]:
    with PERSONAS.open(encoding="utf-8") as fh:
        return {p["id"]: p for p in yaml.safe_load(fh)["personas"]}[name]


async def test_long_polling_runs_every_background_job(start_bot: StartBot) -> None:
    bot = await start_bot()
    assert bot.frontend.runtime is not None
    assert set(bot.frontend.runtime.running) == EVERY_JOB
    await bot.shutdown()
    assert bot.frontend.runtime.running == []


async def test_webhook_runs_the_same_background_jobs(
    botapi: BotApiServer, tg_settings: Any, qa_service: Any
) -> None:
    from bot.adapters.telegram import serve

    port = free_port()
    settings = tg_settings.model_copy(
        update={"webhook_url": f"http://127.0.0.1:{port}/hook", "webhook_port": port}
    )
    application = build_application(
        build_test_app(settings, qa_service), token=TOKEN, base_url=botapi.base_url
    )
    runtime = telegram_runtime(application)
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(application, webhook=True, stop=stop, handle_signals=False, runtime=runtime)
    )
    await botapi.wait_for(lambda: task.done() or botapi.webhook_url is not None, timeout=10)
    assert set(runtime.running) == EVERY_JOB
    stop.set()
    assert await asyncio.wait_for(task, 20) == 0
    assert runtime.running == []


def test_the_console_runs_the_same_jobs_after_each_turn(tg_settings: Any, qa_service: Any) -> None:
    app = build_test_app(tg_settings, qa_service)
    runtime, _deliverer = console_runtime(app, user_id=1)
    assert set(runtime.names) == EVERY_JOB
    runtime.tick_sync()
    assert {name: s.passes for name, s in runtime.states.items()} == dict.fromkeys(EVERY_JOB, 1)
    runtime.tick_sync()  # retention is not due again for ten minutes; the quick jobs are
    assert runtime.states["retention"].passes == 1
    assert runtime.states["outbox"].passes == runtime.states["notices"].passes == 2


async def test_the_back_office_runs_the_mail_and_data_jobs_while_it_serves(
    tg_settings: Any, qa_service: Any
) -> None:
    import httpx

    from bot.web.app import create_app
    from bot.web.followup import load_config

    app = build_test_app(tg_settings, qa_service)
    runtime = web_runtime(app.store, app.settings)
    web = create_app(app.settings, app.store, load_config(), background=runtime)
    async with web.router.lifespan_context(web):  # what uvicorn runs around serving
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://bo") as client:
            assert (await client.get("/connexion")).status_code == 200
        assert set(runtime.running) == set(MAIL_AND_DATA_JOBS)
    assert runtime.running == []


async def test_a_response_sent_while_the_bot_runs_is_emailed_and_the_user_told(
    start_bot: StartBot, botapi: BotApiServer
) -> None:
    with SmtpSink() as sink:
        bot = await start_bot(smtp_host="127.0.0.1", smtp_port=sink.port, smtp_security="none")
        chat = Chat(bot.app, user_id=4242)

        def respond() -> str:
            fill_to_review(chat, persona("lannion-msp"))
            return chat.press("Envoyer")

        done = await asyncio.to_thread(respond)
        assert "AMI-2026-0001" in done
        mails = await sink.wait_for(1, timeout=30)
        to_ars = [m for m in mails if "AMI-2026-0001" in str(m.message["Subject"])]
        assert to_ars and "ars-bretagne-secretariat-daspf@ars.sante.fr" in to_ars[0].recipients
        told = await botapi.wait_for(
            lambda: any(
                "transmise" in str(c.params.get("text", "")) and c.params.get("chat_id") == 4242
                for c in botapi.calls("sendMessage")
            ),
            timeout=15,
        )
        assert told


async def test_a_failing_job_is_logged_and_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("base indisponible")

    runtime = Runtime([Job("flaky", flaky, every=0.01)], max_backoff=0.05)
    with caplog.at_level(logging.ERROR, logger="bot.runtime"):
        await runtime.start()
        for _ in range(200):
            if runtime.states["flaky"].passes:
                break
            await asyncio.sleep(0.01)
        await runtime.stop()
    state = runtime.states["flaky"]
    assert state.failures == 2 and state.passes >= 1 and state.failing == 0
    assert state.last_error == "RuntimeError: base indisponible"
    failed = [r for r in caplog.records if "background job flaky failed" in r.getMessage()]
    assert len(failed) == 2 and all(r.exc_info for r in failed)


class Fatal(BaseException):
    """Escapes the pass's `except Exception`: the job's loop dies."""


async def test_a_job_whose_loop_dies_is_reported_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    async def dies_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise Fatal("boom")

    runtime = Runtime([Job("fragile", dies_once, every=0.01)], max_backoff=0.05)
    with caplog.at_level(logging.ERROR, logger="bot.runtime"):
        await runtime.start()
        for _ in range(300):
            if runtime.states["fragile"].passes:
                break
            await asyncio.sleep(0.01)
        assert runtime.running == ["fragile"]
        await runtime.stop()
    assert runtime.states["fragile"].restarts == 1
    assert any("fragile stopped unexpectedly" in r.getMessage() for r in caplog.records)


async def test_stopping_cancels_and_awaits_a_job_stuck_in_its_pass() -> None:
    entered = asyncio.Event()

    async def stuck() -> None:
        entered.set()
        await asyncio.sleep(3600)

    runtime = Runtime([Job("stuck", stuck, every=1.0)], stop_within=0.1)
    await runtime.start()
    tasks = list(runtime._tasks.values())
    await entered.wait()
    await runtime.stop()
    assert all(task.done() for task in tasks) and runtime.running == []
    others = [t for t in asyncio.all_tasks() if t.get_name().startswith("job:")]
    assert others == []


async def test_the_worker_command_runs_the_mail_and_data_jobs_and_stops_on_sigterm(
    tmp_path: Path, qa_service: Any
) -> None:
    """`python -m bot worker` as a child process: a queued response is e-mailed, then SIGTERM
    stops every job and the process exits 0, without a traceback."""
    database_url = f"sqlite:///{tmp_path / 'worker.sqlite3'}"
    with SmtpSink() as sink:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "WEBHOOK_"))}
        env.update(
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
            TELEGRAM_BOT_TOKEN="",
            DATABASE_URL=database_url,
            MAIL_FROM="bot-cpts@ops.example.org",
            ARS_MAILBOX=ARS,
            MAIL_OUTBOX_DIR=str(tmp_path / "outbox"),
            LOG_LEVEL="INFO",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(sink.port),
            SMTP_SECURITY="none",
        )
        migrate(env)
        app = build_test_app(make_settings(database_url, tmp_path), qa_service)
        chat = Chat(app, user_id=4343)
        fill_to_review(chat, persona("lannion-msp"))
        assert "AMI-2026-0001" in chat.press("Envoyer")  # queued: nothing runs the outbox here
        app.store.engine.dispose()

        log_path = tmp_path / "worker.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "worker"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                mails = await sink.wait_for(1, timeout=30)
                to_ars = [m for m in mails if "AMI-2026-0001" in str(m.message["Subject"])]
                assert to_ars and ARS in to_ars[0].recipients
                proc.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(proc.wait, 20)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
    log = log_path.read_text(encoding="utf-8", errors="replace")
    assert code == 0, log
    assert "Traceback" not in log, log
    started = next(line for line in log.splitlines() if "background jobs started" in line)
    assert {name.strip() for name in started.split("started:")[1].split(",")} == set(
        MAIL_AND_DATA_JOBS
    )
    assert "background jobs stopped" in log and "stopped cleanly" in log
