"""The QA scorer's rules (../shared/eval/score_qa.py), one implementation for the tests and
the benchmark (`tests/qa/scoring.py`, `benchmarks/qa_bench.py`), so that neither needs shared/.

A question file has three lists: `in_scope` (`q`, the regular expressions `all` the
normalised answer must match, and `src`, document ids one of which must be cited),
`out_of_scope` (`q`: the right reply is an abstention) and `threads` (`turns` asked in one
conversation, scored on the last reply: an abstention if `oos`, else `all` and `src` as above).

`evaluate` returns one `Outcome` per item, each with the wall and CPU time of its call(s);
`summarise` turns them into the scorer's figures.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from bot.qa.textnorm import scorer_normalize

if TYPE_CHECKING:
    from bot.qa.service import QAAnswer, QAService

Kind = Literal["in_scope", "out_of_scope", "threads"]
KINDS: tuple[Kind, ...] = ("in_scope", "out_of_scope", "threads")


def merge_files(paths: Iterable[Path]) -> dict[str, list[dict[str, Any]]]:
    """Several question files as one set (in_scope, out_of_scope, threads)."""
    out: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for path in paths:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        for key, items in out.items():
            items += data.get(key) or []
    return out


def missing_patterns(reply: QAAnswer, item: dict[str, Any]) -> list[str]:
    """The item's `all` patterns the normalised reply does not match."""
    text = scorer_normalize(reply.text)
    return [p for p in item.get("all", []) if not re.search(p, text)]


def cites_a_source(reply: QAAnswer, item: dict[str, Any]) -> bool:
    """True when the item names no `src`, or the reply cites one of them."""
    ids = {s.id for s in reply.sources}
    return not item.get("src") or bool(ids & set(item["src"]))


def is_right(reply: QAAnswer, item: dict[str, Any]) -> bool:
    """An in-scope reply (or a thread's last) is right: no abstention, every pattern, a source."""
    return not reply.abstained and not missing_patterns(reply, item) and cites_a_source(reply, item)


@dataclass(frozen=True)
class Outcome:
    """One scored item: its reply (the last turn's for a thread), whether it is right, and the
    wall and CPU time (ms) its call(s) took."""

    kind: Kind
    item: dict[str, Any]
    reply: QAAnswer
    ok: bool
    wall_ms: float
    cpu_ms: float

    @property
    def failure(self) -> str | None:
        """The failure line the tests print, or None when the item is right."""
        if self.ok:
            return None
        if self.kind == "threads":
            return f"thread: {' / '.join(self.item['turns'])}"
        if self.kind == "out_of_scope":
            return f"answered out of scope: {self.item['q']}"
        if self.reply.abstained:
            return f"abstained: {self.item['q']}"
        ids = sorted({s.id for s in self.reply.sources})
        return f"wrong ({missing_patterns(self.reply, self.item)}, {ids}): {self.item['q']}"


def evaluate(service: QAService, data: dict[str, list[dict[str, Any]]]) -> list[Outcome]:
    """Ask every item of `data` (see `merge_files`): in scope, out of scope, then threads."""
    outcomes: list[Outcome] = []
    for kind in KINDS:
        for item in data.get(kind) or []:
            t0, c0 = time.perf_counter(), time.thread_time()
            if kind == "threads":
                context = None
                for turn in item["turns"]:
                    reply, context = service.reply(turn, context)
            else:
                reply = service.answer(item["q"])
            wall = (time.perf_counter() - t0) * 1000
            cpu = (time.thread_time() - c0) * 1000
            if kind == "out_of_scope" or (kind == "threads" and item.get("oos")):
                ok = reply.abstained
            else:
                ok = is_right(reply, item)
            outcomes.append(Outcome(kind, item, reply, ok, wall, cpu))
    return outcomes


@dataclass
class Score:
    """The scorer's figures over a set of outcomes."""

    n_in: int
    n_out: int
    n_threads: int
    ok_in: int
    ok_out: int
    ok_threads: int
    abstained_in: int
    failures: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.ok_in / max(self.n_in, 1)

    @property
    def abstention(self) -> float:
        """Share of the off-topic questions the service declined."""
        return self.ok_out / max(self.n_out, 1)

    @property
    def false_abstentions(self) -> float:
        return self.abstained_in / max(self.n_in, 1)

    @property
    def threads(self) -> float | None:
        """Share of the threads whose last reply is right; None without threads."""
        return self.ok_threads / self.n_threads if self.n_threads else None


def summarise(outcomes: Sequence[Outcome]) -> Score:
    def of(kind: Kind) -> list[Outcome]:
        return [o for o in outcomes if o.kind == kind]

    in_scope, out_of_scope, threads = of("in_scope"), of("out_of_scope"), of("threads")
    return Score(
        n_in=len(in_scope),
        n_out=len(out_of_scope),
        n_threads=len(threads),
        ok_in=sum(o.ok for o in in_scope),
        ok_out=sum(o.ok for o in out_of_scope),
        ok_threads=sum(o.ok for o in threads),
        abstained_in=sum(o.reply.abstained for o in in_scope),
        failures=[o.failure for o in outcomes if o.failure is not None],
    )


def score(service: QAService, data: dict[str, list[dict[str, Any]]]) -> Score:
    """`evaluate` then `summarise`."""
    return summarise(evaluate(service, data))


__all__ = [
    "Outcome",
    "Score",
    "cites_a_source",
    "evaluate",
    "is_right",
    "merge_files",
    "missing_patterns",
    "score",
    "summarise",
]
