"""The phrasing set (`phrasings.yaml`) and how one case is judged (tests and benchmark)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.territory import Resolution, load_data

PHRASINGS = Path(__file__).with_name("phrasings.yaml")
ROUND2 = Path(__file__).with_name("phrasings_round2.yaml")


def load_cases(path: Path = PHRASINGS) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["cases"])


def judge(case: dict[str, Any], result: Resolution) -> list[str]:
    """What is wrong with `result` for `case` (empty: right)."""
    problems: list[str] = []
    codes = set(result.codes)
    ambiguous = [sorted(m.candidates) for m in result.ambiguities]
    data = load_data()
    if "communes" in case and codes != set(case["communes"]):
        problems.append(f"communes {sorted(codes)} ≠ {sorted(case['communes'])}")
    if "includes" in case and not set(case["includes"]) <= codes:
        problems.append(f"missing {sorted(set(case['includes']) - codes)}")
    if "epci" in case:
        members = set(data.epci[case["epci"]].members)
        if not members <= codes:
            problems.append(f"EPCI {case['epci']} not whole ({len(members - codes)} missing)")
    if "departement" in case:
        wanted = set(data.members_of_departement(case["departement"]))
        if codes != wanted:
            problems.append(f"département {case['departement']}: {len(codes)} communes")
    if "ambiguous" in case:
        if ambiguous != [sorted(case["ambiguous"])]:
            problems.append(f"ambiguities {ambiguous} ≠ {sorted(case['ambiguous'])}")
    elif ambiguous:
        problems.append(f"unexpected ambiguities {ambiguous}")
    for fragment in case.get("unresolved") or []:
        if fragment.casefold() not in [u.casefold() for u in result.unresolved]:
            problems.append(f"« {fragment} » not reported unresolved ({result.unresolved})")
    if case.get("nothing") and (codes or ambiguous):
        problems.append(f"found {sorted(codes)} {ambiguous} in nonsense")
    return problems
