"""Operating the real bot from the outside: subprocesses, a Bot API emulator, an SMTP sink.

Everything binds to 127.0.0.1 and every wait is bounded. Used by `tests/ops` and by
`benchmarks/load_bench.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.botapi import BotApiServer, BotMessage, UserHandle

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
TOKEN = "424242:OPS-TEST-TOKEN-abcdefghijklmnopqrstuvwxyz"
WEBHOOK_SECRET = "ops-secret-0123456789abcdef"
ARS = "ars-bretagne-secretariat-daspf@ars.sante.fr"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------- SMTP sink


@dataclass
class Received:
    """One message as the SMTP server accepted it."""

    message_id: str
    recipients: list[str]
    message: EmailMessage
    at: float

    def json_attachment(self) -> dict[str, Any] | None:
        for part in self.message.iter_attachments():
            if part.get_content_type() == "application/json":
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                return json.loads(payload.decode("utf-8"))  # type: ignore[no-any-return]
        return None

    def text_body(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        return body.get_content() if body is not None else ""  # type: ignore[no-any-return]


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        item = Received(
            str(message["Message-ID"] or ""), list(envelope.rcpt_tos), message, time.monotonic()
        )
        # A real MTA queues the message before it answers 250: what it has received counts,
        # whether or not the client is still there to read the 250.
        with self.sink.lock:
            self.sink.received.append(item)
        self.sink.data_in_flight.set()
        delay = self.sink.delay_before_250
        if delay:
            await asyncio.sleep(delay)
        return "250 Message accepted for delivery"


class SmtpSink:
    """An aiosmtpd server on loopback that keeps every message (optionally slow to say 250)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.delay_before_250 = 0.0
        self.data_in_flight = threading.Event()
        self.controller = Controller(_SinkHandler(self), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def message_ids(self) -> list[str]:
        return [m.message_id for m in self.messages()]

    async def wait_for(self, count: int, timeout: float) -> list[Received]:
        """Wait until at least `count` messages arrived (distinct Message-IDs)."""
        deadline = time.monotonic() + timeout
        while len(set(self.message_ids())) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(set(self.message_ids()))}/{count} e-mails after {timeout}s"
                )
            await asyncio.sleep(0.05)
        return self.messages()


# ---------------------------------------------------------------------------- Bot API


def update_chat(update: dict[str, Any]) -> int:
    """The chat (else the user) an update belongs to."""
    for kind, body in update.items():
        if kind == "update_id" or not isinstance(body, dict):
            continue
        message = body.get("message") if kind == "callback_query" else body
        chat = (message or {}).get("chat") or {}
        if "id" in chat:
            return int(chat["id"])
        sender = body.get("from") or {}
        if "id" in sender:
            return int(sender["id"])
    return 0


class OpsBotApi(BotApiServer):
    """The emulator, plus a per-chat event set whenever the bot sends or edits in that chat.

    `per_chat_sequential=True` delivers webhook updates the way Telegram's Bot API server
    does: at most one update of a given chat in flight at a time (the next one leaves when the
    previous POST got its 2xx), chats in parallel, each update to the load balancer's choice.
    """

    def __init__(self, *args: Any, per_chat_sequential: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chat_events: dict[int, asyncio.Event] = {}
        self.per_chat_sequential = per_chat_sequential
        self._chat_queues: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._chat_tasks: list[asyncio.Task[None]] = []
        self._chat_busy = 0

    async def stop(self) -> None:
        for task in self._chat_tasks:
            task.cancel()
        for task in self._chat_tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await super().stop()

    def is_idle(self) -> bool:
        queued = sum(q.qsize() for q in self._chat_queues.values())
        return super().is_idle() and queued == 0 and self._chat_busy == 0

    async def _dispatch_loop(self) -> None:
        if not self.per_chat_sequential:
            await super()._dispatch_loop()
            return
        while not self._closing:
            if self._webhook is None or not self._pending:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._updates_changed.wait(), 0.5)
                continue
            for update in self._take(len(self._pending), self._allowed_updates):
                self._pending.popleft()
                chat = update_chat(update)
                queue = self._chat_queues.get(chat)
                if queue is None:
                    queue = self._chat_queues[chat] = asyncio.Queue()
                    self._chat_tasks.append(asyncio.create_task(self._chat_loop(queue)))
                queue.put_nowait(update)

    async def _chat_loop(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while not self._closing:
            update = await queue.get()
            self._chat_busy += 1
            try:
                await self._deliver(self._choose_target(update), update)
            finally:
                self._chat_busy -= 1
                self._bump()

    def chat_event(self, chat_id: int) -> asyncio.Event:
        return self.chat_events.setdefault(chat_id, asyncio.Event())

    def _note_reply(self, chat_id: int, now: float) -> None:
        super()._note_reply(chat_id, now)
        event = self.chat_events.get(chat_id)
        if event is not None:
            event.set()


# ---------------------------------------------------------------------------- the bot process


def bot_env(
    database_url: str,
    api: BotApiServer,
    smtp: SmtpSink | None,
    tmp: Path,
    **extra: str,
) -> dict[str, str]:
    """The environment of `python -m bot …` for a test: loopback everything, no .env surprises."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "WEBHOOK_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_API_BASE_URL": api.base_url,
            "DATABASE_URL": database_url,
            "MAIL_FROM": "bot-cpts@ops.example.org",
            "ARS_MAILBOX": ARS,
            "MAIL_OUTBOX_DIR": str(tmp / "outbox"),
            "ARS_STAFF_IDS": "",
            "LOG_LEVEL": "INFO",
            "FLOOD_MESSAGES": "1000",
        }
    )
    if smtp is not None:
        env.update({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_SECURITY": "none"})
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    done = subprocess.run(
        [PYTHON, "-m", "bot", "migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@dataclass
class BotProcess:
    """`python -m bot run [--webhook]` as a child process, logging to a file."""

    env: dict[str, str]
    log_path: Path
    webhook: bool = False
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log: Any = field(default=None, repr=False)

    def start(self) -> BotProcess:
        self.starts += 1
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self._log.write(f"--- start {self.starts}\n".encode())
        self._log.flush()
        args = [PYTHON, "-m", "bot", "run"] + (["--webhook"] if self.webhook else [])
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the bot logs that it runs (polling started, or webhook registered)."""
        marker = f"--- start {self.starts}\n"
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            since = text[text.rfind(marker) :]
            if " running (" in since:
                return
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"bot exited with {self.proc.returncode}:\n{since[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"bot not ready after {timeout}s:\n{since[-3000:]}")
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no clean-up, no finally, exactly like a power cut for the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close_log()

    def terminate(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait (the bot finishes its turns and stops cleanly)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._close_log()
        return self.proc.returncode

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def peak_rss_kib(self) -> int:
        """VmHWM of the live process (peak resident set size), from /proc."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0


@contextlib.contextmanager
def processes() -> Iterator[list[BotProcess]]:
    """Whatever is appended is killed at the end, whatever happened."""
    started: list[BotProcess] = []
    try:
        yield started
    finally:
        for bot in started:
            bot.kill()


# ---------------------------------------------------------------------------- scripted users


def letters(n: int, width: int = 3) -> str:
    """1 → 'Aab': a name part made of letters only (names refuse digits)."""
    out = ""
    for _ in range(width):
        n, r = divmod(n, 26)
        out = chr(ord("a") + r) + out
    return out.capitalize()


def persona(n: int) -> dict[str, str]:
    """A respondent whose every field carries its number, so that mixed data shows."""
    tag = letters(n)
    return {
        "actor": f"Dr Yann Ker{tag.lower()}",
        "profession": "médecin généraliste",
        "commune": "Lannion",
        "referent": f"Maela Le {tag}",
        "function": "coordinatrice de la MSP",
        "email": f"referent{n}@example.org",
        "phone": f"0612{n:06d}",
        "context": f"Projet {tag} : patients sans médecin traitant dans le secteur.",
        "territory": f"Territoire {tag}",
        "calendar": "avant fin février",
    }


@dataclass(frozen=True)
class Step:
    """One user action and the bot's output that shows the turn is done."""

    kind: str  # "text" or "press"
    value: str
    expect: str  # fragment of a message text or button label
    field: str = ""  # the draft field this answer fills (for crash checks)
    edit: bool = False  # the answer edits the previous message in place


def ami_steps(p: dict[str, str]) -> list[Step]:
    """A full AMI response, as a user goes through it with the buttons."""
    return [
        Step("text", "/ami", "Avant de commencer"),
        Step("press", "J'accepte", "1/6"),
        Step("text", p["actor"], "Quelle est la profession", "actor"),
        Step("text", p["profession"], "Dans quelle commune", "profession"),
        Step("text", p["commune"], "exercice coordonné", "commune"),
        Step("press", "MSP", "Ajouter un acteur", "practice"),
        Step("press", "Non, continuer", "2/6"),
        Step("text", p["referent"], "Quelle est la fonction", "referent"),
        Step("text", p["function"], "adresse e-mail", "function"),
        Step("text", p["email"], "numéro de téléphone", "email"),
        Step("text", p["phone"], "Ajouter un référent", "phone"),
        Step("press", "Non, continuer", "3/6"),
        Step("press", "Besoin d'informations", "☑ Besoin", "objectives", edit=True),
        Step("press", "Valider", "4/6"),
        Step("text", p["context"], "5/6", "context"),
        Step("text", p["territory"], "6/6", "territory"),
        Step("text", p["calendar"], "Vérifiez votre réponse", "calendar"),
        Step("press", "Envoyer", "enregistrée sous la référence"),
    ]


def _shows(message: BotMessage, fragment: str) -> bool:
    if fragment in (message.plain or ""):
        return True
    return any(fragment in label for label in message.buttons)


def button_label(user: UserHandle, fragment: str) -> str:
    """The full label of the newest button containing `fragment` (labels carry emoji)."""
    for message in reversed(user.all_messages()):
        if message.deleted:
            continue
        for label in message.buttons:
            if fragment in label:
                return label
    shown = [m.buttons for m in user.all_messages()[-3:]]
    raise AssertionError(f"user {user.user_id}: no button {fragment!r}; {shown}")


async def act(user: UserHandle, step: Step) -> None:
    if step.kind == "press":
        await user.press(button_label(user, step.value))
    else:
        await user.send_text(step.value)


async def wait_shown(
    api: OpsBotApi, user: UserHandle, fragment: str, since: int, timeout: float
) -> BotMessage:
    """Wait until a bot message at index ≥ `since` in the chat shows `fragment`."""
    event = api.chat_event(user.chat_id)
    deadline = time.monotonic() + timeout
    while True:
        event.clear()
        for message in user.all_messages()[max(since, 0) :]:
            if not message.deleted and _shows(message, fragment):
                return message
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            tail = [m.plain[:80] for m in user.all_messages()[-4:]]
            raise AssertionError(f"user {user.user_id}: no {fragment!r} in {timeout}s; {tail}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), min(remaining, 0.5))


async def do_step(api: OpsBotApi, user: UserHandle, step: Step, timeout: float = 20.0) -> float:
    """Act and wait for the bot's answer to it; returns the turn's latency in seconds."""
    mark = len(user.all_messages()) - (1 if step.edit else 0)
    started = time.perf_counter()
    await act(user, step)
    await wait_shown(api, user, step.expect, mark, timeout)
    return time.perf_counter() - started


async def complete_ami(
    api: OpsBotApi, user: UserHandle, p: dict[str, str], timeout: float = 20.0
) -> list[float]:
    """One whole AMI response; returns the latency of each turn."""
    return [await do_step(api, user, step, timeout) for step in ami_steps(p)]


def draft_answers(store: Any, user_id: int) -> dict[str, Any]:
    conv = store.get_conversation(user_id)
    if conv is None:
        return {}
    return dict((conv.data.get("ami_bretagne") or {}).get("answers") or {})


def submission_matches(answers: dict[str, Any], p: dict[str, str]) -> bool:
    """The stored (or mailed) answers are exactly this persona's."""
    actors = answers.get("actors") or []
    referents = answers.get("referents") or []
    return (
        len(actors) == 1
        and actors[0]["name"] == p["actor"]
        and actors[0]["profession"] == p["profession"]
        and actors[0]["commune"] == p["commune"]
        and actors[0]["practice"] == "MSP"
        and len(referents) == 1
        and referents[0]["name"] == p["referent"]
        and referents[0]["function"] == p["function"]
        and referents[0]["email"] == p["email"]
        and referents[0]["phone"] == "+33" + p["phone"][1:]
        and answers.get("objectives") == ["information"]
        and answers.get("context") == p["context"]
        and answers.get("territory") == p["territory"]
        and (answers.get("calendar") or {}).get("text") == p["calendar"]
    )


def answers_of(received: Received) -> dict[str, Any]:
    """The answers carried by the JSON attachment of an e-mail."""
    data = received.json_attachment()
    assert data is not None, f"no JSON attachment in {received.message_id}"
    return dict(data["answers"])


def _first(items: Any) -> dict[str, Any]:
    return items[0] if items else {}


def answer_in_draft(answers: dict[str, Any], field_name: str, p: dict[str, str]) -> bool:
    """Whether the draft holds this persona's answer for one field of `ami_steps`."""
    actor = _first(answers.get("actors"))
    referent = _first(answers.get("referents"))
    checks = {
        "actor": lambda: actor.get("name") == p["actor"],
        "profession": lambda: actor.get("profession") == p["profession"],
        "commune": lambda: actor.get("commune") == p["commune"],
        "practice": lambda: actor.get("practice") == "MSP",
        "referent": lambda: referent.get("name") == p["referent"],
        "function": lambda: referent.get("function") == p["function"],
        "email": lambda: referent.get("email") == p["email"],
        "phone": lambda: referent.get("phone") == "+33" + p["phone"][1:],
        "objectives": lambda: answers.get("objectives") == ["information"],
        "context": lambda: answers.get("context") == p["context"],
        "territory": lambda: answers.get("territory") == p["territory"],
        "calendar": lambda: (answers.get("calendar") or {}).get("text") == p["calendar"],
    }
    return bool(checks[field_name]())


async def resume_position(api: OpsBotApi, user: UserHandle, steps: list[Step]) -> int:
    """Send /reprendre and return the index of the last step the bot has applied."""
    since = len(user.all_messages())
    await user.send_text("/reprendre")
    await wait_shown(api, user, "Reprenons", since, 20)
    await user.wait_until_idle(quiet=0.3, timeout=10)
    shown = user.all_messages()[since:]
    applied = [
        index
        for index, step in enumerate(steps)
        if any(not m.deleted and _shows(m, step.expect) for m in shown[1:])
    ]
    assert applied, [m.plain[:80] for m in shown]
    return max(applied)
