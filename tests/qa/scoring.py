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
    threads: float = 1.0  # share of conversation threads whose last turn is right


def score_set(service: QAService, path: Path | list[Path]) -> SetScore:
    """Score one question file, or several as one set."""
    paths = path if isinstance(path, list) else [path]
    data = merged(paths)
    ok_in = ok_out = abstained_in = 0
    failures: list[str] = []
    for item in data.get("in_scope") or []:
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
    for item in data.get("out_of_scope") or []:
        reply = service.answer(item["q"])
        if reply.abstained:
            ok_out += 1
        else:
            failures.append(f"answered out of scope: {item['q']}")
    ok_threads = 0
    for th in data.get("threads") or []:
        ctx = None
        for turn in th["turns"]:
            reply, ctx = service.reply(turn, ctx)
        if th.get("oos"):
            ok = reply.abstained
        else:
            text = scorer_normalize(reply.text)
            ids = {s.id for s in reply.sources}
            ok = (
                not reply.abstained
                and all(re.search(p, text) for p in th.get("all", []))
                and (not th.get("src") or bool(ids & set(th["src"])))
            )
        ok_threads += ok
        if not ok:
            failures.append(f"thread: {' / '.join(th['turns'])}")
    n_in = max(len(data.get("in_scope") or []), 1)
    n_out = max(len(data.get("out_of_scope") or []), 1)
    n_threads = len(data.get("threads") or [])
    return SetScore(
        ok_in / n_in,
        ok_out / n_out,
        abstained_in / n_in,
        failures,
        ok_threads / n_threads if n_threads else 1.0,
    )


def merged(paths: list[Path]) -> dict[str, list[dict]]:
    """Several question files as one set (in_scope, out_of_scope, threads)."""
    out: dict[str, list[dict]] = {"in_scope": [], "out_of_scope": [], "threads": []}
    for path in paths:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key, items in out.items():
            items += data.get(key) or []
    return out
