"""Other users' turn latency while responses are submitted (PDF fiche and ARS e-mail rendered).

    .venv/bin/python -m benchmarks.submit_bench [--submissions 20] [--others 6] [--rounds 3]

As in the Telegram bot: turns run on a pool of 8 threads (a submission's PDF fiche is waited
for outside that pool, as the adapter does), the outbox worker on an asyncio loop in its own
thread (`.eml` files: the rendering is the cost, not SMTP). `--others` users walk the
AMI form continuously (a turn every 20 ms each). Phase A measures their turn latency with no
submission; phase B the same while `--submissions` users press « Envoyer » within one second
(each submission renders the PDF for the chat, and the worker renders the ARS e-mail with its
PDF). A and B alternate for `--rounds` rounds; latencies are pooled per phase. The goal:
phase B's p99 at most twice phase A's. Wall time and CPU time (this process
and the PDF renderer processes) are reported side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.form_bench import SCRIPT, SilentQA, run_user
from bot.config import DIALOGUES_DIR, Settings
from bot.engine.engine import DialogueEngine
from bot.engine.messages import Incoming, Kind
from bot.forms.ports import FormPorts
from bot.forms.runner import load_flows
from bot.mail.submission import MailSubmissions
from bot.privacy import notice_values
from bot.storage.models import OutboxStatus
from bot.storage.store import Store
from bot.worker import OutboxWorker

TURN_THREADS = 8
THINK = 0.02  # seconds between two turns of one "other" user


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def children_cpu() -> float:
    """CPU seconds of this process's live children (the PDF renderer), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:  # ppid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Others:
    """Users walking the form in a loop; each turn's latency is recorded."""

    def __init__(self, engine: DialogueEngine, pool: ThreadPoolExecutor, count: int) -> None:
        self.engine = engine
        self.pool = pool
        self.count = count
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.next_user = 1_000_000
        self.lock = threading.Lock()

    def _user(self) -> int:
        with self.lock:
            self.next_user += 1
            return self.next_user

    def _loop(self) -> None:
        while not self.stop.is_set():
            user = self._user()
            replies: list = []
            for line in SCRIPT[:-1]:
                if self.stop.is_set():
                    return
                if line.startswith("/"):
                    incoming = Incoming(user, Kind.COMMAND, line[1:])
                elif line.startswith("#"):
                    wanted = line[1:].casefold()
                    payload = next(
                        b.payload
                        for r in replies
                        for row in r.buttons
                        for b in row
                        if wanted in b.label.casefold()
                    )
                    incoming = Incoming(user, Kind.CHOICE, payload)
                else:
                    incoming = Incoming(user, Kind.TEXT, line)
                began = time.perf_counter()
                replies = self.pool.submit(self.engine.handle, incoming).result()
                self.latencies.append(time.perf_counter() - began)
                time.sleep(THINK)

    def run(self, seconds: float, during: threading.Event | None = None) -> list[float]:
        self.latencies = []
        self.stop.clear()
        threads = [threading.Thread(target=self._loop) for _ in range(self.count)]
        for t in threads:
            t.start()
        if during is None:
            time.sleep(seconds)
        else:
            during.wait()
        self.stop.set()
        for t in threads:
            t.join()
        return list(self.latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--others", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each A phase")
    parser.add_argument("--rounds", type=int, default=3, help="alternating A/B rounds, pooled")
    parser.add_argument(
        "--in-thread",
        action="store_true",
        help="the old way, for comparison: PDFs rendered in the turn's and the worker's threads",
    )
    args = parser.parse_args()
    if args.in_thread:
        import bot.mail.pdfproc
        import bot.mail.render
        from bot.mail.pdf import render_fiche_pdf

        bot.mail.pdfproc.render_pdf = render_fiche_pdf  # type: ignore[assignment]
        bot.mail.render.render_pdf = render_fiche_pdf  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite:///{Path(tmp) / 'bench.sqlite3'}",  # type: ignore[call-arg]
            mail_outbox_dir=Path(tmp) / "outbox",
            smtp_host="",
            submissions_per_day=1000,
        )
        clock = lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # noqa: E731
        store = Store.from_url(settings.database_url, clock)
        store.create_all()
        engine = DialogueEngine(store=store, qa=SilentQA(), settings=settings, clock=clock)  # type: ignore[arg-type]
        ports = FormPorts(
            submissions=MailSubmissions(store), notice_values=lambda: notice_values(settings)
        )
        engine.flows.update(load_flows(DIALOGUES_DIR, ports))
        import dateparser  # noqa: F401  (warm the lazy import)

        pool = ThreadPoolExecutor(TURN_THREADS, thread_name_prefix="turn")
        run_user(engine, 1, [])  # warm-up, including one submission and its PDF
        loop = asyncio.new_event_loop()
        stop_worker = asyncio.Event()
        worker = OutboxWorker(store, settings, poll_seconds=0.2)
        worker_thread = threading.Thread(
            target=loop.run_until_complete, args=(worker.run(stop_worker),), daemon=True
        )
        worker_thread.start()

        def drained() -> bool:
            return not store.jobs(OutboxStatus.PENDING)

        while not drained():
            time.sleep(0.1)
        others = Others(engine, pool, args.others)
        waiters = ThreadPoolExecutor(TURN_THREADS, thread_name_prefix="wait")

        def ready_to_send(first_user: int) -> list[Incoming]:
            """Users waiting at the review, ready to press « Envoyer »."""
            sends = []
            for user in range(first_user, first_user + args.submissions):
                run_user(engine, user, [], SCRIPT[:-1])
                replies = engine.handle(Incoming(user, Kind.COMMAND, "reprendre"))
                payload = next(
                    b.payload
                    for r in replies
                    for row in r.buttons
                    for b in row
                    if "Envoyer" in b.label
                )
                sends.append(Incoming(user, Kind.CHOICE, payload))
            return sends

        def submitted(incoming: Incoming) -> list:
            # as the Telegram adapter: the turn on the turn threads, the PDF fiche rendered
            # (by the renderer process) and waited for elsewhere
            if args.in_thread:
                return pool.submit(engine.handle, incoming).result()
            replies = pool.submit(engine.handle, incoming, False).result()
            return [engine.render_document(r) for r in replies]

        quiet: list[float] = []
        busy: list[float] = []
        submit_latency: list[float] = []
        totals = {"A": [0.0, 0.0, 0.0], "B": [0.0, 0.0, 0.0]}  # wall, cpu, children cpu
        for round_ in range(args.rounds):
            sends = ready_to_send(10_000 * (round_ + 1))
            cpu0, child0, wall0 = time.process_time(), children_cpu(), time.perf_counter()
            quiet += others.run(args.seconds)
            for i, v in enumerate(
                (time.perf_counter() - wall0, time.process_time() - cpu0, children_cpu() - child0)
            ):
                totals["A"][i] += v

            done = threading.Event()

            def submit_all(sends: list[Incoming] = sends, done: threading.Event = done) -> None:
                time.sleep(0.5)
                futures = []
                for incoming in sends:
                    began = time.perf_counter()
                    futures.append((began, waiters.submit(submitted, incoming)))
                    time.sleep(1.0 / len(sends))
                for began, future in futures:
                    replies = future.result()
                    assert any("AMI-" in r.text for r in replies)
                    assert any(r.document is not None and r.document.content for r in replies)
                    submit_latency.append(time.perf_counter() - began)
                while not drained():
                    time.sleep(0.05)
                time.sleep(0.5)
                done.set()

            cpu0, child0, wall0 = time.process_time(), children_cpu(), time.perf_counter()
            submitter = threading.Thread(target=submit_all)
            submitter.start()
            busy += others.run(0, during=done)
            submitter.join()
            for i, v in enumerate(
                (time.perf_counter() - wall0, time.process_time() - cpu0, children_cpu() - child0)
            ):
                totals["B"][i] += v
        emails = len(list((Path(tmp) / "outbox").glob("*-ars.eml")))

        loop.call_soon_threadsafe(stop_worker.set)
        worker_thread.join(10)
        pool.shutdown()

    def line(name: str, values: list[float], wall: float, cpu: float, child: float) -> str:
        ms = [v * 1000 for v in values]
        return (
            f"  {name}: {len(ms)} turns in {wall:.1f} s wall; p50 {statistics.median(ms):.1f} ms, "
            f"p95 {pct(ms, 0.95):.1f} ms, p99 {pct(ms, 0.99):.1f} ms, max {max(ms):.1f} ms; "
            f"CPU {cpu:.1f} s in the bot process + {child:.1f} s in PDF renderer processes"
        )

    how = "in the turn/worker threads" if args.in_thread else "in the renderer process"
    print(
        f"submit_bench: {args.others} other users walking the form, {args.submissions} "
        f"submissions within 1 s, {TURN_THREADS} turn threads, SQLite; PDFs rendered {how}"
    )
    print(line("A, no submission", quiet, *totals["A"]))
    print(line(f"B, {args.submissions} submissions × {args.rounds} rounds", busy, *totals["B"]))
    ratio = pct(busy, 0.99) / pct(quiet, 0.99)
    print(f"  other users' p99 B/A: {ratio:.2f}× (goal ≤ 2×)")
    sub_ms = [v * 1000 for v in submit_latency]
    print(
        f"  the submitting turns themselves: p50 {statistics.median(sub_ms):.0f} ms, "
        f"max {max(sub_ms):.0f} ms (PDF included); ARS e-mails written: {emails}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
