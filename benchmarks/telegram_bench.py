"""Telegram front end throughput and latency through the loopback Bot API emulator.

`python -m benchmarks.telegram_bench [--users 20] [--rounds 1]`

Two bots are measured in the same run, against the same emulator, with the same closed-loop
load (each simulated user sends a message, waits for the bot's answer, sends the next one).
Each bot runs in its own process, as in production (the emulator and the simulated users
share this one):

* **echo** — the bare PTB echo bot, `python -m tests.support.echo_bot` (the baseline), with
  PTB's default HTTP client (httpx), and again with the bot's own backend (aiohttp), so that
  the cost of the dialogue itself shows apart from the choice of HTTP client;
* **full turns** — the real entry point `python -m bot run`, adapter and engine:
  a question answered from the texts, then the AMI form step by step (consent, actor, referent,
  objectives toggled in place, context, territory, calendar, review), every turn committed to
  SQLite, "✔" edits of pressed messages included.

Printed: updates per second, latency from the update being available to the bot's first reply
(p50/p95, measured by the emulator) and to the turn's completion (the new prompt; p50/p95),
the bot process's CPU time per update (Linux), and the ratio of throughputs (bar: full turns ≥ 0.5 × echo). Both run without PTB's
AIORateLimiter (`TELEGRAM_RATE_LIMIT=false`): Telegram's own limits (30 messages/s overall)
are not the adapter's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.botapi import BotApiServer, UserHandle

TOKEN = "123456:BENCH-TOKEN"
Step = tuple[str, str, str]  # (kind: say|press|toggle, text or label, expected)

QUESTIONS = [
    "Quelles sont les missions socles d'une CPTS ?",
    "Combien de professionnels faut-il pour une ESP ?",
    "Comment est financée une CPTS ?",
    "ESP ou CPTS pour une MSP ?",
]


def form_script(n: int) -> list[Step]:
    """One user's dialogue: a question, then the AMI up to its review (20 turns)."""
    return [
        ("say", QUESTIONS[n % len(QUESTIONS)], ""),
        ("say", "/ami", ""),
        ("press", "J'accepte", ""),
        ("say", f"Dr Nom{n} Le Cam", ""),
        ("say", "médecin généraliste", ""),
        ("say", "Lannion", ""),
        ("press", "MSP", ""),
        ("press", "Non, continuer", ""),
        ("press", f"Dr Nom{n} Le Cam", ""),
        ("say", "président de l'association de la MSP", ""),
        ("say", f"nom{n}@exemple.fr", ""),
        ("say", "06 11 22 33 44", ""),
        ("press", "Non, continuer", ""),
        ("toggle", "Besoin d'informations", ""),
        ("toggle", "Réflexion en cours", ""),
        ("press", "Valider", ""),
        ("say", "Nous voulons organiser l'accès aux soins non programmés sur le territoire.", ""),
        ("say", "Lannion-Trégor Communauté", ""),
        ("press", "Oui, c'est bien cela", ""),  # the recognised territory, confirmed
        ("say", "en janvier 2027", "Récapitulatif"),
    ]


def echo_script(n: int) -> list[Step]:
    return [("say", f"message {i} de l'utilisateur {n}", "") for i in range(20)]


@dataclass
class Result:
    name: str
    updates: int
    seconds: float
    first_reply: dict[str, float]
    completion: list[float] = field(default_factory=list)
    cpu: float = float("nan")  # seconds of CPU used by the bot process during the measure

    @property
    def rate(self) -> float:
        return self.updates / self.seconds

    def line(self) -> str:
        done = sorted(self.completion)
        return (
            f"{self.name:<11} {self.updates:5d} updates in {self.seconds:6.2f} s = "
            f"{self.rate:7.1f} updates/s | first reply p50 {self.first_reply['p50'] * 1000:6.1f} ms "
            f"p95 {self.first_reply['p95'] * 1000:6.1f} ms | turn done p50 "
            f"{_pct(done, 0.5) * 1000:6.1f} ms p95 {_pct(done, 0.95) * 1000:6.1f} ms | "
            f"CPU {self.cpu * 1000 / max(1, self.updates):5.2f} ms/update"
        )


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def _progress(user: UserHandle, kind: str, echo: bool) -> int:
    """Grows when a step is complete: a new message (echo), an edit (toggle), or a new prompt
    (the latest message carrying buttons: pressed messages lose theirs)."""
    messages = user.all_messages()
    if echo:
        return len(messages)
    if kind == "toggle":
        return sum(len(m.history) + len(m.markup_history) for m in messages)
    return max((m.message_id for m in messages if m.buttons), default=0)


async def _press(user: UserHandle, label: str) -> None:
    for message in reversed(user.all_messages()):
        for text, data in (pair for row in message.keyboard for pair in row):
            if label.casefold() in text.casefold() and data is not None:
                await user.press_in(message.message_id, text)
                return
    raise AssertionError(f"no button {label!r} for user {user.user_id}")


async def _walk(
    server: BotApiServer, user: UserHandle, steps: list[Step], echo: bool, out: list[float]
) -> None:
    """Closed loop: one step, wait for its completion, next step."""
    for kind, text, expected in steps:
        before = _progress(user, kind, echo)
        started = time.perf_counter()
        if kind == "say":
            await user.send_text(text)
        else:
            await _press(user, text)
        await server.wait_for(lambda b=before, k=kind: _progress(user, k, echo) > b, timeout=30)
        out.append(time.perf_counter() - started)
        if expected:
            last = user.all_messages()[-1].plain or ""
            assert expected in "\n".join(m.plain or "" for m in user.all_messages()[-3:]), last


async def _measure(
    name: str,
    server: BotApiServer,
    run: Callable[[], Any],
    script: Callable[[int], list[Step]],
    users: int,
    first_id: int,
    echo: bool,
) -> Result:
    async with run() as bot:
        handles = [server.user(first_id + n, first_name=f"U{n}") for n in range(users)]
        warm = server.user(first_id - 1, first_name="Warm")
        await _walk(server, warm, script(0)[:3], echo, [])  # warm-up (imports, caches)
        server.reset_latencies()
        completion: list[float] = []
        updates_before = _user_updates(server)
        cpu_before = bot.cpu()
        started = time.perf_counter()
        await asyncio.gather(
            *(_walk(server, h, script(n + 1), echo, completion) for n, h in enumerate(handles))
        )
        seconds = time.perf_counter() - started
        cpu = bot.cpu() - cpu_before
        updates = _user_updates(server) - updates_before
        return Result(name, updates, seconds, server.latency_stats(), completion, cpu)


def _user_updates(server: BotApiServer) -> int:
    return len(server._update_times)


class _Bot:
    """The bot's process, for its CPU time (Linux /proc; NaN elsewhere)."""

    def __init__(self, proc: subprocess.Popen[bytes], profiled: bool) -> None:
        self.proc = proc
        self.profiled = profiled  # the process is the profiler: count its children only

    def cpu(self) -> float:
        pids = _children(self.proc.pid) if self.profiled else [self.proc.pid]
        try:
            total = 0
            for pid in pids:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
            return total / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return float("nan")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@asynccontextmanager
async def _subprocess(
    args: list[str], env: dict[str, str], profile: bool = False
) -> AsyncIterator[_Bot]:
    """Run a bot in its own process (as in production) for the block; stop it with SIGTERM.

    With BENCH_PROFILE set to a profiler command (e.g. "py-spy record -o prof.txt -f raw --"),
    the full bot runs under it and is stopped with SIGINT so the profiler writes its output.
    """
    prefix = os.environ.get("BENCH_PROFILE", "").split() if profile else []
    proc = subprocess.Popen(
        [*prefix, sys.executable, *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield _Bot(proc, bool(prefix))
    finally:
        proc.send_signal(signal.SIGINT if prefix else signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def main_async(users: int, rounds: int) -> int:
    logging.basicConfig(level=logging.WARNING)
    results: list[tuple[Result, Result, Result]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            echoes = []
            for name, http in (("echo", "httpx"), ("echo/aiohttp", "aiohttp")):
                async with BotApiServer(token=TOKEN, bot_username="bench_bot") as server:
                    env = {
                        "TELEGRAM_BOT_TOKEN": TOKEN,
                        "TELEGRAM_API_BASE_URL": server.base_url,
                        "ECHO_CONCURRENT_UPDATES": "256",
                        "ECHO_HTTP": http,
                    }
                    echoes.append(
                        await _measure(
                            name,
                            server,
                            lambda env=env: _subprocess(["-m", "tests.support.echo_bot"], env),
                            echo_script,
                            users,
                            10_000,
                            True,
                        )
                    )
            echo, echo_aiohttp = echoes
            async with BotApiServer(token=TOKEN, bot_username="bench_bot") as server:
                db = f"sqlite:///{Path(tmp) / f'bench{r}.sqlite3'}"
                env = {
                    "TELEGRAM_BOT_TOKEN": TOKEN,
                    "TELEGRAM_API_BASE_URL": server.base_url,
                    "TELEGRAM_RATE_LIMIT": "false",  # like the echo bot: the emulator has no limits
                    "DATABASE_URL": db,
                    "MAIL_OUTBOX_DIR": str(Path(tmp) / "outbox"),
                    "FLOOD_MESSAGES": "1000",
                    "LOG_LEVEL": "WARNING",
                }
                subprocess.run(
                    [sys.executable, "-m", "bot", "migrate"],
                    env={**os.environ, **env},
                    check=True,
                    capture_output=True,
                )
                full = await _measure(
                    "full turns",
                    server,
                    lambda env=env: _subprocess(["-m", "bot", "run"], env, profile=True),
                    form_script,
                    users,
                    20_000,
                    False,
                )
            results.append((echo, echo_aiohttp, full))
    print(f"Telegram front end, {users} users in closed loop, loopback Bot API emulator")
    print("(each bot in its own process, as in production; the emulator and users in this one)")
    for echo, echo_aiohttp, full in results:
        print(echo.line())
        print(echo_aiohttp.line())
        print(full.line())
    ratio = statistics.median(full.rate / echo.rate for echo, _, full in results)
    same = statistics.median(full.rate / aio.rate for _, aio, full in results)
    verdict = "OK" if ratio >= 0.5 else "BELOW the bar"
    print(f"ratio full turns / bare echo (PTB's default httpx): {ratio:.2f} (bar 0.50: {verdict})")
    print(f"ratio full turns / echo on the bot's own HTTP backend (aiohttp): {same:.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    return asyncio.run(main_async(max(1, min(args.users, 200)), max(1, min(args.rounds, 5))))


if __name__ == "__main__":
    sys.exit(main())
