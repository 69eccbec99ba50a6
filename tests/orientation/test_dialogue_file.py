"""The dialogue file passes the linter and its committed diagram is up to date."""

from __future__ import annotations

from bot.config import DIALOGUES_DIR
from bot.forms.diagram import render
from bot.lint import lint_directory
from tests.orientation.guide import SPEC


def test_the_orientation_dialogue_passes_the_linter():
    problems = [p for p in lint_directory(DIALOGUES_DIR) if p.startswith("orientation.yaml")]
    assert problems == []


def test_the_committed_diagram_matches_the_dialogue():
    committed = (DIALOGUES_DIR / "orientation.mmd").read_text(encoding="utf-8")
    assert committed == render(SPEC)
