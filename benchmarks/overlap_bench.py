"""The ARS e-mail's cost as responses pile up: `python -m benchmarks.overlap_bench`.

Stores 0, 1 000 and 10 000 responses on a fresh SQLite database — each on one to four
communes of Brittany drawn at random, as real territories — then, for a new response on
« Lannion-Trégor Communauté », times what the outbox worker does for its ARS e-mail: the
overlaps found through the territory index (`top_overlaps`: the 20 sharing the most communes, and how many share any) and the whole message
(bodies, PDF, JSON, CSV). Wall and CPU time, median of 20; run on purpose, not in CI. The
issue's bar: flat from 0 to 10 000 stored responses (no scan of every response).
"""

from __future__ import annotations

import copy
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    import bot  # noqa: F401  (BLAS thread defaults)
    from bot.config import Settings
    from bot.mail.render import build_submission_message
    from bot.storage.migrations import upgrade
    from bot.storage.overlaps import top_overlaps
    from bot.storage.store import Store
    from bot.territory import load_data
    from bot.worker import EMAIL_OVERLAPS
    from tests.mail.factories import BASE_ANSWERS

    names = sorted(c.name for c in load_data().communes.values())
    rng = random.Random(7)
    print("ARS e-mail with overlaps, by number of responses already stored")
    for stored in (0, 1_000, 10_000):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite3"
            settings = Settings(_env_file=None, database_url=url, mail_outbox_dir=Path(tmp))  # type: ignore[call-arg]
            upgrade(url)
            store = Store.from_url(url)
            t0 = time.perf_counter()
            with store.unit() as session:
                for i in range(stored):
                    answers = copy.deepcopy(BASE_ANSWERS)
                    answers["territory"] = ", ".join(rng.sample(names, rng.randint(1, 4)))
                    store.add_submission(
                        session, user_id=10_000 + i, form_id="ami_bretagne",
                        recipient="ars@example.org", answers=answers,
                    )  # fmt: skip
            fill = time.perf_counter() - t0
            with store.unit() as session:
                sub = store.add_submission(
                    session, user_id=1, form_id="ami_bretagne", recipient="ars@example.org",
                    answers=copy.deepcopy(BASE_ANSWERS),
                )  # fmt: skip
                session.expunge(sub)
            walls, cpus, found = [], [], 0
            for _ in range(20):
                t0, c0 = time.perf_counter(), time.process_time()
                with store.unit() as session:
                    overlaps, total = top_overlaps(session, sub, False, EMAIL_OVERLAPS)
                build_submission_message(
                    sub, settings, message_id="<bench@example.org>", overlaps=overlaps,
                    overlap_total=total,
                )  # fmt: skip
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
                found = total
            print(
                f"  {stored:>6} stored (filled in {fill:.1f} s): e-mail with overlaps "
                f"{statistics.median(walls) * 1000:.1f} ms wall, "
                f"{statistics.median(cpus) * 1000:.1f} ms CPU (median of 20; {found} overlaps)"
            )
            store.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
