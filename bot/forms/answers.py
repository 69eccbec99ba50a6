"""Answers: where each one goes in the draft, how it reads, and the shape that is submitted."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.engine.validators import Invalid, Rules, Valid, get_validator
from bot.forms.draft import Draft
from bot.forms.spec import QUESTION_KINDS, Choice, FormSpec, Step

PLACEHOLDER = re.compile(r"\{(?:answers\.(\w+)|summary)\}")
_ENUMERATOR = re.compile(r"^[A-Z]\.\s+")


# =========================================================================== reading
def display(field_: Step, value: Any) -> str:
    """An answer as people read it (a choice's label, a date's wording)."""
    if value in (None, "", []):
        return ""
    if field_.kind == "choice":
        return field_.choice_label(value)
    if field_.kind == "multi_choice":
        return ", ".join(field_.choice_label(v) for v in value)
    if isinstance(value, dict):
        return str(value.get("label") or value.get("text") or "")
    return str(value)


def bare(label: str) -> str:
    """A choice label without its « A. » enumerator, to be read inside a sentence."""
    return _ENUMERATOR.sub("", label)


def short(text: str, limit: int) -> str:
    """One line of at most `limit` characters (… when cut)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fold_label(text: str) -> str:
    """A label folded for comparison with typed text."""
    return "".join(ch for ch in text.casefold() if ch.isalnum() or ch in " '’").strip()


def match_choice(choices: Iterable[Choice], folded: str) -> Choice | None:
    """The choice typed text names: its value, its label, its number or a unique prefix."""
    wanted = fold_label(folded)
    if not wanted:
        return None
    choices = list(choices)
    for c in choices:
        if wanted in (fold_label(c.value), fold_label(c.label)):
            return c
    if wanted.isdecimal() and 1 <= int(wanted) <= len(choices):
        return choices[int(wanted) - 1]
    starts = [c for c in choices if fold_label(c.label).startswith(wanted) and len(wanted) >= 3]
    return starts[0] if len(starts) == 1 else None


def ordered(field_: Step, selected: set[str]) -> list[str]:
    """Ticked values in the order of the choices."""
    return [c.value for c in field_.choices if c.value in selected]


def item_summary(group: Step, item: dict[str, Any]) -> str:
    """One line per item; a follow-up answer ("Autre" → which) replaces its choice."""
    parts: list[str] = []
    for i, sub in enumerate(group.fields):
        value = item.get(f"{sub.id}_display") if sub.store_display else None
        shown = display(sub, value or item.get(sub.id))
        if not shown:
            continue
        if sub.ask_if and i > 0 and parts:
            parts[-1] = f"{parts[-1].rstrip('…')} : {shown}"
        else:
            parts.append(shown)
    return " — ".join(parts)


def suggestions(draft: Draft, field_: Step) -> list[str]:
    """Names already given in another group, offered as buttons (at most 4)."""
    assert field_.suggest is not None
    items = draft.answers.get(field_.suggest.get("group", "")) or []
    key = field_.suggest.get("field", "name")
    names: list[str] = []
    for item in items:
        name = item.get(key)
        if name and name not in names:
            names.append(name)
    return names[:4]


def validate(field_: Step, text: str, now: datetime | None = None) -> Valid | Invalid:
    """Check typed text with the field's validator and limits."""
    rules = Rules(max_length=field_.max_length, min_length=field_.min_length, now=now)
    assert field_.validator is not None
    return get_validator(field_.validator)(text, rules)


def as_typed(field_: Step, raw: str) -> Valid:
    """An answer kept as typed (a period keeps its shape, without a date)."""
    if field_.kind == "date_or_period":
        return Valid({"text": raw, "date": None, "label": raw}, raw)
    return Valid(raw, raw)


# =========================================================================== writing
def path_of(draft: Draft, step: Step, sub: Step | None) -> str:
    """Where an answer lives: `objectives`, or `referents[1].phone`."""
    if sub is None:
        return step.id
    return f"{step.id}[{draft.item}].{sub.id}"


def flag_label(draft: Draft, step: Step, sub: Step | None) -> str:
    """What people read for a kept-as-typed answer: « Référent 2 — Téléphone »."""
    if sub is None:
        return step.label or step.id
    item = step.text("item_label") or step.label or step.id
    return f"{item} {draft.item + 1} — {sub.label or sub.id}"


def put(
    draft: Draft,
    step: Step,
    sub: Step | None,
    result: Valid,
    understood: dict[str, Any] | None = None,
) -> None:
    """Write a valid answer where it belongs (the group item being answered, or the answers).

    A step that is understood (`understand:`) also stores `<id>_understood`: what was
    recognised and confirmed, or None (nothing recognised, or kept as typed)."""
    field_ = sub or step
    if sub is not None:
        items = draft.items(step.id)
        while len(items) <= draft.item:
            items.append({})
        target = items[draft.item]
    else:
        target = draft.answers
    target[field_.id] = result.value
    if field_.understand and sub is None:
        if result.value in (None, ""):
            target.pop(f"{field_.id}_understood", None)
        else:
            target[f"{field_.id}_understood"] = understood
    if field_.store_display:
        target[f"{field_.id}_display"] = result.display
    if field_.id in draft.prefilled and sub is None:
        draft.prefilled.remove(field_.id)


def prune(spec: FormSpec, draft: Draft) -> None:
    """Drop group items left incomplete (an item added then abandoned)."""
    for step in spec.steps:
        if step.kind != "group":
            continue
        items = draft.answers.get(step.id) or []
        required = [f.id for f in step.fields if not f.optional and not f.ask_if]
        kept = [i for i in items if all(i.get(r) not in (None, "") for r in required)]
        if len(kept) != len(items):
            draft.answers[step.id] = kept


def missing(spec: FormSpec, draft: Draft) -> list[str]:
    """The labels of required steps left unanswered."""
    answers = draft.answers
    labels = []
    for step in spec.steps:
        if step.kind == "group":
            lacking = len(answers.get(step.id) or []) < step.min_items
        else:
            lacking = step.kind in QUESTION_KINDS and not step.optional and not step.ask_if
            lacking = lacking and answers.get(step.id) in (None, "", [])
        if lacking:
            labels.append(step.label)
    return labels


def renumber_flags(draft: Draft, group_id: str, removed: int) -> None:
    """After removing a group item, its flags go and the later items' move up."""
    pattern = re.compile(rf"^{re.escape(group_id)}\[(\d+)\](.*)$")
    flags = []
    for flag in draft.flags:
        m = pattern.match(flag.field)
        if m:
            n = int(m.group(1))
            if n == removed:
                continue
            if n > removed:
                flag.field = f"{group_id}[{n - 1}]{m.group(2)}"
        flags.append(flag)
    draft.flags = flags


def prefill(spec: FormSpec, draft: Draft, values: dict[str, Any]) -> list[str]:
    """Take answers known from another flow (objectives ticked, territory); mark them.

    Returns « label : value » for each one taken."""
    notes = []
    for key, value in values.items():
        step = spec.by_id.get(key)
        if step is None or value in (None, "", []):
            continue
        if step.kind == "multi_choice":
            wanted = {str(v) for v in (value if isinstance(value, list) else [value])}
            value = ordered(step, wanted)
            if not value:
                continue
            shown = ", ".join(step.choice_label(v) for v in value)
        elif step.kind == "choice":
            if value not in {c.value for c in step.choices}:
                continue
            shown = step.choice_label(value)
        else:
            result = get_validator(step.validator or "text")(
                str(value), Rules(max_length=step.max_length)
            )
            if isinstance(result, Invalid):
                continue
            value, shown = result.value, result.display
        draft.answers[key] = value
        if key not in draft.prefilled:
            draft.prefilled.append(key)
        notes.append(f"{step.label} : {shown}")
    return notes


# =========================================================================== submitted shape
def final_answers(spec: FormSpec, draft: Draft, user_id: int, now: datetime) -> dict[str, Any]:
    """The answers in the shape the e-mail, PDF and exports are written against."""
    answers = draft.answers
    out: dict[str, Any] = {}
    for step in spec.steps:
        if step.kind == "group":
            items = []
            for item in answers.get(step.id) or []:
                row: dict[str, Any] = {}
                for sub in step.fields:
                    row[sub.id] = item.get(sub.id)
                    if sub.store_display:
                        row[f"{sub.id}_display"] = item.get(f"{sub.id}_display")
                items.append(row)
            out[step.id] = items
        elif step.kind == "multi_choice":
            out[step.id] = list(answers.get(step.id) or [])
        elif step.kind in QUESTION_KINDS:
            out[step.id] = answers.get(step.id)
            if step.understand and f"{step.id}_understood" in answers:
                out[f"{step.id}_understood"] = answers[f"{step.id}_understood"]
    out["flags"] = [f.to_dict() for f in draft.flags]
    out["copy_to_referent"] = bool(draft.copy_to_referent)
    # absent from responses stored before the question existed: no consent
    out["consent_contact"] = bool(draft.consent_contact)
    out["form_title"] = spec.form_title
    out["telegram_user_id"] = user_id
    out["submitted_at"] = now.isoformat()
    return out


def path_answers(spec: FormSpec, draft: Draft) -> dict[str, Any]:
    """The answers of the steps on the path taken to here (history, current, prefilled).

    Going back and taking another branch leaves the other branch's answers in the draft
    (offered again as « Réponse actuelle » if the user returns there), but they no longer
    count: not in an outcome's text, not in the prefill handed to another flow. A form with
    a review (the AMI) keeps every answer: the review shows and sends them all.
    """
    if spec.has_review:
        return draft.answers
    locate = spec.locate
    on_path = {locate[s][0].id for s in draft.history.states() if s in locate}
    if draft.step in locate:
        on_path.add(locate[draft.step][0].id)
    on_path.update(draft.prefilled)
    return {k: v for k, v in draft.answers.items() if k in on_path}


def summary(spec: FormSpec, answers: dict[str, Any]) -> str:
    """One line per answered question (in the YAML's order), `in_summary: false` left out."""
    lines = [
        spec.t("summary_item", label=step.label, value=bare(shown))
        for step in spec.steps
        if step.kind in QUESTION_KINDS and step.in_summary
        for shown in [display(step, answers.get(step.id))]
        if shown
    ]
    return "\n".join(lines)


def fill(spec: FormSpec, draft: Draft, text: str) -> str:
    """Replace `{answers.<id>}` (the chosen label) and `{summary}` in an outcome's text."""
    if "{" not in text:
        return text
    answers = path_answers(spec, draft)

    def value(match: re.Match[str]) -> str:
        if match.group(0) == "{summary}":
            return summary(spec, answers)
        step = spec.by_id.get(match.group(1))
        if step is None:
            return match.group(0)
        return bare(display(step, answers.get(step.id)))

    return PLACEHOLDER.sub(value, text)
