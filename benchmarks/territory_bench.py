"""Territory resolution benchmark: `python -m benchmarks.territory_bench` (run on purpose).

Prints the accuracy on our phrasing set (tests/territory/phrasings.yaml); resolution latency
p50/p95/max over the set (every text resolved `--rounds` times, uncached: `Resolver.resolve`),
wall time with CPU time beside it; the data file's size, its load time (read + check + index,
in a fresh process) and the memory it takes (tracemalloc, and the process's peak RSS).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOAD_SNIPPET = """
import json, resource, time, tracemalloc
from bot.territory.data import load_file
from bot.territory.resolve import Resolver
t0, c0 = time.perf_counter(), time.process_time()
tracemalloc.start()
data = load_file()
t1, c1 = time.perf_counter(), time.process_time()
resolver = Resolver(data)
t2, c2 = time.perf_counter(), time.process_time()
current, peak = tracemalloc.get_traced_memory()
print(json.dumps({"load_ms": (t1 - t0) * 1000, "load_cpu_ms": (c1 - c0) * 1000,
                  "index_ms": (t2 - t1) * 1000, "index_cpu_ms": (c2 - c1) * 1000,
                  "traced_mb": current / 2**20, "traced_peak_mb": peak / 2**20,
                  "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="passes over the phrasing set")
    args = parser.parse_args()

    from bot.territory import default_resolver
    from bot.territory.data import DATA_FILE
    from tests.territory.phrasings import PHRASINGS, ROUND2, judge, load_cases

    resolver = default_resolver()
    cases = []
    for path in (PHRASINGS, ROUND2):
        subset = load_cases(path)
        cases += subset
        wrong = {c["text"]: p for c in subset if (p := judge(c, resolver.resolve(c["text"])))}
        print(f"{path.name}: {len(subset)} phrasings, right {len(subset) - len(wrong)} "
              f"({1 - len(wrong) / len(subset):.3f})")  # fmt: skip
        for text, problems in wrong.items():
            print(f"  ✗ {text!r}: {'; '.join(problems)}")

    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(args.rounds):
        for case in cases:
            t0, c0 = time.perf_counter(), time.process_time()
            resolver.resolve(case["text"]).as_dict()
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    print(
        f"resolution ({len(wall)} texts, uncached, with as_dict): "
        f"wall p50 {statistics.median(wall):.3f} ms, p95 {percentile(wall, 0.95):.3f} ms, "
        f"max {max(wall):.3f} ms; CPU p50 {statistics.median(cpu):.3f} ms, "
        f"p95 {percentile(cpu, 0.95):.3f} ms; CPU total {sum(cpu) / 1000:.2f} s "
        f"for wall {sum(wall) / 1000:.2f} s"
    )
    slow = sorted(cases, key=lambda c: -_time(resolver, c["text"]))[:3]
    print("slowest: " + ", ".join(f"{c['text']!r}" for c in slow))

    done = subprocess.run(
        [sys.executable, "-c", LOAD_SNIPPET], cwd=ROOT, capture_output=True, text=True, check=True
    )
    load = json.loads(done.stdout)
    size = DATA_FILE.stat().st_size
    print(
        f"data: {DATA_FILE.relative_to(ROOT)} {size / 1024:.1f} KiB gzip; "
        f"read + check {load['load_ms']:.1f} ms (CPU {load['load_cpu_ms']:.1f} ms), "
        f"index {load['index_ms']:.1f} ms (CPU {load['index_cpu_ms']:.1f} ms); "
        f"memory held {load['traced_mb']:.1f} MiB (peak {load['traced_peak_mb']:.1f} MiB, "
        f"tracemalloc), process peak RSS {load['rss_peak_mb']:.0f} MiB"
    )
    print(
        f"this process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    return 0


def _time(resolver, text: str) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for _ in range(5):
        resolver.resolve(text)
    return time.perf_counter() - t0


if __name__ == "__main__":
    raise SystemExit(main())
