"""Question-answering benchmark: `python -m benchmarks.qa_bench` (run on purpose, not in CI).

Prints, with the scorer's rules (../shared/eval/score_qa.py, implemented once in
bot/qa/evaluation.py for this benchmark and the tests, so that it runs without shared/):
- the persona-written bank (tests/qa/bank): its held-out third first — written by helpers
  given eight personas, never used for tuning —, then the two thirds used for tuning, then four
  fresh personas written last, then the sets of later rounds (fresh2 … fresh13; the seventh,
  eighth, ninth, twelfth and thirteenth never read): in-scope accuracy, off-topic abstention,
  false abstentions, grounded share, follow-up threads;
- the development data (tests/qa/dev: personas with expected facts, near-misses, conversations;
  tuned on), the shared development set (../shared/eval/qa_dev.yaml when present) and the
  earlier rounds (tests/qa/*.yaml, tuned on: an optimistic figure);
- the hand-graded shares of tests/qa/bank/grading/*.yaml (correct / padded / incomplete /
  misleading / wrong);
- latency per question in process, wall and CPU time (the machines are shared and noisy),
  load time with the cached index and full build, cold start of `python -m bot ask --json`
  (wall, and the CPU time of the child), and peak memory of a process that answers everything.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT / "tests" / "qa" / "bank"
DEV_SET = ROOT.parent / "shared" / "eval" / "qa_dev.yaml"
DEV = ROOT / "tests" / "qa" / "dev"
# the persona bank's sets, in the order they were written, as the benchmark names them
BANK_SETS = [
    ("held-out third (untuned)", "holdout"),
    ("tuning two thirds", "tune"),
    ("fresh personas (untuned)", "fresh"),
    ("second fresh personas (untuned)", "fresh2"),
    ("third fresh personas (untuned)", "fresh3"),
    ("fourth fresh personas (untuned)", "fresh4"),
    ("fifth fresh personas (untuned)", "fresh5"),
    ("sixth fresh personas (first run, then tuned)", "fresh6"),
    ("seventh fresh personas (untuned)", "fresh7"),
    ("eighth fresh personas (untuned)", "fresh8"),
    ("ninth fresh personas (untuned)", "fresh9"),
    ("tenth fresh personas (first run, then tuned)", "fresh10"),
    ("eleventh fresh personas (first run, then tuned)", "fresh11"),
    ("twelfth fresh personas (untuned)", "fresh12"),
    ("thirteenth fresh personas (untuned)", "fresh13"),
]
EARLIER = sorted((ROOT / "tests" / "qa").glob("questions*.yaml")) + sorted(
    (ROOT / "tests" / "qa").glob("blind_round*.yaml")
)


def _score(service, data: dict[str, list[dict]]) -> tuple[dict, list[float], list[float]]:  # type: ignore[no-untyped-def]
    from bot.qa.evaluation import evaluate, summarise
    from bot.qa.textnorm import quote_in

    docs = service.kb.documents
    outcomes = evaluate(service, data)
    result = summarise(outcomes)
    grounded = quoting = 0
    lengths: list[int] = []
    for outcome in outcomes:
        reply = outcome.reply
        if outcome.kind != "in_scope" or reply.abstained:
            continue
        lengths.append(len(reply.text))
        if reply.sources:
            quoting += 1
            grounded += all(quote_in(s.quote, docs[s.id].plain) for s in reply.sources)
    single = [o for o in outcomes if o.kind != "threads"]  # threads are not timed per question
    figures = {
        "accuracy": result.accuracy,
        "n_in": result.n_in,
        "abstention": result.abstention,
        "n_out": result.n_out,
        "false_abstentions": result.false_abstentions,
        "grounded": grounded / max(quoting, 1),
        "median_chars": statistics.median(lengths) if lengths else 0,
        "threads": result.threads,
        "n_threads": result.n_threads,
        "ok_threads": result.ok_threads,
    }
    return figures, [o.wall_ms for o in single], [o.cpu_ms for o in single]


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))] if s else 0.0


def _line(name: str, f: dict) -> str:
    text = (
        f"  {name:34} accuracy {f['accuracy']:.3f} (n={f['n_in']}) | "
        f"off-topic abstention {f['abstention']:.3f} (n={f['n_out']}) | "
        f"false abstentions {f['false_abstentions']:.3f} | grounded {f['grounded']:.3f} | "
        f"median answer {f['median_chars']:.0f} chars"
    )
    if f["threads"] is not None:
        text += f" | follow-ups {f['threads']:.3f} ({f['ok_threads']}/{f['n_threads']})"
    return text


def _cold_start(cmd: list[str], runs: int = 3) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system of the child) of a command."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        json.loads(out.stdout.splitlines()[0])
    return statistics.median(walls), statistics.median(cpus)


# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over an exec from the forking
# process (this benchmark, which has just built the index with spaCy), VmHWM is the child's own
_MEMORY_CHILD = """
import sys
import bot
from bot.qa import QAService
s = QAService.load()
for q in sys.stdin.read().splitlines():
    s.answer(q)
with open("/proc/self/status") as fh:
    print(next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")))
"""


def _scope_examples(service) -> None:  # type: ignore[no-untyped-def]
    """The development near-misses: the share of `outside` abstained, of `inside` answered."""
    for path in sorted(DEV.glob("scope_examples*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        outside = [service.answer(i["q"]).abstained for i in data.get("outside") or []]
        inside = [not service.answer(i["q"]).abstained for i in data.get("inside") or []]
        print(
            f"  dev near-misses {path.name} (tuned on): outside abstained "
            f"{sum(outside) / max(len(outside), 1):.3f} (n={len(outside)}) | inside answered "
            f"{sum(inside) / max(len(inside), 1):.3f} (n={len(inside)}, correctness not scored)"
        )


def _dev_threads(service) -> None:  # type: ignore[no-untyped-def]
    """The development conversations: follow-ups right, and off-topic last turns abstained."""
    from bot.qa.evaluation import evaluate

    for path in sorted(DEV.glob("threads_dev*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        threads = data.get("threads") or []
        outcomes = evaluate(service, {"in_scope": [], "out_of_scope": [], "threads": threads})
        answered = [o.ok for o, th in zip(outcomes, threads, strict=True) if not th.get("oos")]
        outside = [o.ok for o, th in zip(outcomes, threads, strict=True) if th.get("oos")]
        print(
            f"  dev follow-ups {path.name} (tuned on): {sum(answered)}/{len(answered)} right, "
            f"{sum(outside)}/{len(outside)} off-topic last turns abstained"
        )


def _hand_graded() -> None:
    for path in sorted((BANK / "grading").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        grades = Counter(a.get("grade") for a in data.get("answers") or [] if a.get("grade"))
        total = sum(grades.values())
        if not total:
            print(f"  hand-graded {path.name}: not graded yet")
            continue
        shares = " | ".join(
            f"{g} {grades.get(g, 0) / total:.2f}"
            for g in ("correct", "padded", "incomplete", "misleading", "wrong")
        )
        print(f"  hand-graded {path.name} ({total} answers): {shares}")


def main() -> int:
    sys.path.insert(0, str(ROOT))
    import bot  # noqa: F401  (sets the BLAS thread defaults before numpy loads)
    from bot.qa import QAService
    from bot.qa.evaluation import merge_files

    t0 = time.perf_counter()
    QAService.load(use_cache=False)
    build_ms = (time.perf_counter() - t0) * 1000
    QAService.load()  # make sure the cache exists
    t0 = time.perf_counter()
    service = QAService.load()
    load_ms = (time.perf_counter() - t0) * 1000

    print("Question answering benchmark")
    wall: list[float] = []
    cpu: list[float] = []
    questions: list[str] = []
    groups: list[tuple[str, list[Path]]] = [
        (f"bank: {label}", sorted((BANK / folder).glob("*.yaml"))) for label, folder in BANK_SETS
    ]
    groups.append(
        ("dev personas (tests/qa/dev, tuned on)", sorted((DEV / "personas").glob("*.yaml")))
    )
    if DEV_SET.exists():
        groups.append(("dev set (shared/eval)", [DEV_SET]))
    groups.append(("earlier rounds (tuned on)", EARLIER))
    for name, paths in groups:
        if not paths:
            continue
        data = merge_files(paths)
        figures, w, c = _score(service, data)
        wall += w
        cpu += c
        questions += [i["q"] for i in data["in_scope"] + data["out_of_scope"]]
        print(_line(name, figures))
    _scope_examples(service)
    _dev_threads(service)
    _hand_graded()
    print(
        f"  latency in process ({len(wall)} questions): wall p50 {_pct(wall, 0.5):.2f} ms "
        f"p95 {_pct(wall, 0.95):.2f} ms | CPU p50 {_pct(cpu, 0.5):.2f} ms "
        f"p95 {_pct(cpu, 0.95):.2f} ms"
    )
    print(f"  load: {load_ms:.0f} ms with the cached index, {build_ms:.0f} ms full build")
    question = "Quelle est la différence entre une ESP et une CPTS ?"
    cold_wall, cold_cpu = _cold_start([sys.executable, "-m", "bot", "ask", "--json", question])
    print(
        f"  cold start `python -m bot ask --json …` with the cached index: "
        f"{cold_wall * 1000:.0f} ms wall, {cold_cpu * 1000:.0f} ms CPU (median of 3)"
    )
    child = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD],
        cwd=ROOT,
        input="\n".join(questions),
        capture_output=True,
        text=True,
        check=True,
    )
    print(
        f"  peak memory (load + {len(questions)} questions): "
        f"{int(child.stdout.split()[-1]) / 1024:.0f} MB RSS"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
