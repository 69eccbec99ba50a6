"""The scorer's rules (shared/eval/score_qa.py), re-implemented so tests run without shared/."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.qa import QAService
from bot.qa.textnorm import scorer_normalize


@dataclass
class SetScore:
    accuracy: float
    abstention: float
    false_abstentions: float
    failures: list[str]


def score_set(service: QAService, path: Path) -> SetScore:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    ok_in = ok_out = abstained_in = 0
    failures: list[str] = []
    for item in data["in_scope"]:
        reply = service.answer(item["q"])
        text = scorer_normalize(reply.text)
        missing = [p for p in item.get("all", []) if not re.search(p, text)]
        ids = {s.id for s in reply.sources}
        src_ok = not item.get("src") or bool(ids & set(item["src"]))
        if reply.abstained:
            abstained_in += 1
            failures.append(f"abstained: {item['q']}")
        elif missing or not src_ok:
            failures.append(f"wrong ({missing}, {sorted(ids)}): {item['q']}")
        else:
            ok_in += 1
    for item in data["out_of_scope"]:
        reply = service.answer(item["q"])
        if reply.abstained:
            ok_out += 1
        else:
            failures.append(f"answered out of scope: {item['q']}")
    n_in, n_out = max(len(data["in_scope"]), 1), max(len(data["out_of_scope"]), 1)
    return SetScore(ok_in / n_in, ok_out / n_out, abstained_in / n_in, failures)
