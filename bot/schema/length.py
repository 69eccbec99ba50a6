"""The real length of a form, computed from its description, for the user's introduction.

A prompt may cite `{length.sections}` (« 6 rubriques »), `{length.messages}` (« une vingtaine
de messages »), `{length.per_item}` (« 5 messages », for each more actor or referent) and
`{length.minutes}` (« 10 minutes »): `expand_length` writes them in when the file is read
(`bot.schema.dialogues.read_form`), so every reader sees the figures of that very file.

What is counted is what the user sends, from the answer to the consent to « Envoyer »:
- a question: one message (a skipped optional one too: « Passer »);
- a question whose answer is understood (`understand`, e.g. the territory): two, the answer
  and its confirmation;
- several choices (`multi_choice`): the boxes ticked, then « Valider »;
- a repeatable group (actors, referents): for each item its questions (those asked only under
  a condition, `ask_if`, are not counted), then « add another / continue »;
- consent and review: one button each; an outcome ends the flow.
The typical path has one item per group (at least the group's `min`) and one box ticked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.schema.form import FormFile, Step, StepKind

LENGTH_PLACEHOLDER = re.compile(r"\{length\.(\w+)\}")
SECONDS_PER_MESSAGE = 30  # reading the question and typing a name, an address, a sentence
NOT_SECTIONS = {StepKind.consent, StepKind.review, StepKind.outcome}


@dataclass(frozen=True)
class FormLength:
    sections: int  # the questions and groups a user goes through (« rubriques »)
    messages: int  # on the typical path
    per_item: int  # more for each more item of a group (the longest group item)
    minutes: int  # for the typical path, rounded up to 5 minutes


def _item_messages(group: Step) -> int:
    """One item of a group: its unconditional questions, then « add another / continue »."""
    return sum(1 for f in group.fields or [] if f.ask_if is None) + 1


def count_messages(form: FormFile, items: Mapping[str, int] | None = None, ticks: int = 1) -> int:
    """The messages a user sends on a path: `items` per group id (default: the group's
    minimum, at least one), `ticks` boxes ticked on each multiple choice."""
    items = items or {}
    total = 0
    for step in form.steps:
        if step.ask_if is not None:
            continue  # asked only in some cases
        if step.kind == StepKind.group:
            total += max(items.get(step.id, step.min or 1), 1) * _item_messages(step)
        elif step.kind == StepKind.multi_choice:
            total += max(ticks, step.min or 1) + 1
        elif step.kind == StepKind.outcome:
            continue
        elif step.understand is not None:
            total += 2
        else:
            total += 1
    return total


def form_length(form: FormFile) -> FormLength:
    messages = count_messages(form)
    groups = [s for s in form.steps if s.kind == StepKind.group]
    minutes = math.ceil(messages * SECONDS_PER_MESSAGE / 60 / 5) * 5
    return FormLength(
        sections=sum(1 for s in form.steps if s.kind not in NOT_SECTIONS),
        messages=messages,
        per_item=max((_item_messages(g) for g in groups), default=0),
        minutes=max(minutes, 5),
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n > 1 else ''}"


# « une vingtaine » reads as 18 to 24 in French; under ten, the figure itself.
APPROXIMATELY = (
    (10, "une dizaine"),
    (13, "une quinzaine"),
    (18, "une vingtaine"),
    (25, "une trentaine"),
    (35, "une quarantaine"),
    (45, "une cinquantaine"),
    (55, "une soixantaine"),
)


def about(n: int, word: str) -> str:
    """« une vingtaine de messages », « 8 messages », « une dizaine de rubriques »."""
    if n < APPROXIMATELY[0][0] or n >= 65:
        return _plural(n, word)
    phrase = next(p for low, p in reversed(APPROXIMATELY) if n >= low)
    return f"{phrase} de {word}s"


def length_values(length: FormLength) -> dict[str, str]:
    """The French phrase each `{length.…}` placeholder stands for."""
    return {
        "sections": _plural(length.sections, "rubrique"),
        "messages": about(length.messages, "message"),
        "per_item": _plural(length.per_item, "message"),
        "minutes": _plural(length.minutes, "minute"),
    }


def _prompts(step: dict[str, Any]) -> list[tuple[str, int | None]]:
    prompt = step.get("prompt")
    if isinstance(prompt, list):
        return [("prompt", i) for i in range(len(prompt))]
    return [("prompt", None)] if isinstance(prompt, str) else []


def expand_length(form: FormFile, data: dict[str, Any]) -> dict[str, Any]:
    """`data` (the validated file, `plain`) with every `{length.…}` of its steps' prompts and
    groups' intros written in; `form` is the same file as a model."""
    values = length_values(form_length(form))

    def fill(text: str) -> str:
        return LENGTH_PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)

    for step in data.get("steps") or []:
        for key, index in _prompts(step):
            if index is None:
                step[key] = fill(step[key])
            else:
                step[key][index] = fill(step[key][index])
        if isinstance(step.get("intro"), str):
            step["intro"] = fill(step["intro"])
    return data
