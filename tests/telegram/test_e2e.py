"""Black box: `python -m bot run` as a subprocess against the Bot API emulator and an SMTP sink.

Walks /start → a question → the orientation guide → the whole AMI with a correction from the
review → the e-mail received by the ARS mailbox (aiosmtpd) → the "accepted" notice → SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from bot.config import ROOT
from tests.support.botapi import BotApiServer, BotMessage, UserHandle, free_port
from tests.telegram.conftest import BOT_USERNAME, TOKEN

pytestmark = pytest.mark.slow

ARS = "ars-test@example.org"


class Sink:
    """aiosmtpd handler keeping every message received."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, int]]:
    from aiosmtpd.controller import Controller

    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


class BotProcess:
    """`python -m bot run` with its environment, output in a log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, server: BotApiServer) -> None:
        out = self.log.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=self.env, cwd=self.log.parent,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out.close()
        before = len(server.calls("getupdates"))
        await server.wait_for(
            lambda: len(server.calls("getupdates")) > before or self.proc.returncode is not None,  # type: ignore[union-attr]
            timeout=30,
            describe=self.output,
        )
        assert self.proc.returncode is None, self.output()

    async def terminate(self, timeout: float = 20) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@contextlib.asynccontextmanager
async def bot_process(
    botapi: BotApiServer, smtp: tuple[Sink, int], tmp_path: Path, **settings: str
) -> AsyncIterator[BotProcess]:
    """The real `python -m bot run` on a migrated SQLite database of `tmp_path`, talking to the
    Bot API emulator and the SMTP sink; `settings` add or override environment variables."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "TELEGRAM_"))},
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": botapi.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp[1]),
        "SMTP_SECURITY": "none",
        "ARS_MAILBOX": ARS,
        "MAIL_FROM": "bot-cpts@example.org",
        "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        "LOG_LEVEL": "INFO",
        **settings,
    }
    migrate = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    proc = BotProcess(env, tmp_path / "bot.log")
    await proc.start(botapi)
    try:
        yield proc
    finally:
        if proc.proc is not None and proc.proc.returncode is None:
            proc.proc.kill()
            await proc.proc.wait()


@pytest.fixture
async def botproc(
    botapi: BotApiServer, smtp: tuple[Sink, int], tmp_path: Path
) -> AsyncIterator[BotProcess]:
    async with bot_process(botapi, smtp, tmp_path) as proc:
        yield proc


def _find(user: UserHandle, label: str) -> tuple[BotMessage, str]:
    """The latest bot message with a button whose label contains `label`."""
    for message in reversed(user.all_messages()):
        for text, data in (pair for row in message.keyboard for pair in row):
            if label.casefold() in text.casefold() and data is not None:
                return message, text
    shown = [m.buttons for m in user.all_messages() if m.buttons][-3:]
    raise AssertionError(f"no button containing {label!r}; last keyboards: {shown}")


async def press(user: UserHandle, label: str, edit: bool = False) -> list[BotMessage]:
    """Press a button (by part of its label); wait for the bot's new messages (or an edit)."""
    message, text = _find(user, label)
    edits = len(message.history) + len(message.markup_history)
    query = await user.press_in(message.message_id, text)
    await user.wait_for_callback_answer(query)
    if edit:
        await user.server.wait_for(
            lambda: len(message.history) + len(message.markup_history) > edits, timeout=10
        )
        return []
    return await say_wait(user)


async def say(user: UserHandle, text: str) -> list[BotMessage]:
    await user.send_text(text)
    return await say_wait(user)


async def say_wait(user: UserHandle) -> list[BotMessage]:
    first = await user.wait_for_message(timeout=10)
    return [first, *await user.wait_until_idle(quiet=0.3, timeout=10)]


def joined(messages: list[BotMessage]) -> str:
    return "\n".join(m.plain or "" for m in messages)


async def test_full_journey_through_the_real_entry_point(
    botapi: BotApiServer, botproc: BotProcess, smtp: tuple[Sink, int]
) -> None:
    sink, _ = smtp
    assert [c["command"] for c in botapi.commands()][:3] == ["start", "aide", "question"]
    user = botapi.user(4242, first_name="Paul")

    welcome = joined(await say(user, "/start"))
    assert welcome.startswith("Bonjour Paul !")

    answer = joined(await say(user, "Quelles sont les missions socles d'une CPTS ?"))
    assert "Source" in answer or "Réf." in answer

    # the orientation guide, first choice each time, up to its result
    text = joined(await say(user, "/orientation"))
    assert "ESP ou CPTS" in text
    for label in ("Nous réfléchissons", "B. La population", "A. Avec un médecin"):
        text = joined(await press(user, label))
    assert "Réf." in text or "CPTS" in text

    # the AMI, from the deep link, with a correction from the review
    text = joined(await say(user, "/start ami"))
    assert "AMI" in text
    await press(user, "J'accepte")
    await say(user, "Dr Paul Le Cam")
    await say(user, "médecin généraliste")
    await say(user, "Lannion")
    await press(user, "MSP")
    await press(user, "Non, continuer")
    await press(user, "Dr Paul Le Cam")  # the referent, suggested from the actors
    await say(user, "médecin, président de l'association de la MSP")
    await say(user, "paul.lecam@exemple.fr")
    text = joined(await say(user, "06 11 22 33 44"))
    await press(user, "Non, continuer")
    objectives, _ = _find(user, "Besoin d'informations")
    await press(user, "Besoin d'informations", edit=True)  # ☐ → ☑ in place
    await press(user, "Réflexion en cours", edit=True)
    assert [b[:1] for b in user.message(objectives.message_id).buttons[:3]] == ["☑", "☑", "☐"]
    await press(user, "Valider")
    await say(user, "La MSP accueille de nombreux patients sans médecin traitant <urgent> & cie.")
    understood = joined(await say(user, "Lannion-Trégor Communauté"))
    assert "J'ai reconnu : CA Lannion-Trégor Communauté — 57 communes" in understood
    await press(user, "Oui, c'est bien cela")
    review = joined(await say(user, "en janvier 2027"))
    assert "Récapitulatif" in review and "Lannion-Trégor Communauté" in review
    assert "<urgent> & cie." in review  # escaped for Telegram, shown as typed
    await press(user, "Territoire de projet")
    await say(user, "Communes de Lannion et Perros-Guirec")
    review = joined(await press(user, "Oui, c'est bien cela"))
    assert "Perros-Guirec" in review
    done = joined(await press(user, "Envoyer"))
    assert "AMI-" in done

    # the e-mail reaches the ARS mailbox; the user is told once the server accepted it
    await botapi.wait_for(lambda: sink.messages, timeout=20, describe=botproc.output)
    recipients, mail = sink.messages[0]
    assert recipients == [ARS]
    body = "\n".join(
        part.get_content() if hasattr(part, "get_content") else str(part.get_payload())
        for part in mail.walk()
        if part.get_content_type() == "text/plain"
    )
    assert "Perros-Guirec" in (body or mail.as_string())
    notice = await user.wait_for_message(timeout=20)
    assert "accept" in (notice.plain or "").lower() or "ARS" in (notice.plain or "")

    assert not [c for c in botapi.calls() if c.error and c.method != "answerCallbackQuery"]

    # in a group: only what is addressed to the bot, with an invitation to a private chat
    group = botapi.group(-100777, "CPTS du Trégor")
    await group.send_text(user, "Réunion jeudi à la MSP")
    await group.send_command(user, "start", "ami")
    [reply] = await group.wait_for_messages(1, timeout=10)
    assert f"https://t.me/{BOT_USERNAME}?start=ami" in (reply.plain or "")

    # SIGTERM while a burst of turns is under way: pending turns finish, exit code 0
    user.read()
    for i in range(15):
        await user.send_text(f"/x{i:02d}")
    await user.wait_for_message(timeout=10)
    assert await botproc.terminate() == 0
    log = botproc.output()
    assert "stopped cleanly" in log and "Traceback" not in log, log
    answered = len(user.unread()) + 1
    # what was fetched was answered; what was not is still waiting for the next start
    assert answered + len(botapi.pending_updates) >= 15
