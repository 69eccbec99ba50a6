"""Load: N simulated users complete the AMI at once against the real `python -m bot run`.

`.venv/bin/python -m benchmarks.load_bench [--users 200] [--db sqlite|postgres|both]`

The bot runs as a subprocess exactly as in production (long polling, PTB's AIORateLimiter on,
the outbox worker in the process, SMTP to an aiosmtpd server), talking to the loopback Bot API
emulator of `tests/support/botapi.py`. Every user goes through the whole form (≈ 18 turns:
consent, actor, referent, objectives, context, territory, calendar, review, send), then the
run waits for the N e-mails and checks that each carries its own user's answers (JSON
attachment and text body): nothing missing, nothing mixed.

Printed per database: completed responses per minute, turns per second, latency of a turn as
the user feels it (from the user's action to the bot's next prompt: p50/p95/p99), time until
the last e-mail, peak resident memory of the bot process (VmHWM). Loopback only, bounded in
users and time (`--timeout`), stops by itself.

Note: with the production rate limiter the bot never exceeds Telegram's 30 messages per second
(sendMessage, editMessageText and chat actions all count); a burst of 200 users finishing
a form is paced by that limit, as it would be on Telegram.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.ops.harness import (
    TOKEN,
    BotProcess,
    OpsBotApi,
    SmtpSink,
    answers_of,
    bot_env,
    complete_ami,
    migrate,
    persona,
    submission_matches,
)

USER_BASE = 100_000


@dataclass
class LoadReport:
    """What one run measured, and what it checked."""

    db: str
    users: int
    completed: int = 0
    turns: int = 0
    seconds: float = 0.0  # first action → last response confirmed
    mail_seconds: float = 0.0  # first action → last e-mail received
    latencies: list[float] = field(default_factory=list)
    emails: int = 0
    distinct_message_ids: int = 0
    mismatched: list[int] = field(default_factory=list)  # users whose e-mail is not theirs
    missing: list[int] = field(default_factory=list)  # users without an e-mail
    errors: list[str] = field(default_factory=list)
    peak_rss_mib: float = 0.0

    @property
    def correct(self) -> bool:
        return (
            not self.errors
            and self.completed == self.users
            and self.emails == self.distinct_message_ids == self.users
            and not self.mismatched
            and not self.missing
        )

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def lines(self) -> list[str]:
        per_min = self.completed / self.seconds * 60 if self.seconds else 0.0
        turns_s = self.turns / self.seconds if self.seconds else 0.0
        mean = statistics.fmean(self.latencies) if self.latencies else 0.0
        return [
            f"[{self.db}] {self.completed}/{self.users} responses completed in "
            f"{self.seconds:.1f} s; last e-mail after {self.mail_seconds:.1f} s",
            f"  throughput: {per_min:.1f} responses/min, {turns_s:.1f} turns/s",
            f"  turn latency: p50 {self.percentile(0.50) * 1000:.0f} ms, "
            f"p95 {self.percentile(0.95) * 1000:.0f} ms, p99 {self.percentile(0.99) * 1000:.0f} ms"
            f" (mean {mean * 1000:.0f} ms, {len(self.latencies)} turns)",
            f"  e-mails: {self.emails} received, {self.distinct_message_ids} distinct "
            f"Message-IDs, {len(self.missing)} missing, {len(self.mismatched)} mixed",
            f"  bot peak memory (VmHWM): {self.peak_rss_mib:.0f} MiB",
            "  correct: " + ("yes" if self.correct else f"NO {self.errors[:3]}"),
        ]


async def run_load(
    users: int,
    database_url: str,
    workdir: Path,
    *,
    db_label: str = "",
    timeout: float = 900.0,
    ramp_seconds: float = 1.0,
) -> LoadReport:
    """Start the bot, run `users` complete responses concurrently, check the e-mails."""
    report = LoadReport(db=db_label or database_url.split(":", 1)[0], users=users)
    people = {USER_BASE + i: persona(1000 + i) for i in range(users)}
    async with OpsBotApi(TOKEN, bot_username="esp_cpts_load_bot") as api:
        with SmtpSink() as smtp:
            env = bot_env(database_url, api, smtp, workdir)
            migrate(env)
            bot = BotProcess(env, workdir / "bot.log")
            try:
                await bot.start().wait_ready(timeout=60)
                started = time.perf_counter()

                async def one(index: int, uid: int) -> None:
                    await asyncio.sleep(ramp_seconds * index / max(users, 1))
                    user = api.user(uid, f"Pro{index}")
                    try:
                        latencies = await complete_ami(api, user, people[uid], timeout=120)
                    except AssertionError as exc:
                        report.errors.append(str(exc)[:300])
                        return
                    report.latencies.extend(latencies)
                    report.turns += len(latencies)
                    report.completed += 1

                await asyncio.wait_for(
                    asyncio.gather(*(one(i, uid) for i, uid in enumerate(people))), timeout
                )
                report.seconds = time.perf_counter() - started
                remaining = max(30.0, timeout - report.seconds)
                with contextlib.suppress(AssertionError):
                    await smtp.wait_for(report.completed, timeout=remaining)
                report.mail_seconds = time.perf_counter() - started
                await asyncio.sleep(1.0)  # a doubled e-mail would show now
                report.peak_rss_mib = bot.peak_rss_kib() / 1024
            finally:
                bot.terminate()
            check_emails(report, smtp, people)
    return report


def check_emails(report: LoadReport, smtp: SmtpSink, people: dict[int, dict[str, str]]) -> None:
    """Each user's e-mail carries that user's answers, and only theirs."""
    received = smtp.messages()
    report.emails = len(received)
    report.distinct_message_ids = len({m.message_id for m in received})
    seen: set[int] = set()
    for message in received:
        try:
            answers = answers_of(message)
            uid = int(answers["telegram_user_id"])
        except (AssertionError, KeyError, ValueError) as exc:
            report.errors.append(f"unreadable e-mail {message.message_id}: {exc}")
            continue
        seen.add(uid)
        p = people.get(uid)
        body = message.text_body()
        if p is None or not submission_matches(answers, p) or p["referent"] not in body:
            report.mismatched.append(uid)
            continue
        others = [q["referent"] for u, q in people.items() if u != uid and q["referent"] in body]
        if others:
            report.mismatched.append(uid)
    report.missing = sorted(set(people) - seen)


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bot.sqlite3'}"
        return
    from tests.postgres_cluster import PostgresCluster, find_pg_bin

    if find_pg_bin() is None:
        raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")
    with PostgresCluster.start() as cluster:
        yield cluster.new_database()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per database")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    ok = True
    for kind in kinds:
        with (
            tempfile.TemporaryDirectory(prefix=f"load-{kind}-") as tmp,
            database(kind, Path(tmp)) as url,
        ):
            report = asyncio.run(
                run_load(args.users, url, Path(tmp), db_label=kind, timeout=args.timeout)
            )
        print("\n".join(report.lines()), flush=True)
        ok = ok and report.correct
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
