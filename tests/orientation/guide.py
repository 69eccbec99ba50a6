"""Driving the « ESP ou CPTS ? » guide through the engine, as a user would (buttons, text)."""

from __future__ import annotations

from typing import Any

from bot.config import DIALOGUES_DIR
from bot.forms.answers import PLACEHOLDER
from bot.forms.spec import FormSpec, Step

SPEC = FormSpec.load(DIALOGUES_DIR / "orientation.yaml")
QUESTIONS = {s.id: s for s in SPEC.steps if s.kind != "outcome"}
OUTCOMES = {s.id: s for s in SPEC.steps if s.kind == "outcome"}
# The first reply of each outcome (its « étapes concrètes » are a second reply, behind a button).
VERDICTS = {i: s for i, s in OUTCOMES.items() if not i.endswith("_steps")}
MAX_QUESTIONS = 6
TERRITORY = "Lannion-Trégor Communauté"


def pieces(step: Step) -> list[str]:
    """The fixed parts of a step's text, around its `{answers.…}` / `{summary}` placeholders."""
    return [p for p in PLACEHOLDER.sub("\0", step.prompt).split("\0") if p.strip()]


def shows(text: str, step: Step) -> bool:
    """True when `text` holds the step's text (placeholders filled with anything)."""
    return bool(step.prompt) and all(p in text for p in pieces(step))


def current_step(chat: Any) -> Step | None:
    """The question or outcome the bot is showing now (its prompt is in the last replies)."""
    found = [
        (chat.text.rfind(pieces(step)[0]), step) for step in SPEC.steps if shows(chat.text, step)
    ]
    return max(found, key=lambda pair: pair[0])[1] if found else None


def give(chat: Any, step: Step, value: Any) -> str:
    """Answer `step` with `value`: press the choice's button, type a text, or skip it."""
    if step.kind == "choice":
        return chat.press(step.choice_label(value))
    if value is None:
        return chat.press("Passer")
    return chat.say(str(value))


def walk(chat: Any, answers: dict[str, Any]) -> tuple[str, list[str]]:
    """From /orientation, answer what is asked from `answers`; return (outcome, questions asked).

    A question missing from `answers` raises KeyError naming it (the path asked for more).
    """
    chat.say("/orientation")
    asked: list[str] = []
    while True:
        step = current_step(chat)
        assert step is not None, f"neither a question nor an outcome:\n{chat.text}"
        if step.kind == "outcome":
            return step.id, asked
        assert step.id not in asked, f"{step.id} asked twice"
        asked.append(step.id)
        give(chat, step, answers[step.id])


def values_of(step: Step) -> list[Any]:
    """Every answer a user can give to `step` through its buttons (or a text, or « Passer »)."""
    if step.kind == "choice":
        return [c.value for c in step.choices]
    return [TERRITORY, None] if step.optional else [TERRITORY]
