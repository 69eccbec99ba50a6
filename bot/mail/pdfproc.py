"""The PDF fiche rendered outside the bot's threads: in a separate process, once per response.

fpdf2 is pure Python: 100–300 ms of CPU holding the GIL per fiche. Rendered in a turn's thread
(the chat's copy) or in the outbox worker's thread (the ARS e-mail's), it delayed every other
user's turn by that much. Here a single renderer process (spawned, so it inherits no lock or
connection of the bot) does the work; the calling thread only waits, without the GIL. The bytes
of the last responses are kept, so the chat's PDF and the ARS e-mail's are rendered once.
Any failure of the process falls back to rendering in the calling thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import threading
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.storage.models import Submission

if TYPE_CHECKING:
    from bot.forms.spec import FormSpec

log = logging.getLogger(__name__)

CACHE_SIZE = 64
TIMEOUT = 120.0
PARENT_POLL = 1.0  # seconds between the renderer's checks that the bot is still there

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_cache: OrderedDict[str, bytes] = OrderedDict()


def _data(submission: Submission) -> dict[str, Any]:
    from bot.mail.fiche import form_spec

    path = form_spec(submission.form_id).path
    return {
        "form_path": str(path) if path is not None else None,  # the very file the bot runs
        "id": submission.id,
        "reference": submission.reference,
        "user_id": submission.user_id,
        "form_id": submission.form_id,
        "recipient": submission.recipient,
        "answers": submission.answers,
        "created_at": submission.created_at,
    }


def _render_data(data: dict[str, Any]) -> bytes:
    """In the renderer process: the response's form is read from the file the bot read."""
    from bot.mail.pdf import render_fiche_pdf

    data = dict(data)
    path = data.pop("form_path", None)
    if path:
        from bot.mail.fiche import register_forms

        register_forms([_load_form(path)])
    return render_fiche_pdf(Submission(**data))


@lru_cache(maxsize=16)
def _load_form(path: str) -> FormSpec:
    from bot.forms.spec import FormSpec

    return FormSpec.load(Path(path))


def _exit_with(parent: int) -> None:
    """In the renderer process: exit as soon as the bot that started it is gone (killed, or
    crashed without shutting the pool down); an orphaned renderer would otherwise live on,
    holding its memory, until the machine is rebooted."""
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _start(parent: int) -> None:
    """The renderer process's initializer: watch the parent, then warm up."""
    _exit_with(parent)
    _warm()


def _warm() -> None:
    """In the renderer process, at start: lowest CPU priority (background work: on a busy
    machine the bot's turns go first), import fpdf2 and read the fonts once."""
    import contextlib
    import os

    with contextlib.suppress(OSError, AttributeError):
        os.nice(19)
    from bot.mail.pdf import _font_charset

    _font_charset()


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=(os.getpid(),),
            )
        return _pool


def _reset_pool() -> None:
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def warm() -> None:
    """Start the renderer process ahead of the first response (the bot calls it at start)."""
    try:
        _get_pool().submit(_warm)
    except (OSError, RuntimeError, BrokenProcessPool):
        log.warning("PDF renderer process unavailable: fiches will be rendered in-process")


def shutdown() -> None:
    _reset_pool()


def _key(submission: Submission) -> str:
    """What the PDF is made of, hashed: a reused id or reference never returns another's PDF."""
    raw = json.dumps(
        [submission.reference, submission.form_id, submission.answers, str(submission.created_at)],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(raw.encode()).hexdigest()


def render_pdf(submission: Submission) -> bytes:
    """The fiche's PDF bytes, rendered in the renderer process (blocking the caller only)."""
    key = _key(submission)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    try:
        content = _get_pool().submit(_render_data, _data(submission)).result(timeout=TIMEOUT)
    except (BrokenProcessPool, OSError, RuntimeError, TimeoutError) as exc:
        log.warning("PDF renderer process failed (%s): rendering in-process", type(exc).__name__)
        _reset_pool()
        from bot.mail.pdf import render_fiche_pdf

        content = render_fiche_pdf(submission)
    with _lock:
        _cache[key] = content
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return content
