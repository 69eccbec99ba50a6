"""Export and e-mail rendering figures: `python -m benchmarks.export_bench [--sizes 500 5000]`.

Prints, for each size, the time and peak Python memory (tracemalloc) of the XLSX and CSV
exports, then how many ARS e-mails (PDF, JSON and CSV attachments included) render per second.
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.config import Settings
from bot.mail.export import export_csv, export_xlsx
from bot.mail.outbox import message_id
from bot.mail.render import build_submission_message
from bot.storage.models import Submission

BASE_COMMUNES = ["Lannion", "Redon", "Allaire", "Saint-Malo", "Vannes", "Quimper", "Brest", "Vitré",
            "Ploërmel", "Guingamp", "Morlaix", "Fougères", "Dinan", "Lorient", "Pontivy"]  # fmt: skip
# Bretagne has about 1 200 communes: spread the fake responses over as many names.
COMMUNES = BASE_COMMUNES + [
    f"Plou{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}ec" for i in range(1200)
]


def fake_submissions(n: int, seed: int = 1) -> list[Submission]:
    """`n` realistic responses (two or three actors, one or two referents, 600-char context)."""
    rng = random.Random(seed)
    start = datetime(2026, 9, 1, 8, tzinfo=UTC)
    subs = []
    for i in range(1, n + 1):
        commune = rng.choice(COMMUNES)
        answers = {
            "actors": [
                {"name": f"Acteur {i}-{k} Le Goff", "profession": "infirmière libérale",
                 "commune": rng.choice(COMMUNES), "practice": rng.choice(["MSP", "ESP", "aucun"]),
                 "practice_other": None}
                for k in range(rng.randint(2, 3))
            ],
            "referents": [
                {"name": f"Référent {i}-{k}", "function": "coordinatrice", "phone": "+33611223344",
                 "email": f"ref{i}.{k}@example.org", "phone_display": "06 11 22 33 44"}
                for k in range(rng.randint(1, 2))
            ],
            "objectives": rng.sample(["information", "reflection", "initiative"], rng.randint(1, 3)),
            "context": ("Nous souhaitons organiser l'accès aux soins non programmés. " * 10)[:600],
            "territory": f"Pays de {commune} ({commune}, {rng.choice(COMMUNES)})",
            "calendar": {"text": "avant fin février", "date": "2027-02-28", "label": "avant le 28 février 2027"},
            "flags": [],
            "copy_to_referent": True,
            "form_title": "AMI CPTS Bretagne",
            "telegram_user_id": 1000 + i,
            "submitted_at": (start + timedelta(hours=i)).isoformat(),
        }  # fmt: skip
        subs.append(
            Submission(
                id=i,
                reference=f"AMI-2026-{i:04d}",
                user_id=1000 + i,
                form_id="ami_bretagne",
                recipient="ars@example.org",
                answers=answers,
                created_at=start + timedelta(hours=i),
            )
        )
    return subs


def measure(fn: Callable[[], bytes]) -> tuple[float, float, int]:
    """Seconds (untraced run), peak MiB allocated by Python (traced run), output bytes."""
    t0 = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - t0
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak / 2**20, len(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--emails", type=int, default=100, help="e-mails to render")
    args = parser.parse_args()
    for n in args.sizes:
        subs = fake_submissions(n)
        for name, fn in (("XLSX", export_xlsx), ("CSV", export_csv)):
            seconds, mib, size = measure(lambda fn=fn, subs=subs: fn(subs))  # type: ignore[misc]
            print(
                f"export {name:4} {n:>6} réponses : {seconds:6.2f} s, pic mémoire {mib:6.1f} Mio, {size / 1024:8.0f} Kio"
            )
    settings = Settings(_env_file=None, mail_from="bot@example.org")  # type: ignore[call-arg]
    subs = fake_submissions(args.emails, seed=2)
    t0 = time.perf_counter()
    size = 0
    for sub in subs:
        msg = build_submission_message(
            sub, settings, message_id=message_id(sub.reference, "ars", settings)
        )
        size += len(msg.as_bytes())
    elapsed = time.perf_counter() - t0
    print(
        f"rendu e-mail ARS (texte + HTML + PDF + JSON + CSV) : {len(subs) / elapsed:6.1f} e-mails/s, "
        f"{size / len(subs) / 1024:.0f} Kio par e-mail"
    )


if __name__ == "__main__":
    main()
