"""The runner: a form as a `Flow` of the dialogue engine.

Each turn it loads the typed draft from the conversation, lets a handler (`FormTurn`) change it
and report what happened, saves the draft, and — the only place that does — turns the report
into replies. Button payloads are `<form>:<visit>:<action>` (`bot.forms.actions`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.engine.messages import Incoming, Kind, Reply
from bot.engine.validators import get_understander
from bot.forms import prompts
from bot.forms.citations import Citations
from bot.forms.draft import Draft
from bot.forms.handlers import FormTurn
from bot.forms.machine import machine_for
from bot.forms.ports import FormPorts
from bot.forms.report import Report, Then
from bot.forms.review import review_text
from bot.forms.spec import FormSpec, load_specs

if TYPE_CHECKING:
    from bot.engine.flow import TurnContext


class FormFlow:
    """Runs one dialogue YAML: prompts, validation, back, review, submission, outcomes."""

    def __init__(self, spec: FormSpec, ports: FormPorts | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.title = spec.title
        self.ports = ports or FormPorts()
        self.machine = machine_for(spec)
        self.citations = Citations(spec, self.ports.qa)
        for step in spec.steps:
            if step.understand:  # a turn must not pay for loading the territory data
                get_understander(step.understand).warm()

    # ------------------------------------------------------------------ Flow protocol
    def start(self, ctx: TurnContext, prefill: dict[str, Any]) -> list[Reply]:
        """Begin the form (or merge a prefill into the draft) and ask the first step."""
        turn = self._turn(ctx)
        return self._finish(turn, turn.begin(prefill))

    def has_progress(self, ctx: TurnContext) -> bool:
        """True when the draft holds at least one answer."""
        stored = ctx.conversation.data.get(self.name) or {}
        return Draft.from_dict(stored).has_answers()

    def prompt(self, ctx: TurnContext) -> list[Reply]:
        """Ask the current step again."""
        turn = self._turn(ctx)
        if not turn.draft.started:
            turn.draft = Draft()
            turn.set_state(self.spec.initial, 0)
        return self._finish(turn, Report())

    def handle(self, ctx: TurnContext, incoming: Incoming) -> list[Reply]:
        """Route a typed answer or a button of this flow to the current step."""
        turn = self._turn(ctx)
        if not turn.draft.started:
            return self.start(ctx, {})
        if incoming.kind == Kind.CHOICE:
            report = turn.on_button(incoming.text)
        else:
            report = turn.on_text(incoming.text)
        return self._finish(turn, report)

    # ------------------------------------------------------------------ other readers
    def review_text(self, ctx: TurnContext, stored: dict[str, Any]) -> str:
        """A stored draft's answers as the review shows them (the user's data export)."""
        return review_text(self.spec, Draft.from_dict(stored), ctx.settings)

    # ------------------------------------------------------------------ the turn
    def _turn(self, ctx: TurnContext) -> FormTurn:
        """The turn's handlers, on the draft stored in the conversation."""
        draft = Draft.from_dict(ctx.conversation.data.get(self.name) or {})
        return FormTurn(self.spec, self.machine, self.ports, self.citations, ctx, draft)

    def _finish(self, turn: FormTurn, report: Report) -> list[Reply]:
        """Save the draft (or remove it) and render the report.

        A removed draft goes first (the main menu then offers nothing to resume); a kept one
        is saved after rendering, which may settle a step that no longer exists."""
        data = turn.ctx.conversation.data
        if turn.draft.discarded:
            data.pop(self.name, None)
            return self.replies(turn, report)
        replies = self.replies(turn, report)
        data[self.name] = turn.draft.to_dict()
        return replies

    def replies(self, turn: FormTurn, report: Report) -> list[Reply]:
        """What the user reads after a report: the only place a form's replies are made."""
        ctx = turn.ctx
        out: list[Reply] = []
        if report.receipt is not None:
            out.append(prompts.fiche(report.receipt))
        if report.answer is not None:
            out += self._answer(turn, report)
        out += [Reply(text) for text in report.said]
        then = report.then
        if then == Then.PROMPT:
            prompt = prompts.render(turn)
            if report.answer is not None and prompt:
                prompt[0].text = self.spec.t("resume_form") + "\n" + prompt[0].text
            out += prompt
        elif then == Then.REMINDER:
            out += prompts.render(turn, reminder=True)
        elif then == Then.REVIEW_BUTTONS:
            out.append(prompts.review_buttons(turn))
        elif then == Then.WAY_ON:
            out.append(prompts.way_on(turn, report.offer_keep))
        elif then == Then.MENU and out:
            host = self.ports.host
            out[-1].buttons = host.menu_buttons(ctx) if host is not None else []
        if report.note:
            if out:
                out[0].text = report.note + "\n\n" + out[0].text
            else:
                out = [Reply(report.note)]
        return out

    def _answer(self, turn: FormTurn, report: Report) -> list[Reply]:
        """A question answered mid-form, as the engine shows answers, without « Menu »."""
        assert report.answer is not None
        host = self.ports.host
        if host is None:
            return [Reply(report.answer.text)]
        replies = list(host.render_answer(turn.ctx, report.answer))
        for reply in replies:  # no "Menu" button here: the form goes on
            rows = [[b for b in row if not b.payload.startswith("menu:")] for row in reply.buttons]
            reply.buttons = [row for row in rows if row]
        return replies


def load_flows(directory: Path, ports: FormPorts | None = None) -> dict[str, FormFlow]:
    """Build a `FormFlow` for every flow declared in `directory`."""
    return {name: FormFlow(spec, ports) for name, spec in load_specs(directory).items()}
