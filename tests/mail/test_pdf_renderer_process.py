"""The PDF renderer process never outlives the bot that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STARTS_RENDERER = """
import time
from bot.mail import pdfproc
pdfproc.warm()
deadline = time.monotonic() + 60
while not pdfproc._pool._processes and time.monotonic() < deadline:
    time.sleep(0.05)
print(next(iter(pdfproc._pool._processes)), flush=True)
time.sleep(120)
"""


def _is_running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_the_renderer_exits_when_the_bot_is_killed() -> None:
    bot = subprocess.Popen(
        [sys.executable, "-c", STARTS_RENDERER], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert bot.stdout is not None
        renderer = int(bot.stdout.readline())
        assert _is_running(renderer)
        os.kill(bot.pid, signal.SIGKILL)  # no shutdown, no atexit: the renderer is orphaned
        bot.wait()
        deadline = time.monotonic() + 15
        while _is_running(renderer) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _is_running(renderer), "the renderer outlived the bot"
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()
