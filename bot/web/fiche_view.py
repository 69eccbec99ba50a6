"""A response laid out like the AMI fiche, from the form's own description (dialogues/*.yaml).

The labels, their order, the choices' wording and the groups' columns all come from the
`FormSpec` the bot runs, so the back office never holds a second copy of the fiche.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.engine.forms import QUESTION_KINDS, FormSpec, Step, _spec_of
from bot.storage.models import Submission

NOT_GIVEN = "Non renseigné"


@dataclass
class Section:
    """One question of the fiche with the response's answer, ready for a template."""

    label: str
    kind: str  # "text", "choices", "group"
    text: str = ""
    choices: list[tuple[bool, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def spec_for(submission: Submission) -> FormSpec:
    return _spec_of(submission.form_id or "ami_bretagne")


def _value(step: Step, value: Any, item: dict[str, Any] | None = None) -> str:
    if value in (None, "", []):
        return ""
    if step.kind == "choice":
        label = step.choice_label(value)
        other = (item or {}).get(f"{step.id}_other")
        return f"{label} ({other})" if value == "autre" and other else label
    if step.kind == "multi_choice":
        return ", ".join(step.choice_label(v) for v in value)
    if step.kind == "phone" and item is not None:
        return str(item.get(f"{step.id}_display") or value)
    if isinstance(value, dict):
        text = str(value.get("text") or "")
        label = str(value.get("label") or "")
        return f"{text} (compris : {label})" if text and label and label != text else text or label
    return str(value)


def sections(submission: Submission) -> list[Section]:
    """The fiche's questions in the form's order, each with this response's answer."""
    spec = spec_for(submission)
    answers = submission.answers or {}
    result: list[Section] = []
    for step in spec.steps:
        if step.kind == "group":
            # a field that only details another one ("autre" → its text) is shown with it
            fields = [f for f in step.fields if not f.id.endswith("_other")]
            items = [i for i in answers.get(step.id) or [] if isinstance(i, dict)]
            result.append(
                Section(
                    label=step.label,
                    kind="group",
                    columns=[f.label for f in fields],
                    rows=[[_value(f, item.get(f.id), item) for f in fields] for item in items],
                )
            )
        elif step.kind == "multi_choice":
            chosen = set(answers.get(step.id) or [])
            result.append(
                Section(
                    label=step.label,
                    kind="choices",
                    choices=[(c.value in chosen, c.label) for c in step.choices],
                )
            )
        elif step.kind in QUESTION_KINDS:
            result.append(
                Section(label=step.label, kind="text", text=_value(step, answers.get(step.id)))
            )
    return result
