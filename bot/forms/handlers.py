"""The handlers of a turn: each reads the user's event, changes the draft, reports.

A `FormTurn` is made for one turn of one user (the runner loads the draft, and saves it after).
Handlers move through the form by firing the form's Machine (`bot.forms.machine`); they never
build a reply: they return a `Report` that the runner renders. Review and submission handlers
live in `bot.forms.review`, the guide's outcomes in `bot.forms.outcomes`.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from bot.engine.messages import french_format
from bot.engine.validators import Invalid, Rules, Valid, get_understander, get_validator
from bot.forms import answers as A
from bot.forms import outcomes, prompts, review
from bot.forms.actions import Action, Verb, payload_prefix, read_payload
from bot.forms.citations import Citations
from bot.forms.draft import Draft, Pending
from bot.forms.machine import FormMachine
from bot.forms.report import Report, Then, say
from bot.forms.spec import ADD_ITEM, ADVANCE, DONE, REVIEW, FormSpec, Step, state_of

if TYPE_CHECKING:
    from bot.engine.flow import TurnContext
    from bot.forms.ports import FormPorts
    from bot.qa import QAAnswer

log = logging.getLogger(__name__)

CODE_LIKE = re.compile(r"[0-9][0-9 ]{3,10}[0-9]")  # a verification code typed at the review
MAX_FAILS = 3
BACK_WORDS = {
    "precedent",
    "précédent",
    "retour",
    "revenir",
    "question precedente",
    "question précédente",
    "<",
    "⬅️",
    "⬅",
}
SKIP_WORDS = {
    "passer",
    "je ne sais pas",
    "je ne sais pas encore",
    "ne sais pas",
    "aucune idée",
    "aucune idee",
    "nsp",
    "-",
}
DONE_WORDS = {"valider", "ok", "c'est tout", "terminé", "termine", "fini", "suivant", "continuer"}
YES_WORDS = {
    "oui",
    "ok",
    "d'accord",
    "c'est bien cela",
    "c'est bien ça",
    "c'est ça",
    "exact",
    "valider",
}
QUESTION_START = re.compile(
    r"^(qu['’]est[- ]ce|c['’]est quoi|comment|combien|pourquoi|quel(le)?s? |quand |"
    r"est[- ]ce qu|a quoi|à quoi|qui |que |quoi|peut[- ]on|puis[- ]je|dois[- ]je|faut[- ]il|"
    r"existe[- ]t[- ]il|y a[- ]t[- ]il)",
    re.I,
)


# what a user types for the consent step's two buttons (folded as button labels are)
AGREE_WORDS = frozenset(
    {"oui", "ok", "okay", "d'accord", "daccord", "j'accepte", "jaccepte", "accepte", "go",
     "oui j'accepte", "c'est parti", "allonsy", "allons y", "commencer", "on commence", "yes"}
)  # fmt: skip
REFUSE_WORDS = frozenset({"non", "non merci", "refuse", "je refuse", "pas maintenant", "no"})


class FormTurn:
    """One turn of one form for one user: the draft, the Machine, the ports."""

    __slots__ = ("_prefix", "citations", "ctx", "draft", "machine", "ports", "spec")

    def __init__(
        self,
        spec: FormSpec,
        machine: FormMachine,
        ports: FormPorts,
        citations: Citations,
        ctx: TurnContext,
        draft: Draft,
    ) -> None:
        self.spec = spec
        self.machine = machine
        self.ports = ports
        self.citations = citations
        self.ctx = ctx
        self.draft = draft
        self._prefix = ("", -1)  # the buttons' payload prefix, and the visit it is for

    def payload_prefix(self) -> str:
        """`<form>:<visit>:` for the buttons of the step shown now."""
        text, visit = self._prefix
        if visit != self.draft.visit:
            visit = self.draft.visit
            text = payload_prefix(self.spec.name, visit)
            self._prefix = (text, visit)
        return text

    def stale(self) -> Report:
        """A button of an older message (or an action that does not apply here)."""
        return say(self.spec.t("stale"))

    # ------------------------------------------------------------------ where we are
    def current(self) -> tuple[Step, Step | None]:
        """The step (and group field) of the draft's state; a vanished step falls back."""
        state = self.draft.step or self.spec.initial
        if state not in self.spec.locate:
            state = REVIEW if self.spec.has_review else self.spec.initial
            self.draft.step = state
        return self.spec.locate[state]

    @property
    def state(self) -> str:
        """The draft's state."""
        assert self.draft.step is not None
        return self.draft.step

    def is_group_menu(self) -> bool:
        """True on a group's « add another? » or an item's menu."""
        return self.state.endswith(".more") or self.state.endswith(".item")

    def set_state(self, state: str, item: int) -> None:
        """Enter a state (a new visit) and show it in the conversation's row."""
        self.draft.enter(state, item)
        self.ctx.conversation.state = state[:128]

    def move(self, trigger: str, push: bool = True, item: int | None = None) -> str:
        """Fire a trigger, skip prefilled steps, record history, enter the new state."""
        draft = self.draft
        previous = (self.state, draft.item)
        state = self.machine.fire_on(draft, trigger)
        guard = 0
        while draft.is_prefilled(state) and guard < len(self.spec.states):
            draft.step = state
            state = self.machine.fire_on(draft, ADVANCE)
            guard += 1
        if push:
            draft.record_history(*previous)
        if item is None:
            locate = self.spec.locate
            same_step = locate.get(state, (None,))[0] is locate.get(previous[0], (None,))[0]
            item = draft.item if same_step else 0
        self.set_state(state, item)
        return state

    def jump(self, state: str, item: int = 0, push: bool = True) -> None:
        """Go straight to a state (from the review, an item's menu, an outcome)."""
        if push:
            self.draft.record_history(self.state, self.draft.item)
        self.set_state(state, item)

    def begin(self, prefill: dict[str, Any]) -> Report:
        """Begin the form (or merge a prefill into the draft) and ask the first step."""
        if not self.draft.has_answers():
            self.draft = Draft()
            self.set_state(self.spec.initial, 0)
        notes = A.prefill(self.spec, self.draft, prefill)
        step, _ = self.current()
        if step.kind == "consent" and self.ctx.conversation.consent_at is not None:
            self.move(ADVANCE, push=False)
        note = ""
        if notes:
            note = self.spec.t("prefilled", items="\n".join(f"• {n}" for n in notes))
        return Report().noted(note)

    def discard(self) -> None:
        """Remove the draft at the end of the turn."""
        self.draft.discarded = True

    # ------------------------------------------------------------------ events
    def on_button(self, payload: str) -> Report:
        """A button of this form: stale if from an older message, else its action."""
        read = read_payload(payload)
        if read.visit != str(self.draft.visit):
            return self.stale()
        return self.on_action(read.action)

    def on_text(self, text: str) -> Report:
        """Typed text: an answer, a word (« précédent », « passer »), a question, a code."""
        draft = self.draft
        step, sub = self.current()
        field_ = sub or step
        if step.kind == "review" and draft.verifying and CODE_LIKE.fullmatch(text.strip()):
            return review.check_code(self, text)
        folded = text.strip().lower().strip(" .!")
        if folded in BACK_WORDS:
            return self.go_back()
        pending = draft.pending
        if pending and pending.field == field_.id and sub is None:
            yes = A.fold_label(folded.replace("’", "'"))
            if yes in YES_WORDS or yes == A.fold_label(field_.understood_text("confirm")):
                return self.on_action(Action(Verb.CONFIRM))
            if not self.names_something(field_, text):
                # not a territory (the next answer typed too early?): the buttons decide
                return say(self.spec.t("use_buttons"))
            draft.pending = None  # a corrected territory: read it afresh
        if self.is_question(field_, text):
            answer = self.ask(text)
            if answer is not None:
                return Report(answer=answer)
            if field_.validator in ("name", "label") and text.strip().endswith("?"):
                # not an answer, and the texts do not answer it: say so, ask again
                return say(self.spec.t("question_unanswered"))
        if step.kind == "consent" and A.fold_label(folded) in AGREE_WORDS | REFUSE_WORDS:
            # « oui », « ok », « non merci » typed instead of pressing a button
            return self.consent(A.fold_label(folded) in AGREE_WORDS)
        if self.is_group_menu() or step.kind in ("consent", "review", "outcome"):
            return self.typed_choice(folded)
        if folded in SKIP_WORDS and field_.optional:
            return self.on_action(Action(Verb.SKIP))
        if field_.kind == "choice":
            choice = A.match_choice(field_.choices, folded)
            if choice is None:
                return self.refuse(field_, Invalid("choice_unknown"), text)
            return self.store(field_, Valid(choice.value, choice.label))
        if field_.kind == "multi_choice":
            if folded in DONE_WORDS:
                return self.on_action(Action(Verb.OK))
            picked = [
                c
                for part in re.split(r"[,;/]| et ", folded)
                if part.strip()
                for c in [A.match_choice(field_.choices, part.strip())]
                if c
            ]
            if not picked:
                return self.refuse(field_, Invalid("choice_unknown"), text)
            draft.answers[field_.id] = A.ordered(field_, {c.value for c in picked})
            return self.on_action(Action(Verb.OK))
        result = A.validate(field_, text, self.ctx.now)
        if isinstance(result, Invalid):
            return self.refuse(field_, result, text)
        if field_.understand and sub is None:
            return self.understand(field_, result)
        return self.store(field_, result, typed=text)

    def on_action(self, action: Action) -> Report:
        """A button's action on the current step."""
        draft = self.draft
        step, sub = self.current()
        field_ = sub or step
        if action.verb == Verb.BACK:
            return self.go_back()
        if action.verb == Verb.WHY:
            text = field_.why and self.with_sources(field_.why, field_.sources)
            return say(text or self.spec.t("no_why"))
        if step.kind == "consent":
            return self.consent(action.verb == Verb.YES)
        if self.state.endswith(".more"):
            return self.more(step, action)
        if self.state.endswith(".item"):
            return review.item_menu_action(self, step, action)
        if step.kind == "review":
            return review.review_action(self, action)
        if step.kind == "outcome":
            return outcomes.outcome_action(self, step, action)
        pending = draft.pending
        if action.is_understood and pending and pending.field == field_.id:
            return self.understood_action(field_, action)
        if action.verb == Verb.SKIP and field_.optional:
            return self.store(field_, Valid(None, ""))
        if action.verb == Verb.CURRENT:
            return self.after_answer()
        if action.verb == Verb.AS_TYPED and draft.last_bad:
            raw = draft.last_bad
            return self.store(
                field_, A.as_typed(field_, raw), typed=raw, flagged=draft.last_error or ""
            )
        if action.verb == Verb.SUGGESTION and field_.suggest and action.number is not None:
            names = A.suggestions(draft, field_)
            if action.number < len(names):
                name = names[action.number]
                return self.store(field_, Valid(name, name))
        chosen = action.number if action.verb == Verb.CHOOSE else None
        if field_.kind == "choice" and chosen is not None and chosen < len(field_.choices):
            choice = field_.choices[chosen]
            return self.store(field_, Valid(choice.value, choice.label))
        if field_.kind == "multi_choice":
            return self.multi(field_, action)
        return self.stale()

    def typed_choice(self, folded: str) -> Report:
        """Typed text on a buttons-only step: match a button label, else ask to use them."""
        if folded:
            wanted = A.fold_label(folded)
            for button in prompts.buttons(self):
                label = A.fold_label(button.label)
                if label == wanted or label.startswith(folded):
                    return self.on_action(read_payload(button.payload).action)
        return say(self.spec.t("use_buttons"))

    # ------------------------------------------------------------------ questions mid-form
    def is_question(self, field_: Step, text: str) -> bool:
        """True when typed text looks like a question rather than an answer."""
        stripped = text.strip()
        if len(stripped) > 300 or self.ports.qa is None:
            return False
        starts = bool(QUESTION_START.match(stripped))
        ends = stripped.endswith("?")
        if field_.accepts_questions:
            return starts and ends and len(stripped) < 150
        if field_.kind in ("email", "phone"):
            return (starts or ends) and isinstance(self.check_quietly(field_, stripped), Invalid)
        return starts or ends

    @staticmethod
    def check_quietly(field_: Step, text: str) -> Valid | Invalid:
        """The field's validator on text, without the turn's date."""
        if field_.validator is None:
            return Invalid("none")
        return get_validator(field_.validator)(text, Rules(max_length=field_.max_length))

    def ask(self, text: str) -> QAAnswer | None:
        """The texts' answer to a question asked mid-form; None if abstained or failing."""
        assert self.ports.qa is not None
        try:
            answer = self.ports.qa.answer(text)
        except Exception:  # the form must go on even if question answering fails
            log.exception("question answering failed mid-form")
            return None
        if answer is None or getattr(answer, "abstained", True):
            return None
        return answer

    def with_sources(self, text: str, sources: list[str]) -> str:
        """`text` and its « Sources » line."""
        if not sources:
            return text
        return self.citations.with_sources(text, sources, self.ctx.qa)

    # ------------------------------------------------------------------ understood answers
    def understand(self, field_: Step, result: Valid) -> Report:
        """Read the answer (a territory): show what was recognised and ask to confirm it.

        Never blocks: nothing recognised (or the understander failing) keeps the text as typed.
        """
        assert field_.understand is not None
        try:
            understood = get_understander(field_.understand).understand(str(result.value))
        except Exception:  # the form goes on whatever happens to the reading
            log.exception("understander %s failed", field_.understand)
            understood = None
        if understood is None:
            note = field_.understood_text("not_recognised", text=A.short(str(result.value), 80))
            return self.store(field_, result, understood=None).noted(note)
        self.draft.pending = Pending(field=field_.id, value=result.value, understood=understood)
        self.draft.visit += 1
        return Report()

    def names_something(self, field_: Step, text: str) -> bool:
        """True when the understander recognises something in the text."""
        assert field_.understand is not None
        try:
            return get_understander(field_.understand).understand(text) is not None
        except Exception:
            log.exception("understander %s failed", field_.understand)
            return False

    def understood_action(self, field_: Step, action: Action) -> Report:
        """The confirmation's buttons: confirm, correct, keep as typed, pick a homonym."""
        assert field_.understand is not None
        pending = self.draft.pending
        assert pending is not None
        understander = get_understander(field_.understand)
        understood = pending.understood
        value = pending.value
        if action.verb == Verb.FIX:
            self.draft.pending = None
            self.draft.visit += 1
            return Report().noted(field_.understood_text("fix_prompt"))
        if action.verb == Verb.KEEP_TYPED:
            return self.store(field_, Valid(value, value), understood=None)
        if action.verb == Verb.CANDIDATE:
            understood = understander.settle(understood, 0, action.number)
            pending.understood = understood
            if not understood.get("communes") and not understood.get("ambiguities"):
                note = field_.understood_text("not_recognised", text=A.short(str(value), 80))
                return self.store(field_, Valid(value, value), understood=None).noted(note)
            self.draft.visit += 1
            return Report()
        if action.verb == Verb.CONFIRM and not understood.get("ambiguities"):
            return self.store(field_, Valid(value, value), understood=understood)
        return self.stale()

    # ------------------------------------------------------------------ storing answers
    def store(
        self,
        field_: Step,
        result: Valid,
        typed: str = "",
        flagged: str | None = None,
        understood: dict[str, Any] | None = None,
    ) -> Report:
        """Store a valid answer where it belongs (group item or answers) and move on."""
        draft = self.draft
        step, sub = self.current()
        path = A.path_of(draft, step, sub)
        A.put(draft, step, sub, result, understood)
        if flagged or draft.flags:
            label = A.flag_label(draft, step, sub)
            draft.set_flag(path, typed if flagged else None, flagged, label)
        draft.fails.pop(path, None)
        note = ""
        if result.display and typed and result.display != typed.strip():
            note = self.spec.t("noted", value=result.display)
        return self.after_answer().noted(note)

    def after_answer(self) -> Report:
        """Advance after an answer; while editing from the review, go back to it."""
        draft = self.draft
        step, sub = self.current()
        if draft.return_to == REVIEW and not draft.adding:
            next_state = self.machine.fire_on(draft, ADVANCE)
            _, nxt = self.spec.locate.get(next_state, (None, None))
            if (
                sub is not None
                and nxt is not None
                and nxt.ask_if
                and next_state.startswith(f"{step.id}.")
            ):
                self.jump(next_state, draft.item, push=False)
                return Report()
            return self.to_review()
        state = self.move(ADVANCE)
        if state.endswith(".more") and draft.return_to == REVIEW:
            return self.to_review()
        if state.endswith(".more"):
            group = self.spec.locate[state][0]
            if len(draft.answers.get(group.id) or []) >= group.max_items:
                self.move(ADVANCE)
        if state == DONE:
            return self.finish_outcomeless()
        return Report()

    def to_review(self) -> Report:
        """Back to the review (after an edit); incomplete items dropped."""
        self.draft.return_to = None
        self.draft.adding = False
        A.prune(self.spec, self.draft)
        self.jump(REVIEW, 0, push=False)
        self.draft.history.clear()
        return Report()

    def refuse(self, field_: Step, error: Invalid, typed: str) -> Report:
        """Say what is wrong with an example; after 3 failures, offer a way on."""
        draft = self.draft
        step, sub = self.current()
        path = A.path_of(draft, step, sub)
        draft.fails[path] = draft.fails.get(path, 0) + 1
        message = self.error_text(field_, error)
        keep = typed.strip()[: field_.max_length]
        if keep:
            draft.last_bad = keep
            draft.last_error = message
        if draft.fails[path] >= MAX_FAILS and field_.kind not in ("choice", "multi_choice"):
            return Report(said=[message], then=Then.WAY_ON, offer_keep=bool(keep))
        return say(message, Then.REMINDER)

    def error_text(self, field_: Step, error: Invalid) -> str:
        """The field's (or the form's) text for a validator's error, filled."""
        template = field_.errors.get(error.code) or self.spec.errors.get(error.code)
        if template is None:
            template = self.spec.errors.get("invalid", "Réponse non valide : {example}")
        values = {"label": field_.label, "example": field_.example, **error.params}
        try:
            return french_format(template, **values)
        except (KeyError, IndexError):
            return template

    def multi(self, field_: Step, action: Action) -> Report:
        """Toggle a box (the same message is edited in place) or validate the selection."""
        answers = self.draft.answers
        selected = set(answers.get(field_.id) or [])
        if action.verb == Verb.OK:
            if len(selected) < field_.min_choices:
                return say(self.error_text(field_, Invalid("multi_empty")))
            answers[field_.id] = A.ordered(field_, selected)
            if field_.id in self.draft.prefilled:
                self.draft.prefilled.remove(field_.id)
            return self.after_answer()
        ticked = action.number if action.verb == Verb.TICK else None
        if ticked is not None and ticked < len(field_.choices):
            selected ^= {field_.choices[ticked].value}
            answers[field_.id] = A.ordered(field_, selected)
            return Report()
        return self.stale()

    def consent(self, yes: bool) -> Report:
        """Record the agreement (consent_at) and ask the first question; or leave, storing nothing."""
        step, _ = self.current()
        if not yes:
            self.discard()
            self.ctx.finish()
            return say(step.text("refused"), Then.MENU)
        self.ctx.conversation.consent_at = self.ctx.now
        self.move(ADVANCE, push=False)
        return Report()

    def more(self, group: Step, action: Action) -> Report:
        """Add another item to a group, or go on to the next step."""
        items = self.draft.answers.get(group.id) or []
        if action.verb == Verb.ADD and len(items) < group.max_items:
            self.move(ADD_ITEM, item=len(items))
            return Report()
        if action.verb == Verb.DONE:
            A.prune(self.spec, self.draft)
            if self.draft.return_to == REVIEW:
                return self.to_review()
            state = self.move(ADVANCE)
            if state == DONE:
                return self.finish_outcomeless()
            return Report()
        return self.stale()

    def go_back(self) -> Report:
        """Go back to the previous step (its answer is kept and shown)."""
        draft = self.draft
        while draft.history:
            state, item = draft.history.pop()
            if state in self.spec.locate and not draft.is_prefilled(state):
                draft.adding = False
                if state == REVIEW:
                    draft.return_to = None
                self.set_state(state, int(item))
                return say(self.spec.t("went_back"))
        if draft.step != REVIEW and self.spec.has_review and draft.return_to:
            return self.to_review()
        return say(self.spec.t("no_back"))

    def enter_group_field(self, group: Step, sub: Step, index: int) -> None:
        """Edit one field of one item (from the item's menu)."""
        self.jump(state_of(group, sub), index)

    def finish_outcomeless(self) -> Report:
        """The end of a form without a review or an outcome."""
        self.discard()
        self.ctx.finish()
        return say(self.spec.t("finished"), Then.MENU)
