"""Engine turns per second on the AMI form, each answer persisted to SQLite on every turn.

    .venv/bin/python -m benchmarks.form_bench [--users 40] [--db PATH]

Each simulated user walks the whole form (consent, 2 actors, 2 referents, 2 objectives,
context, territory, calendar, review, submission): every turn is one `DialogueEngine.handle`,
i.e. one locked transaction that loads the conversation, runs the YAML form and commits the
draft (and, on the last turn, the submission with its outbox job).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bot.config import DIALOGUES_DIR, Settings
from bot.engine.engine import DialogueEngine
from bot.engine.messages import Incoming, Kind, Reply
from bot.forms.ports import FormPorts
from bot.forms.runner import load_flows
from bot.mail.submission import MailSubmissions
from bot.privacy import notice_values
from bot.storage.store import Store


class SilentQA:
    """Question answering that always abstains (the benchmark measures the form)."""

    def answer(self, text: str) -> Any:
        return type("A", (), {"abstained": True, "text": ""})()

    def more(self, key: str) -> None:
        return None

    def topic(self, key: str) -> None:
        return None


SCRIPT: list[str] = [
    "/ami",
    "#J'accepte",
    "Dr Paul Le Cam",
    "médecin généraliste",
    "Lannion",
    "#MSP",
    "#Ajouter un acteur",
    "Claire Morvan",
    "infirmière libérale",
    "Lannion",
    "#Autre",
    "réseau de soins",
    "#Non, continuer",
    "Paul Le Cam",
    "président de l'association",
    "paul.lecam@example.org",
    "06 11 22 33 44",
    "#Ajouter un référent",
    "Claire Morvan",
    "infirmière",
    "claire@example.org",
    "+33 6 55 44 33 22",
    "#Non, continuer",
    "#Besoin",
    "#Réflexion",
    "#Valider",
    "La MSP accueille de nombreux patients sans médecin traitant des communes voisines.",
    "Lannion-Trégor Communauté",
    "#Oui, c'est bien cela",
    "fin janvier",
    "#Envoyer",
]


def run_user(
    engine: DialogueEngine, user_id: int, timings: list[float], script: list[str] = SCRIPT
) -> str:
    replies: list[Reply] = []
    for line in script:
        if line.startswith("/"):
            incoming = Incoming(user_id, Kind.COMMAND, line[1:])
        elif line.startswith("#"):
            wanted = line[1:].casefold()
            payload = next(
                b.payload
                for r in replies
                for row in r.buttons
                for b in row
                if wanted in b.label.casefold()
            )
            incoming = Incoming(user_id, Kind.CHOICE, payload)
        else:
            incoming = Incoming(user_id, Kind.TEXT, line)
        start = time.perf_counter()
        replies = engine.handle(incoming)
        timings.append(time.perf_counter() - start)
    return replies[0].text


class MemoryStore:
    """Conversations kept as JSON in a dict: the form runner's own cost, without a database."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.rows: dict[int, Any] = {}

    @contextmanager
    def turn(self, user_id: int) -> Iterator[Any]:
        from bot.storage.models import Conversation

        conv = self.rows.setdefault(user_id, Conversation(user_id=user_id, data={}))
        conv.data = json.loads(json.dumps(conv.data))  # the JSON round trip of a real turn
        yield SimpleNamespace(session=None, conversation=conv, store=self, changed=lambda: None)


def store_baseline(store: Store, turns: int) -> float:
    """Turns per second of an empty locked turn (load, change, commit): the storage's ceiling."""
    began = time.perf_counter()
    for i in range(turns):
        with store.turn(10_000_000 + i % 7) as turn:
            turn.conversation.data["n"] = i
    return turns / (time.perf_counter() - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.sqlite3"
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite:///{db}",  # type: ignore[call-arg]
            mail_outbox_dir=Path(tmp) / "outbox",
            smtp_host="",
        )
        clock = lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # noqa: E731
        store = Store.from_url(settings.database_url, clock)
        store.create_all()
        engine = DialogueEngine(store=store, qa=SilentQA(), settings=settings, clock=clock)  # type: ignore[arg-type]
        ports = FormPorts(
            submissions=MailSubmissions(store), notice_values=lambda: notice_values(settings)
        )
        engine.flows.update(load_flows(DIALOGUES_DIR, ports))
        import dateparser  # noqa: F401  (warm up the lazy import outside the measure)

        run_user(engine, 0, [])  # warm-up
        timings: list[float] = []
        began = time.perf_counter()
        for user in range(1, args.users + 1):
            last = run_user(engine, user, timings)
            assert "AMI-" in last, last
        elapsed = time.perf_counter() - began
        baseline = store_baseline(store, 600)
        memory = DialogueEngine(
            store=MemoryStore(clock),
            qa=SilentQA(),
            settings=settings,  # type: ignore[arg-type]
            clock=clock,
        )
        memory.flows.update(engine.flows)
        form_only: list[float] = []
        began = time.perf_counter()
        for user in range(1, args.users + 1):
            run_user(memory, user, form_only, SCRIPT[:-1])
        form_rate = len(form_only) / (time.perf_counter() - began)
    turns = len(timings)
    per = len(SCRIPT)
    steps = [t for i, t in enumerate(timings) if i % per != per - 1]  # every answer of the form
    submits = sorted(t * 1000 for i, t in enumerate(timings) if i % per == per - 1)
    ms = sorted(t * 1000 for t in steps)
    print(f"form_bench: {args.users} complete responses, {turns} turns, {per} per response")
    print(
        f"  all turns: {turns / elapsed:,.0f} turns/s (SQLite, one committed transaction per turn)"
    )
    print(
        f"  answer turns ({per - 1} per response): {len(steps) / sum(steps):,.0f} turns/s, "
        f"median {statistics.median(ms):.2f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:.2f} ms, "
        f"max {ms[-1]:.2f} ms"
    )
    print(
        f"  submission turn (response + e-mail job committed, then the PDF fiche rendered): "
        f"median {statistics.median(submits):.1f} ms"
    )
    print(f"  storage ceiling: {baseline:,.0f} empty locked turns/s on the same SQLite file")
    print(f"  form runner alone (conversation as JSON in memory): {form_rate:,.0f} turns/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
