"""Outcomes (the orientation guide's conclusions): their texts and their buttons' actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.forms import answers as A
from bot.forms.actions import Action, Verb
from bot.forms.draft import Draft
from bot.forms.report import Report, Then, say
from bot.forms.spec import Step

if TYPE_CHECKING:
    from bot.forms.handlers import FormTurn

OUTCOME_ACTIONS = {"restart", "menu", "question", "goto", "switch"}  # what a button may do


def resolve_prefill(spec: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """Prefill values: literals, or `{answer: field}` copied from this flow's answers."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if isinstance(value, dict) and "answer" in value:
            value = answers.get(str(value["answer"]))
        if value not in (None, "", []):
            out[key] = value
    return out


def outcome_texts(turn: FormTurn, step: Step) -> list[str]:
    """An outcome's messages (one per part of its prompt), answers filled, sources on the last."""
    texts = [A.fill(turn.spec, turn.draft, part) for part in step.parts]
    texts[-1] = turn.with_sources(texts[-1], step.sources)
    return texts


def outcome_action(turn: FormTurn, step: Step, action: Action) -> Report:
    """An outcome's button: restart, menu, question, go to a step, or switch flow (prefill)."""
    spec, ctx = turn.spec, turn.ctx
    if action.verb != Verb.OUTCOME or action.number is None or action.number >= len(step.buttons):
        return turn.stale()
    button = step.buttons[action.number]
    kind = button.get("action", "menu")
    if kind == "restart":
        turn.draft = Draft()
        return turn.begin({})
    if kind == "goto":
        turn.jump(spec.entry(spec.by_id[button["goto"]]))
        return Report()
    if kind == "switch":
        prefill = resolve_prefill(button.get("prefill") or {}, A.path_answers(spec, turn.draft))
        turn.discard()
        ctx.finish()
        ctx.switch_to(str(button["flow"]), **prefill)
        return Report(then=Then.NOTHING)
    if kind == "question":
        # like the menu's « Poser une question »: leave the guide, the next message is a
        # question; the answers stay, so /orientation comes back to this outcome
        ctx.finish()
        host = turn.ports.host
        text = host.texts.get("ask_question") if host is not None else ""
        return say(text or spec.t("finished"), Then.NOTHING)
    turn.discard()
    ctx.finish()
    return say(spec.t("finished"), Then.MENU)
