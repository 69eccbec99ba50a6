"""Per-user ordering and flood control for concurrently processed Telegram updates.

PTB processes updates concurrently (`concurrent_updates`); `UserGate` makes each user's updates
run one at a time, in arrival order, while different users proceed in parallel. A user sending
more than `flood_messages` within `flood_seconds` gets one polite notice per window, and the
excess is processed late, in order, at most `flood_messages / flood_seconds` turns per second
(so the flood never eats the shared budget: engine threads, database, outgoing rate limit).
Beyond `max_backlog` waiting updates, further ones are dropped (logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

log = logging.getLogger(__name__)


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    arrivals: deque[float] = field(default_factory=deque)
    pending: int = 0
    notified_at: float = float("-inf")
    next_start: float = 0.0


class UserGate:
    """One FIFO lane per user, with flood detection and a bounded backlog."""

    def __init__(
        self,
        flood_messages: int,
        flood_seconds: float,
        *,
        max_backlog: int | None = None,
        on_flood: Callable[[int], Awaitable[None]] | None = None,
        on_drop: Callable[[Any], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.flood_messages = max(1, flood_messages)
        self.flood_seconds = max(0.001, flood_seconds)
        self.max_backlog = max_backlog if max_backlog is not None else 3 * self.flood_messages
        self.on_flood = on_flood
        self.on_drop = on_drop
        self.clock = clock
        self.dropped = 0
        self.flood_notices = 0
        self._slots: dict[int, _Slot] = {}
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def _slot(self, key: int) -> _Slot:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        return slot

    def lock(self, key: int) -> asyncio.Lock:
        """The user's lane lock (notices take it too, so they never interleave with a turn)."""
        return self._slot(key).lock

    def stop_throttling(self) -> None:
        """At shutdown: run what is queued without waiting (pending turns are finished fast)."""
        self._stopping.set()

    async def run(self, key: int, coroutine: Awaitable[Any], update: Any = None) -> None:
        """Run `coroutine` in the user's lane, after their earlier updates."""
        slot = self._slot(key)
        now = self.clock()
        window = slot.arrivals
        window.append(now)
        while window and window[0] <= now - self.flood_seconds:
            window.popleft()
        flooding = len(window) > self.flood_messages
        if flooding and slot.pending >= self.max_backlog:
            self.dropped += 1
            log.warning("flood: update from user %s dropped (%d waiting)", key, slot.pending)
            if hasattr(coroutine, "close"):
                coroutine.close()  # type: ignore[union-attr]
            if self.on_drop is not None:
                self.spawn(self.on_drop(update))
            return
        if flooding and now - slot.notified_at >= self.flood_seconds:
            slot.notified_at = now
            self.flood_notices += 1
            log.info(
                "flood: user %s sent %d updates in %.0f s", key, len(window), self.flood_seconds
            )
            if self.on_flood is not None:
                self.spawn(self.on_flood(key))
        slot.pending += 1
        try:
            async with slot.lock:
                if flooding:
                    await self._throttle(slot)
                await coroutine
        finally:
            slot.pending -= 1
            self._forget(key, slot)

    async def _throttle(self, slot: _Slot) -> None:
        interval = self.flood_seconds / self.flood_messages
        now = self.clock()
        start = max(now, slot.next_start)
        slot.next_start = start + interval
        if start > now and not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=start - now)

    def _forget(self, key: int, slot: _Slot) -> None:
        """Drop an idle lane whose flood window has expired (keeps memory bounded)."""
        if slot.pending or slot.lock.locked():
            return
        if slot.arrivals and slot.arrivals[-1] > self.clock() - self.flood_seconds:
            return
        self._slots.pop(key, None)

    def sweep(self) -> None:
        """Forget every idle lane (called periodically)."""
        for key, slot in list(self._slots.items()):
            self._forget(key, slot)

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run a coroutine in the background, keeping a reference until it ends."""
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[assignment]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def lanes(self) -> int:
        return len(self._slots)


def update_user_id(update: object) -> int | None:
    """Whose lane an update belongs to: the user, else the chat."""
    if not isinstance(update, Update):
        return None
    if update.effective_user is not None:
        return update.effective_user.id
    if update.effective_chat is not None:
        return update.effective_chat.id
    return None


class PerUserUpdateProcessor(BaseUpdateProcessor):
    """PTB update processor: concurrent across users, ordered per user (through `UserGate`).

    `before` runs for every update as soon as it arrives, outside the lane (used to answer
    callback queries at once so that no button keeps spinning while earlier turns run).
    """

    def __init__(
        self,
        gate: UserGate,
        max_concurrent_updates: int = 4096,
        before: Callable[[object], None] | None = None,
        after: Callable[[object], None] | None = None,
    ) -> None:
        super().__init__(max_concurrent_updates)
        self.gate = gate
        self.before = before
        self.after = after

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if self.before is not None:
            try:
                self.before(update)
            except Exception:
                log.exception("pre-processing of an update failed")
        key = update_user_id(update)
        try:
            if key is None:
                await coroutine
            else:
                await self.gate.run(key, coroutine, update)
        finally:
            if self.after is not None:
                self.after(update)

    async def initialize(self) -> None:
        """Nothing to allocate."""

    async def shutdown(self) -> None:
        """Let queued turns run without throttling."""
        self.gate.stop_throttling()
