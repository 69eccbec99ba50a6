"""Back-office list figures: `python -m benchmarks.web_bench [--responses 5000] [--runs 30]`.

Fills a throwaway SQLite database with realistic responses (the export benchmark's), builds
their follow-up rows once (timed apart: it happens once per new response in production), then
requests list pages through the real application (Starlette, session check, filters, sorting,
pagination, template) in process, and prints for each kind of request the server's wall time
and CPU time (median and worst over the runs). The bar: ≤ 100 ms of server time per page.
`--database-url postgresql://…` measures on PostgreSQL instead.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.export_bench import fake_submissions
from bot.config import Settings
from bot.storage.store import Store
from bot.web import auth
from bot.web.app import create_app
from bot.web.followup import load_config, sync

PASSWORD = "mot-de-passe-du-banc-d-essai"
QUERIES = {
    "page 1, newest first": "/reponses",
    "page 40": "/reponses?page=40",
    "status filter": "/reponses?statut=nouvelle",
    "délégation 29, sorted by territory": "/reponses?delegation=29&tri=territoire&ordre=asc",
    "objective + date range": "/reponses?objectif=initiative&du=01/10/2026&au=31/12/2026",
    "free text (2 words)": "/reponses?q=pays+plouab",
    "overlaps only, page 3": "/reponses?chevauchement=avec&page=3",
    "délégation agent (scope), page 2": "@delegation/reponses?page=2",
}


def fill(store: Store, n: int) -> None:
    with store.unit() as session:
        for sub in fake_submissions(n):
            session.add(sub)


async def measure(app, url_path: str, cookie: str, runs: int) -> tuple[list[float], list[float]]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    walls: list[float] = []
    cpus: list[float] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        client.cookies.set("bo_session", cookie)
        for i in range(runs + 2):
            c0, t0 = time.process_time(), time.perf_counter()
            response = await client.get(url_path)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert response.status_code == 200, (url_path, response.status_code)
            if i >= 2:  # the first two warm the caches (templates, statements)
                walls.append(wall * 1000)
                cpus.append(cpu * 1000)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--responses", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        settings = Settings(_env_file=None, database_url=url, web_cookie_secure=False)  # type: ignore[call-arg]
        store = Store.from_url(url)
        store.create_all()
        config = load_config()
        fill(store, args.responses)
        t0, c0 = time.perf_counter(), time.process_time()
        sync(store, config)
        print(
            f"{args.responses} responses on {store.engine.dialect.name}; follow-up rows and "
            f"overlap counts built once in {time.perf_counter() - t0:.1f} s "
            f"(CPU {time.process_time() - c0:.1f} s)"
        )
        secretariat = auth.add_account(
            store, "sec@bench.fr", "secretariat", [], PASSWORD, config.delegations
        )
        delegation = auth.add_account(
            store, "dd29@bench.fr", "delegation", ["29"], PASSWORD, config.delegations
        )
        cookies = {
            "": auth.open_session(store, settings, secretariat, "password"),
            "@delegation": auth.open_session(store, settings, delegation, "password"),
        }
        app = create_app(settings, store, config)
        print(f"server time per request over {args.runs} runs, in ms (median / worst):")
        print(f"  {'request':<38} {'wall':>15} {'CPU':>15}")
        worst_median = 0.0
        for label, target in QUERIES.items():
            who, _, path = target.rpartition("/reponses")
            walls, cpus = asyncio.run(measure(app, "/reponses" + path, cookies[who], args.runs))
            med_wall = statistics.median(walls)
            worst_median = max(worst_median, med_wall)
            print(
                f"  {label:<38} {med_wall:7.1f} / {max(walls):5.1f} "
                f"{statistics.median(cpus):7.1f} / {max(cpus):5.1f}"
            )
        verdict = "within" if worst_median <= 100 else "OVER"
        print(f"slowest median: {worst_median:.1f} ms — {verdict} the 100 ms bar")
        store.engine.dispose()


if __name__ == "__main__":
    main()
