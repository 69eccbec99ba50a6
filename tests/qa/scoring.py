"""The scorer's rules for the tests: `bot/qa/evaluation.py` (../shared/eval/score_qa.py's rules,
implemented once so that the tests and the benchmark run without shared/)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.qa import QAService
from bot.qa.evaluation import merge_files, score


@dataclass
class SetScore:
    accuracy: float
    abstention: float
    false_abstentions: float
    failures: list[str]
    threads: float = 1.0  # share of conversation threads whose last turn is right


def score_set(service: QAService, path: Path | list[Path]) -> SetScore:
    """Score one question file, or several as one set."""
    result = score(service, merge_files(path if isinstance(path, list) else [path]))
    return SetScore(
        result.accuracy,
        result.abstention,
        result.false_abstentions,
        result.failures,
        1.0 if result.threads is None else result.threads,
    )
