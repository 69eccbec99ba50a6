"""Fixtures of the Q&A tests: one service for the whole session (no disk cache involved)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.qa import QAService

QA_DIR = Path(__file__).resolve().parent
SHARED = QA_DIR.parents[2] / "shared"


@pytest.fixture(scope="session")
def service() -> QAService:
    return QAService.load(use_cache=False)
