"""Question-answering benchmark: `python -m benchmarks.qa_bench` (run on purpose, not in CI).

Prints, for the dev set (../shared/eval/qa_dev.yaml when present) and our own sets
(tests/qa/questions*.yaml): in-scope accuracy, off-topic abstention, false abstentions, grounded
share (every quote verbatim in its source), median answer length; then in-process latency
p50/p95, load time (cached index and full build), cold start of `python -m bot ask --json`,
and peak memory of a process that loads the service and answers every question.
"""

from __future__ import annotations

import json
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEV_SET = ROOT.parent / "shared" / "eval" / "qa_dev.yaml"
OWN_SETS = sorted((ROOT / "tests" / "qa").glob("questions*.yaml")) + sorted(
    (ROOT / "tests" / "qa").glob("blind_round*.yaml")
)


def _score(service, path: Path) -> tuple[dict, list[float], list[str]]:
    from bot.qa.textnorm import quote_in, scorer_normalize

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = [dict(i, oos=False) for i in data.get("in_scope", [])]
    items += [dict(i, oos=True) for i in data.get("out_of_scope", [])]
    ok_in = ok_out = false_abst = grounded = quoting = 0
    lengths: list[int] = []
    latencies: list[float] = []
    questions: list[str] = []
    for it in items:
        questions.append(it["q"])
        t0 = time.perf_counter()
        reply = service.answer(it["q"])
        latencies.append((time.perf_counter() - t0) * 1000)
        if not reply.abstained and reply.sources:
            quoting += 1
            docs = service.kb.documents
            grounded += all(quote_in(s.quote, docs[s.id].plain) for s in reply.sources)
        if it["oos"]:
            ok_out += reply.abstained
            continue
        if reply.abstained:
            false_abst += 1
            continue
        lengths.append(len(reply.text))
        text = scorer_normalize(reply.text)
        ids = {s.id for s in reply.sources}
        if all(re.search(p, text) for p in it.get("all", [])) and (
            not it.get("src") or ids & set(it["src"])
        ):
            ok_in += 1
    n_in = sum(not i["oos"] for i in items) or 1
    n_out = sum(i["oos"] for i in items) or 1
    figures = {
        "in_scope": any(not i["oos"] for i in items),
        "accuracy": ok_in / n_in,
        "n_in": n_in,
        "abstention": ok_out / n_out,
        "n_out": n_out,
        "false_abstentions": false_abst / n_in,
        "grounded": grounded / max(quoting, 1),
        "median_chars": statistics.median(lengths) if lengths else 0,
    }
    return figures, latencies, questions


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def _cold_start(cmd: list[str], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t0)
        json.loads(out.stdout.splitlines()[0])
    return statistics.median(times)


_MEMORY_CHILD = """
import resource, sys, tracemalloc
tracemalloc.start()
from bot.qa import QAService
s = QAService.load()
for q in sys.stdin.read().splitlines():
    s.answer(q)
peak_py = tracemalloc.get_traced_memory()[1]
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, peak_py)
"""


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from bot.qa import QAService

    t0 = time.perf_counter()
    QAService.load(use_cache=False)
    build_ms = (time.perf_counter() - t0) * 1000
    QAService.load()  # make sure the cache exists
    t0 = time.perf_counter()
    service = QAService.load()
    load_ms = (time.perf_counter() - t0) * 1000

    sets = ([DEV_SET] if DEV_SET.exists() else []) + OWN_SETS
    all_latencies: list[float] = []
    all_questions: list[str] = []
    print("Question answering benchmark")
    for path in sets:
        figures, latencies, questions = _score(service, path)
        all_latencies += latencies
        all_questions += questions
        if not figures["in_scope"]:
            print(
                f"  {path.name:26} off-topic abstention {figures['abstention']:.3f} "
                f"(n={figures['n_out']})"
            )
            continue
        print(
            f"  {path.name:26} accuracy {figures['accuracy']:.3f} (n={figures['n_in']}) | "
            f"off-topic abstention {figures['abstention']:.3f} (n={figures['n_out']}) | "
            f"false abstentions {figures['false_abstentions']:.3f} | "
            f"grounded {figures['grounded']:.3f} | median answer {figures['median_chars']:.0f} chars"
        )
    # warm pass: the latency a user sees once the process has answered a few questions
    warm: list[float] = []
    for q in all_questions:
        t0 = time.perf_counter()
        service.answer(q)
        warm.append((time.perf_counter() - t0) * 1000)
    print(
        f"  latency in process: first pass p50 {_pct(all_latencies, 0.5):.2f} ms "
        f"p95 {_pct(all_latencies, 0.95):.2f} ms | warm p50 {_pct(warm, 0.5):.2f} ms "
        f"p95 {_pct(warm, 0.95):.2f} ms ({len(warm)} questions)"
    )
    print(f"  load: {load_ms:.0f} ms with the cached index, {build_ms:.0f} ms full build")

    question = "Quelle est la différence entre une ESP et une CPTS ?"
    py = sys.executable
    if (ROOT / "bot" / "cli.py").exists():
        cold = _cold_start([py, "-m", "bot", "ask", "--json", question])
        print(f"  cold start `python -m bot ask --json …`: {cold * 1000:.0f} ms (median of 3)")
    one_liner = "import sys; from bot.qa import run_ask; sys.exit(run_ask(sys.argv[1], sys.stdin, sys.stdout))"
    cold = _cold_start([py, "-c", one_liner, question])
    print(f"  cold start run_ask one-liner: {cold * 1000:.0f} ms (median of 3)")

    child = subprocess.run(
        [py, "-c", _MEMORY_CHILD],
        cwd=ROOT,
        input="\n".join(all_questions),
        capture_output=True,
        text=True,
        check=True,
    )
    maxrss_kb, peak_py = (int(x) for x in child.stdout.split())
    print(
        f"  peak memory (load + {len(all_questions)} questions): {maxrss_kb / 1024:.0f} MB RSS, "
        f"{peak_py / 1e6:.1f} MB Python allocations (tracemalloc)"
    )
    print(f"  this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB RSS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
