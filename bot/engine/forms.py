"""The YAML form runner: any `dialogues/*.yaml` declaring `flow:` becomes a `Flow`.

The YAML lists steps (questions, repeatable groups, review, outcomes); `FormSpec` turns them
into plain lists of states and transitions (conditions are data: `when:` / `ask_if:`
dictionaries evaluated on the answers), indexed once per spec by (state, trigger); `FormFlow`
fires them on the state kept in `ctx.flow_data(name)` with the `transitions` library's
semantics (first transition whose conditions hold) but without a Machine, a model or a lock per
turn — nothing lives in process memory, so a new engine on the same database resumes exactly
where the user was. `FormSpec.machine()` builds the equivalent `transitions` Machine (tests).

Button payloads are `<flow>:<visit>:<action>`: `visit` changes whenever the step changes, so a
button of an old message is recognised as stale and never corrupts answers.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transitions import Machine

from bot.engine.messages import (
    Button,
    Document,
    Incoming,
    Kind,
    Reply,
    french_format,
    split_lines,
)
from bot.engine.validators import Invalid, Rules, Valid, get_understander, get_validator

NOTICE_PLACEHOLDER = re.compile(r"\{notice\.(\w+)\}")  # configured durations and contacts
CODE_LIKE = re.compile(r"[0-9][0-9 ]{3,10}[0-9]")  # a verification code typed at the review
ARS_CONTACT_TEXT = "Ronan Derieux, 02 22 06 73 54, ronan.derieux@ars.sante.fr"

if TYPE_CHECKING:
    from bot.engine.flow import TurnContext

log = logging.getLogger(__name__)

QUESTION_KINDS = {"text", "email", "phone", "date_or_period", "choice", "multi_choice"}
STEP_KINDS = QUESTION_KINDS | {"consent", "group", "review", "outcome"}
DEFAULT_VALIDATORS = {
    "text": "text",
    "email": "email",
    "phone": "phone",
    "date_or_period": "date_or_period",
}
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
MAX_HISTORY = 60
MAX_CHARS = 900  # a message read on a phone: longer citations fall back to document names
MAX_FAILS = 3
REVIEW = "review"
DONE = "submitted"
AMI_FORM = "ami_bretagne"


# =========================================================================== the YAML schema
@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: str


@dataclass
class Step:
    """One step (or one field of a repeatable group) as declared in the YAML."""

    id: str
    kind: str
    label: str = ""
    prompt: str = ""
    why: str = ""
    example: str = ""
    validator: str | None = None
    optional: bool = False
    max_length: int = 4000
    min_length: int = 1
    errors: dict[str, str] = field(default_factory=dict)
    choices: list[Choice] = field(default_factory=list)
    min_choices: int = 1
    ask_if: dict[str, Any] | None = None
    next: list[dict[str, Any]] = field(default_factory=list)
    store_display: bool = False
    in_summary: bool = True
    parts: list[str] = field(default_factory=list)  # an outcome's `prompt` given as a list
    suggest: dict[str, str] | None = None
    accepts_questions: bool = False
    understand: str | None = None  # an understander's name (`bot.engine.validators`)
    raw: dict[str, Any] = field(default_factory=dict)
    # groups
    fields: list[Step] = field(default_factory=list)
    min_items: int = 1
    max_items: int = 20
    # outcomes
    buttons: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Step:
        kind = str(raw.get("kind", "text"))
        validator = raw.get("validator") or DEFAULT_VALIDATORS.get(kind)
        prompt = raw.get("prompt", "")
        parts = [str(p) for p in prompt] if isinstance(prompt, list) else [str(prompt)]
        return cls(
            id=str(raw["id"]),
            kind=kind,
            label=str(raw.get("label", raw["id"])),
            prompt="\n\n".join(parts),
            parts=parts,
            why=str(raw.get("why", "")),
            example=str(raw.get("example", "")),
            validator=validator,
            optional=bool(raw.get("optional", False)),
            max_length=int(raw.get("max_length", 4000)),
            min_length=int(raw.get("min_length", 1)),
            errors=dict(raw.get("errors") or {}),
            choices=[Choice(str(c["value"]), str(c["label"])) for c in raw.get("choices") or []],
            min_choices=int(raw.get("min", 1)) if kind == "multi_choice" else 1,
            ask_if=raw.get("ask_if"),
            next=list(raw.get("next") or []),
            store_display=bool(raw.get("store_display", False)),
            in_summary=bool(raw.get("in_summary", True)),
            suggest=raw.get("suggest"),
            accepts_questions=bool(raw.get("accepts_questions", False)),
            understand=raw.get("understand"),
            raw=raw,
            fields=[cls.parse(f) for f in raw.get("fields") or []],
            min_items=int(raw.get("min", 1)) if kind == "group" else 1,
            max_items=int(raw.get("max", 20)) if kind == "group" else 1,
            buttons=list(raw.get("buttons") or []),
            sources=[str(s) for s in raw.get("sources") or []],
        )

    def text(self, key: str, default: str = "") -> str:
        return str(self.raw.get(key, default))

    def understood_text(self, key: str, **values: Any) -> str:
        """A text of the step's `understood:` block (the confirmation of what was read)."""
        text = str((self.raw.get("understood") or {}).get(key, ""))
        try:
            return french_format(text, **values) if values else text
        except (KeyError, IndexError):
            return text

    def choice_label(self, value: Any) -> str:
        for choice in self.choices:
            if choice.value == value:
                return choice.label
        return str(value)


def state_of(step: Step, sub: Step | None = None) -> str:
    return f"{step.id}.{sub.id}" if sub is not None else step.id


class Condition:
    """A `when:` dictionary evaluated on the answers: equals, in, has, is_set, not; any/all."""

    def __init__(self, when: dict[str, Any], negate: bool = False) -> None:
        self.when = when
        self.negate = negate

    def __call__(self, event: Any) -> bool:
        return self.holds(event.model.scope())

    def holds(self, scope: dict[str, Any]) -> bool:
        result = evaluate(self.when, scope)
        return not result if self.negate else result

    def __repr__(self) -> str:
        text = describe(self.when)
        return f"not ({text})" if self.negate else text


def evaluate(when: dict[str, Any], scope: dict[str, Any]) -> bool:
    """True when every key of `when` holds on `scope` (answers, or a group item over them)."""
    for key, test in when.items():
        if key == "any":
            if not any(evaluate(w, scope) for w in test):
                return False
            continue
        if key == "all":
            if not all(evaluate(w, scope) for w in test):
                return False
            continue
        value = scope.get(key)
        if isinstance(test, dict):
            for op, arg in test.items():
                if op == "equals" and value != arg:
                    return False
                if op == "in" and value not in arg:
                    return False
                if op == "has" and not (isinstance(value, list) and arg in value):
                    return False
                if op == "is_set" and (value not in (None, "", [], {})) != bool(arg):
                    return False
                if op == "not" and value == arg:
                    return False
        elif isinstance(test, list):
            if value not in test:
                return False
        elif value != test:
            return False
    return True


def describe(when: dict[str, Any]) -> str:
    parts = []
    for key, test in when.items():
        if key in ("any", "all"):
            joiner = " or " if key == "any" else " and "
            parts.append("(" + joiner.join(describe(w) for w in test) + ")")
        elif isinstance(test, dict):
            parts.extend(f"{key} {op} {arg}" for op, arg in test.items())
        else:
            parts.append(f"{key} = {test}")
    return " and ".join(parts)


class FormSpec:
    """A parsed dialogue file: its steps, and the machine's states and transitions."""

    def __init__(self, data: dict[str, Any], path: Path | None = None) -> None:
        self.data = data
        self.path = path
        self.name = str(data["flow"])
        self.title = str(data.get("title", self.name))
        self.form_title = str(data.get("form_title", self.title))
        self.texts: dict[str, Any] = dict(data.get("texts") or {})
        self.errors: dict[str, str] = dict(data.get("errors") or {})
        self.reference_prefix = str(data.get("reference_prefix", "AMI"))
        self.recipient: dict[str, Any] = dict(data.get("recipient") or {})
        # doc_id → the short name a citation gives it (else the knowledge base's short title)
        self.documents: dict[str, str] = {
            str(k): str(v) for k, v in (data.get("documents") or {}).items()
        }
        self.max_chars = int(data.get("max_chars", MAX_CHARS))
        self.steps = [Step.parse(s) for s in data.get("steps") or []]
        self.by_id = {s.id: s for s in self.steps}
        self.states: list[str] = []
        self.transitions: list[dict[str, Any]] = []
        self.locate: dict[str, tuple[Step, Step | None]] = {}
        self._build()
        # (source, trigger) → its transitions in order: what a turn fires, without a Machine
        self.table: dict[tuple[str, str], list[tuple[str, list[Condition], list[Condition]]]] = {}
        for t in self.transitions:
            self.table.setdefault((t["source"], t["trigger"]), []).append(
                (t["dest"], list(t.get("conditions") or []), list(t.get("unless") or []))
            )

    @classmethod
    def load(cls, path: Path) -> FormSpec:
        """Read a flow file through its schema (bot/schema/form.py): `SchemaError` if broken."""
        from bot.schema.dialogues import read_form

        return cls(read_form(path), path)

    # --- states and transitions --------------------------------------------------------
    def entry(self, step: Step) -> str:
        return state_of(step, step.fields[0]) if step.kind == "group" else step.id

    def exit(self, step: Step) -> str:
        return f"{step.id}.more" if step.kind == "group" else step.id

    def _build(self) -> None:
        for step in self.steps:
            if step.kind == "group":
                for sub in step.fields:
                    self._add_state(state_of(step, sub), step, sub)
                self._add_state(f"{step.id}.more", step, None)
                self._add_state(f"{step.id}.item", step, None)
            else:
                self._add_state(step.id, step, None)
        self.states.append(DONE)
        for index, step in enumerate(self.steps):
            if step.kind == "group":
                self._chain(step.fields, functools.partial(state_of, step), f"{step.id}.more")
                self.transitions.append(
                    {"trigger": "add_item", "source": f"{step.id}.more", "dest": self.entry(step)}
                )
            if step.kind == "consent":
                self.transitions.append({"trigger": "refuse", "source": step.id, "dest": DONE})
            if step.kind == "review":
                self.transitions.append({"trigger": "submit", "source": step.id, "dest": DONE})
            if step.kind in ("outcome", "review"):
                continue
            source = self.exit(step)
            for rule in step.next:
                dest = self._goto(rule["goto"])
                cond = [Condition(rule["when"])] if rule.get("when") else []
                self.transitions.append(
                    {"trigger": "advance", "source": source, "dest": dest, "conditions": cond}
                )
            if not any("when" not in rule for rule in step.next):
                self._chain_top(index, source)

    def _goto(self, target: str) -> str:
        if target in (DONE, "end"):
            return DONE
        step = self.by_id.get(target)
        if step is None:
            return target  # the linter reports it
        return self.entry(step)

    def _chain_top(self, index: int, source: str) -> None:
        """From a step to the next ones, skipping those whose `ask_if` does not hold."""
        unless: list[Condition] = []
        for later in self.steps[index + 1 :]:
            cond = [Condition(later.ask_if)] if later.ask_if else []
            self.transitions.append(
                {
                    "trigger": "advance",
                    "source": source,
                    "dest": self.entry(later),
                    "conditions": cond,
                    "unless": list(unless),
                }
            )
            if not later.ask_if:
                return
            unless.append(Condition(later.ask_if))
        self.transitions.append(
            {"trigger": "advance", "source": source, "dest": DONE, "unless": list(unless)}
        )

    def _chain(self, fields: list[Step], name: Callable[[Step], str], end: str) -> None:
        for i, sub in enumerate(fields):
            unless: list[Condition] = []
            for later in fields[i + 1 :]:
                cond = [Condition(later.ask_if)] if later.ask_if else []
                self.transitions.append(
                    {
                        "trigger": "advance",
                        "source": name(sub),
                        "dest": name(later),
                        "conditions": cond,
                        "unless": list(unless),
                    }
                )
                if not later.ask_if:
                    break
                unless.append(Condition(later.ask_if))
            else:
                self.transitions.append(
                    {"trigger": "advance", "source": name(sub), "dest": end, "unless": list(unless)}
                )

    def _add_state(self, name: str, step: Step, sub: Step | None) -> None:
        self.states.append(name)
        self.locate[name] = (step, sub)

    def fire(self, state: str, trigger: str, scope: Callable[[], dict[str, Any]]) -> str:
        """The state `trigger` leads to from `state`: the first transition whose conditions hold
        and whose `unless` do not (the `transitions` semantics), else `state` (ignored)."""
        rules = self.table.get((state, trigger))
        if not rules:
            return state
        answers = scope()
        for dest, conditions, unless in rules:
            if all(c.holds(answers) for c in conditions) and not any(
                c.holds(answers) for c in unless
            ):
                return dest
        return state

    def machine(self) -> Machine:
        """The same states and transitions as a `transitions` Machine (tests, tooling)."""
        return Machine(
            model=None,
            states=list(self.states),
            transitions=[dict(t) for t in self.transitions],
            initial=self.states[0],
            auto_transitions=True,
            send_event=True,
            ignore_invalid_triggers=True,
        )

    # --- texts -------------------------------------------------------------------------
    def t(self, key: str, **values: Any) -> str:
        text = str(self.texts.get(key, key))
        return french_format(text, **values) if values else text

    def choice_labels(self, step_id: str) -> dict[str, str]:
        step = self.by_id[step_id]
        return {c.value: c.label for c in step.choices}


# =========================================================================== per-turn model
class FormModel:
    """What the machine's conditions see: the draft's answers and the current group item."""

    def __init__(self, data: dict[str, Any], spec: FormSpec) -> None:
        self.data = data
        self.spec = spec
        self.state: str = data.get("step") or spec.states[0]

    def scope(self) -> dict[str, Any]:
        answers = self.data.setdefault("answers", {})
        step, _sub = self.spec.locate.get(self.state, (None, None))
        if step is not None and step.kind == "group":
            items = answers.get(step.id) or []
            index = self.data.get("item", 0)
            if 0 <= index < len(items):
                return {**answers, **items[index]}
        return answers


# =========================================================================== the flow
class FormFlow:
    """Runs one dialogue YAML: prompts, validation, back, review, submission, outcomes."""

    def __init__(self, spec: FormSpec, app: Any = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.title = spec.title
        self.app = app
        self._citations: dict[tuple[tuple[str, ...], bool], str] = {}
        for step in spec.steps:
            if step.understand:  # a turn must not pay for loading the territory data
                get_understander(step.understand).warm()

    # ------------------------------------------------------------------ Flow protocol
    def start(self, ctx: TurnContext, prefill: dict[str, Any]) -> list[Reply]:
        """Begin the form (or merge a prefill into the draft) and ask the first step."""
        data = ctx.flow_data(self.name)
        if not self.has_progress(ctx):
            data.clear()
            data.update({"answers": {}, "visit": 0, "history": [], "fails": {}})
            self._set_state(ctx, data, self.spec.states[0], 0)
        notes = self._apply_prefill(data, prefill)
        step, _ = self._current(data)
        if step.kind == "consent" and ctx.conversation.consent_at is not None:
            self._move(ctx, data, "advance", push=False)
        return self._with_note(notes, self.prompt(ctx))

    def has_progress(self, ctx: TurnContext) -> bool:
        """True when the draft holds at least one answer."""
        data = ctx.conversation.data.get(self.name) or {}
        answers = data.get("answers") or {}
        return any(v not in (None, "", [], {}) for k, v in answers.items() if k != "flags")

    def prompt(self, ctx: TurnContext) -> list[Reply]:
        """Ask the current step again."""
        data = ctx.flow_data(self.name)
        if "step" not in data:
            data.update({"answers": {}, "visit": 0, "history": [], "fails": {}})
            self._set_state(ctx, data, self.spec.states[0], 0)
        return self._render(ctx, data)

    def handle(self, ctx: TurnContext, incoming: Incoming) -> list[Reply]:
        """Route a typed answer or a button of this flow to the current step."""
        data = ctx.flow_data(self.name)
        if "step" not in data:
            return self.start(ctx, {})
        if incoming.kind == Kind.CHOICE:
            _, _, rest = incoming.text.partition(":")
            visit, _, action = rest.partition(":")
            if visit != str(data.get("visit")):
                return [Reply(self.spec.t("stale")), *self._render(ctx, data)]
            return self._action(ctx, data, action)
        return self._typed(ctx, data, incoming.text)

    # ------------------------------------------------------------------ state handling
    def _current(self, data: dict[str, Any]) -> tuple[Step, Step | None]:
        state = data.get("step") or self.spec.states[0]
        if state not in self.spec.locate:
            state = REVIEW if REVIEW in self.spec.locate else self.spec.states[0]
            data["step"] = state
        return self.spec.locate[state]

    def _set_state(self, ctx: TurnContext, data: dict[str, Any], state: str, item: int) -> None:
        data["step"] = state
        data["item"] = item
        data["visit"] = int(data.get("visit", 0)) + 1
        data.pop("last_bad", None)
        data.pop("pending", None)
        ctx.conversation.state = state[:128]

    def _fire(self, data: dict[str, Any], trigger: str) -> str:
        """Fire `trigger` from the draft's state (group item in scope); return the new state."""
        model = FormModel(data, self.spec)
        return self.spec.fire(model.state, trigger, model.scope)

    def _move(
        self,
        ctx: TurnContext,
        data: dict[str, Any],
        trigger: str,
        push: bool = True,
        item: int | None = None,
    ) -> str:
        """Fire a trigger, skip prefilled steps, record history, bump the visit."""
        previous = (data["step"], data.get("item", 0))
        state = self._fire(data, trigger)
        guard = 0
        while self._is_prefilled(data, state) and guard < len(self.spec.states):
            data["step"] = state
            state = self._fire(data, "advance")
            guard += 1
        if push:
            history: list[list[Any]] = data.setdefault("history", [])
            history.append(list(previous))
            del history[:-MAX_HISTORY]
        if item is None:
            same_step = (
                self.spec.locate.get(state, (None,))[0]
                is self.spec.locate.get(previous[0], (None,))[0]
            )
            item = data.get("item", 0) if same_step else 0
        self._set_state(ctx, data, state, item)
        return state

    def _is_prefilled(self, data: dict[str, Any], state: str) -> bool:
        return state in (data.get("prefilled") or []) and data.get("return_to") is None

    def _jump(
        self, ctx: TurnContext, data: dict[str, Any], state: str, item: int = 0, push: bool = True
    ) -> None:
        if push:
            history: list[list[Any]] = data.setdefault("history", [])
            history.append([data["step"], data.get("item", 0)])
            del history[:-MAX_HISTORY]
        self._set_state(ctx, data, state, item)

    # ------------------------------------------------------------------ typed text
    def _typed(self, ctx: TurnContext, data: dict[str, Any], text: str) -> list[Reply]:
        step, sub = self._current(data)
        field_ = sub or step
        if step.kind == "review" and data.get("verifying") and CODE_LIKE.fullmatch(text.strip()):
            return self._check_code(ctx, data, text)
        folded = text.strip().lower().strip(" .!")
        if folded in BACK_WORDS:
            return self._back(ctx, data)
        pending = data.get("pending")
        if pending and pending.get("field") == field_.id and sub is None:
            yes = _fold_label(folded.replace("’", "'"))
            if yes in YES_WORDS or yes == _fold_label(field_.understood_text("confirm")):
                return self._action(ctx, data, "u.ok")
            if not self._names_something(field_, text):
                # not a territory (the next answer typed too early?): the buttons decide
                return [Reply(self.spec.t("use_buttons")), *self._render(ctx, data)]
            data.pop("pending", None)  # a corrected territory: read it afresh
        if self._is_question(field_, text):
            answered = self._answer_question(ctx, data, text)
            if answered is not None:
                return answered
            if field_.validator in ("name", "label") and text.strip().endswith("?"):
                # not an answer, and the texts do not answer it: say so, ask again
                return [Reply(self.spec.t("question_unanswered")), *self._render(ctx, data)]
        state = data["step"]
        if (
            state.endswith(".more")
            or state.endswith(".item")
            or step.kind in ("consent", "review", "outcome")
        ):
            return self._typed_choice(ctx, data, step, folded)
        if folded in SKIP_WORDS and field_.optional:
            return self._action(ctx, data, "skip")
        if field_.kind == "choice":
            choice = _match_choice(field_.choices, folded)
            if choice is None:
                return self._refuse(ctx, data, field_, Invalid("choice_unknown"), text)
            return self._store(ctx, data, field_, Valid(choice.value, choice.label))
        if field_.kind == "multi_choice":
            if folded in DONE_WORDS:
                return self._action(ctx, data, "ok")
            picked = [
                c
                for part in re.split(r"[,;/]| et ", folded)
                if part.strip()
                for c in [_match_choice(field_.choices, part.strip())]
                if c
            ]
            if not picked:
                return self._refuse(ctx, data, field_, Invalid("choice_unknown"), text)
            data["answers"][field_.id] = self._ordered(field_, {c.value for c in picked})
            return self._action(ctx, data, "ok")
        result = self._validate(ctx, field_, text)
        if isinstance(result, Invalid):
            return self._refuse(ctx, data, field_, result, text)
        if field_.understand and sub is None:
            return self._understand(ctx, data, field_, result, text)
        return self._store(ctx, data, field_, result, typed=text)

    # ------------------------------------------------------------------ understood answers
    def _understand(
        self, ctx: TurnContext, data: dict[str, Any], field_: Step, result: Valid, typed: str
    ) -> list[Reply]:
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
            note = field_.understood_text("not_recognised", text=_short(str(result.value), 80))
            return self._with_note(note, self._store(ctx, data, field_, result, understood=None))
        data["pending"] = {"field": field_.id, "value": result.value, "understood": understood}
        data["visit"] = int(data.get("visit", 0)) + 1
        return self._render(ctx, data)

    def _names_something(self, field_: Step, text: str) -> bool:
        assert field_.understand is not None
        try:
            return get_understander(field_.understand).understand(text) is not None
        except Exception:
            log.exception("understander %s failed", field_.understand)
            return False

    def _understood_action(
        self, ctx: TurnContext, data: dict[str, Any], field_: Step, action: str
    ) -> list[Reply]:
        """The confirmation's buttons: confirm, correct, keep as typed, pick a homonym."""
        assert field_.understand is not None
        pending = data["pending"]
        understander = get_understander(field_.understand)
        understood = pending["understood"]
        value = pending["value"]
        if action == "u.fix":
            data.pop("pending", None)
            data["visit"] = int(data.get("visit", 0)) + 1
            return self._with_note(field_.understood_text("fix_prompt"), self._render(ctx, data))
        if action == "u.asis":
            return self._store(ctx, data, field_, Valid(value, value), understood=None)
        if action.startswith("u.a"):
            choice = action[3:]
            candidate = int(choice) if choice.isdigit() else None
            understood = understander.settle(understood, 0, candidate)
            pending["understood"] = understood
            if not understood.get("communes") and not understood.get("ambiguities"):
                note = field_.understood_text("not_recognised", text=_short(str(value), 80))
                store = self._store(ctx, data, field_, Valid(value, value), understood=None)
                return self._with_note(note, store)
            data["visit"] = int(data.get("visit", 0)) + 1
            return self._render(ctx, data)
        if action == "u.ok" and not understood.get("ambiguities"):
            return self._store(ctx, data, field_, Valid(value, value), understood=understood)
        return [Reply(self.spec.t("stale")), *self._render(ctx, data)]

    def _confirmation(self, data: dict[str, Any], field_: Step) -> Reply:
        """« J'ai reconnu : … — 3 communes, environ 15 300 habitants … » with its buttons."""
        assert field_.understand is not None
        understood = data["pending"]["understood"]
        p = lambda action: self._payload(data, action)  # noqa: E731
        t = field_.understood_text
        ambiguities = understood.get("ambiguities") or []
        if ambiguities:
            first = ambiguities[0]
            buttons = [
                [
                    Button(
                        _short(
                            t(
                                "candidate",
                                name=c["name"],
                                departement=c["departement"],
                                population=f"{c['population']:,}".replace(",", " "),
                            ),
                            60,
                        ),
                        p(f"u.a{i}"),
                    )
                ]
                for i, c in enumerate(first.get("candidates", [])[:8])
            ]
            buttons.append([Button(t("none_of_them"), p("u.an"))])
            buttons.append([Button(t("fix"), p("u.fix")), Button(self.spec.t("back"), p("back"))])
            return Reply(t("ambiguous", name=first.get("text", "")), buttons)
        values = get_understander(field_.understand).values(understood)
        lines = [t("prompt", **values)]
        if values.get("unresolved"):
            lines.append(t("unresolved", **values))
        if values.get("small"):
            lines.append(t("small", **values))
        lines.append(t("question", **values))
        buttons = [
            [Button(t("confirm"), p("u.ok"))],
            [Button(t("fix"), p("u.fix"))],
            [Button(t("keep"), p("u.asis"))],
            [Button(self.spec.t("back"), p("back"))],
        ]
        return Reply("\n\n".join(line for line in lines if line), buttons)

    def _typed_choice(
        self, ctx: TurnContext, data: dict[str, Any], step: Step, folded: str
    ) -> list[Reply]:
        """Typed text on a buttons-only step: match a button label, else re-prompt."""
        replies = self._render(ctx, data)
        for reply in replies:
            for row in reply.buttons:
                for button in row:
                    label = _fold_label(button.label)
                    if folded and (label == _fold_label(folded) or label.startswith(folded)):
                        return self._action(ctx, data, button.payload.split(":", 2)[2])
        return [Reply(self.spec.t("use_buttons")), *replies]

    def _validate(self, ctx: TurnContext, field_: Step, text: str) -> Valid | Invalid:
        rules = Rules(max_length=field_.max_length, min_length=field_.min_length, now=ctx.now)
        assert field_.validator is not None
        return get_validator(field_.validator)(text, rules)

    def _is_question(self, field_: Step, text: str) -> bool:
        stripped = text.strip()
        if len(stripped) > 300 or self.app is None:
            return False
        starts = bool(QUESTION_START.match(stripped))
        ends = stripped.endswith("?")
        if field_.accepts_questions:
            return starts and ends and len(stripped) < 150
        if field_.kind in ("email", "phone"):
            return (starts or ends) and isinstance(self._validate_safe(field_, stripped), Invalid)
        return starts or ends

    def _validate_safe(self, field_: Step, text: str) -> Valid | Invalid:
        if field_.validator is None:
            return Invalid("none")
        return get_validator(field_.validator)(text, Rules(max_length=field_.max_length))

    def _answer_question(
        self, ctx: TurnContext, data: dict[str, Any], text: str
    ) -> list[Reply] | None:
        """Answer a question asked mid-form from the texts, then resume; None if abstained."""
        try:
            answer = ctx.qa.answer(text)
        except Exception:  # the form must go on even if question answering fails
            log.exception("question answering failed mid-form")
            return None
        if answer is None or getattr(answer, "abstained", True):
            return None
        engine = getattr(self.app, "engine", None)
        if engine is not None and hasattr(engine, "render_answer"):
            replies = list(engine.render_answer(ctx, answer))
            for reply in replies:  # no "Menu" button here: the form goes on
                reply.buttons = [
                    [b for b in row if not b.payload.startswith("menu:")] for row in reply.buttons
                ]
                reply.buttons = [row for row in reply.buttons if row]
        else:
            replies = [Reply(answer.text)]
        prompt = self._render(ctx, data)
        if prompt:
            prompt[0].text = self.spec.t("resume_form") + "\n" + prompt[0].text
        return replies + prompt

    # ------------------------------------------------------------------ storing answers
    def _store(
        self,
        ctx: TurnContext,
        data: dict[str, Any],
        field_: Step,
        result: Valid,
        typed: str = "",
        flagged: str | None = None,
        understood: Any = None,
    ) -> list[Reply]:
        """Store a valid answer where it belongs (group item or answers) and move on.

        A step that is understood (`understand:`) also stores `<id>_understood`: what was
        recognised and confirmed, or None (nothing recognised, or kept as typed)."""
        step, sub = self._current(data)
        answers = data.setdefault("answers", {})
        path = self._path(data, step, sub)
        if sub is not None:
            items: list[dict[str, Any]] = answers.setdefault(step.id, [])
            index = data.get("item", 0)
            while len(items) <= index:
                items.append({})
            target = items[index]
        else:
            target = answers
        target[field_.id] = result.value
        if field_.understand and sub is None:
            if result.value in (None, ""):
                target.pop(f"{field_.id}_understood", None)
            else:
                target[f"{field_.id}_understood"] = understood
        if field_.store_display:
            target[f"{field_.id}_display"] = result.display
        prefilled = data.get("prefilled") or []
        if field_.id in prefilled and sub is None:
            prefilled.remove(field_.id)
        self._set_flag(
            answers, path, typed if flagged else None, flagged, self._flag_label(data, step, sub)
        )
        data.get("fails", {}).pop(path, None)
        note = ""
        if result.display and typed and result.display != typed.strip():
            note = self.spec.t("noted", value=result.display)
        return self._with_note(note, self._after_answer(ctx, data))

    def _set_flag(
        self,
        answers: dict[str, Any],
        path: str,
        value: str | None,
        reason: str | None,
        label: str = "",
    ) -> None:
        flags = [f for f in answers.get("flags", []) if f.get("field") != path]
        if value is not None and reason is not None:
            flags.append({"field": path, "label": label or path, "value": value, "reason": reason})
        if flags or "flags" in answers:
            answers["flags"] = flags

    def _flag_label(self, data: dict[str, Any], step: Step, sub: Step | None) -> str:
        """What people read for a kept-as-typed answer: « Référent 2 — Téléphone »."""
        if sub is None:
            return step.label or step.id
        item = step.text("item_label") or step.label or step.id
        return f"{item} {data.get('item', 0) + 1} — {sub.label or sub.id}"

    def _path(self, data: dict[str, Any], step: Step, sub: Step | None) -> str:
        if sub is None:
            return step.id
        return f"{step.id}[{data.get('item', 0)}].{sub.id}"

    def _after_answer(self, ctx: TurnContext, data: dict[str, Any]) -> list[Reply]:
        """Advance after an answer; while editing from the review, go back to it."""
        step, sub = self._current(data)
        if data.get("return_to") == REVIEW and not data.get("adding"):
            model_state = self._fire(dict(data), "advance")
            _, nxt = self.spec.locate.get(model_state, (None, None))
            if (
                sub is not None
                and nxt is not None
                and nxt.ask_if
                and model_state.startswith(f"{step.id}.")
            ):
                self._jump(ctx, data, model_state, data.get("item", 0), push=False)
                return self._render(ctx, data)
            return self._to_review(ctx, data)
        state = self._move(ctx, data, "advance")
        if state.endswith(".more") and data.get("return_to") == REVIEW:
            return self._to_review(ctx, data)
        if state.endswith(".more"):
            group = self.spec.locate[state][0]
            if len(data["answers"].get(group.id) or []) >= group.max_items:
                self._move(ctx, data, "advance")
        if state == DONE:
            return self._finish_outcomeless(ctx, data)
        return self._render(ctx, data)

    def _to_review(self, ctx: TurnContext, data: dict[str, Any]) -> list[Reply]:
        data.pop("return_to", None)
        data.pop("adding", None)
        self._prune(data)
        self._jump(ctx, data, REVIEW, 0, push=False)
        data["history"] = []
        return self._render(ctx, data)

    def _prune(self, data: dict[str, Any]) -> None:
        """Drop group items left incomplete (an item added then abandoned)."""
        for step in self.spec.steps:
            if step.kind != "group":
                continue
            items = data["answers"].get(step.id) or []
            required = [f.id for f in step.fields if not f.optional and not f.ask_if]
            kept = [i for i in items if all(i.get(r) not in (None, "") for r in required)]
            if len(kept) != len(items):
                data["answers"][step.id] = kept

    def _refuse(
        self, ctx: TurnContext, data: dict[str, Any], field_: Step, error: Invalid, typed: str
    ) -> list[Reply]:
        """Say what is wrong with an example; after 3 failures, offer a way on."""
        step, sub = self._current(data)
        path = self._path(data, step, sub)
        fails: dict[str, int] = data.setdefault("fails", {})
        fails[path] = fails.get(path, 0) + 1
        message = self._error_text(field_, error)
        keep = typed.strip()[: field_.max_length]
        if keep:
            data["last_bad"] = keep
            data["last_error"] = message
        replies = [Reply(message)]
        if fails[path] >= MAX_FAILS and field_.kind not in ("choice", "multi_choice"):
            buttons = []
            if keep:
                buttons.append([Button(self.spec.t("keep_as_typed"), self._payload(data, "asis"))])
            if field_.optional:
                buttons.append([Button(self.spec.t("skip"), self._payload(data, "skip"))])
            buttons.append([Button(self.spec.t("back"), self._payload(data, "back"))])
            replies.append(Reply(self.spec.t("way_on"), buttons))
            return replies
        return replies + self._render(ctx, data, reminder=True)

    def _error_text(self, field_: Step, error: Invalid) -> str:
        template = field_.errors.get(error.code) or self.spec.errors.get(error.code)
        if template is None:
            template = self.spec.errors.get("invalid", "Réponse non valide : {example}")
        values = {"label": field_.label, "example": field_.example, **error.params}
        try:
            return french_format(template, **values)
        except (KeyError, IndexError):
            return template

    # ------------------------------------------------------------------ buttons
    def _payload(self, data: dict[str, Any], action: str) -> str:
        payload = f"{self.name}:{data.get('visit', 0)}:{action}"
        assert len(payload.encode()) <= 60, payload
        return payload

    def _action(self, ctx: TurnContext, data: dict[str, Any], action: str) -> list[Reply]:
        step, sub = self._current(data)
        field_ = sub or step
        state = data["step"]
        if action == "back":
            return self._back(ctx, data)
        if action == "why":
            why = self._with_sources(ctx, field_.why, field_.sources) if field_.why else ""
            return [Reply(why or self.spec.t("no_why")), *self._render(ctx, data)]
        if step.kind == "consent":
            return self._consent(ctx, data, action == "yes")
        if state.endswith(".more"):
            return self._more(ctx, data, step, action)
        if state.endswith(".item"):
            return self._item_menu_action(ctx, data, step, action)
        if step.kind == "review":
            return self._review_action(ctx, data, action)
        if step.kind == "outcome":
            return self._outcome_action(ctx, data, step, action)
        pending = data.get("pending")
        if action.startswith("u.") and pending and pending.get("field") == field_.id:
            return self._understood_action(ctx, data, field_, action)
        if action == "skip" and field_.optional:
            return self._store(ctx, data, field_, Valid(None, ""))
        if action == "cur":
            return self._after_answer(ctx, data)
        if action == "asis" and data.get("last_bad"):
            raw = data["last_bad"]
            return self._store(
                ctx,
                data,
                field_,
                self._as_typed(field_, raw),
                typed=raw,
                flagged=data.get("last_error") or "",
            )
        if action.startswith("s") and action[1:].isdecimal() and field_.suggest:
            names = self._suggestions(data, field_)
            index = int(action[1:])
            if index < len(names):
                return self._store(ctx, data, field_, Valid(names[index], names[index]))
        if field_.kind == "choice" and action.startswith("c") and action[1:].isdecimal():
            index = int(action[1:])
            if index < len(field_.choices):
                choice = field_.choices[index]
                return self._store(ctx, data, field_, Valid(choice.value, choice.label))
        if field_.kind == "multi_choice":
            return self._multi(ctx, data, field_, action)
        return [Reply(self.spec.t("stale")), *self._render(ctx, data)]

    def _as_typed(self, field_: Step, raw: str) -> Valid:
        if field_.kind == "date_or_period":
            return Valid({"text": raw, "date": None, "label": raw}, raw)
        return Valid(raw, raw)

    def _multi(
        self, ctx: TurnContext, data: dict[str, Any], field_: Step, action: str
    ) -> list[Reply]:
        """Toggle a box (the same message is edited in place) or validate the selection."""
        answers = data["answers"]
        selected = set(answers.get(field_.id) or [])
        if action == "ok":
            if len(selected) < field_.min_choices:
                return [
                    Reply(self._error_text(field_, Invalid("multi_empty"))),
                    *self._render(ctx, data),
                ]
            answers[field_.id] = self._ordered(field_, selected)
            prefilled = data.get("prefilled") or []
            if field_.id in prefilled:
                prefilled.remove(field_.id)
            return self._after_answer(ctx, data)
        if action.startswith("t") and action[1:].isdecimal():
            index = int(action[1:])
            if index < len(field_.choices):
                selected ^= {field_.choices[index].value}
                answers[field_.id] = self._ordered(field_, selected)
                return self._render(ctx, data)
        return [Reply(self.spec.t("stale")), *self._render(ctx, data)]

    def _ordered(self, field_: Step, selected: set[str]) -> list[str]:
        return [c.value for c in field_.choices if c.value in selected]

    def _consent(self, ctx: TurnContext, data: dict[str, Any], yes: bool) -> list[Reply]:
        """Record the agreement (consent_at) and ask the first question; or leave, storing nothing."""
        step, _ = self._current(data)
        if not yes:
            ctx.conversation.data.pop(self.name, None)
            ctx.finish()
            return [Reply(step.text("refused"), self._menu_buttons(ctx))]
        ctx.conversation.consent_at = ctx.now
        self._move(ctx, data, "advance", push=False)
        return self._render(ctx, data)

    def _more(
        self, ctx: TurnContext, data: dict[str, Any], group: Step, action: str
    ) -> list[Reply]:
        """Add another item to a group, or go on to the next step."""
        items = data["answers"].get(group.id) or []
        if action == "add" and len(items) < group.max_items:
            self._move(ctx, data, "add_item", item=len(items))
            return self._render(ctx, data)
        if action == "done":
            self._prune(data)
            if data.get("return_to") == REVIEW:
                return self._to_review(ctx, data)
            state = self._move(ctx, data, "advance")
            if state == DONE:
                return self._finish_outcomeless(ctx, data)
            return self._render(ctx, data)
        return [Reply(self.spec.t("stale")), *self._render(ctx, data)]

    def _back(self, ctx: TurnContext, data: dict[str, Any]) -> list[Reply]:
        """Go back to the previous step (its answer is kept and shown)."""
        history: list[list[Any]] = data.get("history") or []
        while history:
            state, item = history.pop()
            if state in self.spec.locate and not self._is_prefilled(data, state):
                data.pop("adding", None)
                if state == REVIEW:
                    data.pop("return_to", None)
                self._set_state(ctx, data, state, int(item))
                return [Reply(self.spec.t("went_back")), *self._render(ctx, data)]
        if data.get("step") != REVIEW and REVIEW in self.spec.locate and data.get("return_to"):
            return self._to_review(ctx, data)
        return [Reply(self.spec.t("no_back")), *self._render(ctx, data)]

    # ------------------------------------------------------------------ review
    def _review_action(self, ctx: TurnContext, data: dict[str, Any], action: str) -> list[Reply]:
        answers = data["answers"]
        if action == "copy":
            return self._toggle_copy(ctx, data)
        if action == "contact":  # consent to a joint « temps d'échange » with neighbours
            answers["consent_contact"] = not answers.get("consent_contact", False)
            key = "contact_on" if answers["consent_contact"] else "contact_off"
            return [Reply(self.spec.t(key)), self._review_actions(ctx, data)]
        if action == "send":
            return self._submit(ctx, data)
        kind, _, rest = action.partition(".")
        if kind == "e" and rest in self.spec.by_id:
            step = self.spec.by_id[rest]
            data["return_to"] = REVIEW
            self._jump(ctx, data, self.spec.entry(step), 0)
            return self._render(ctx, data)
        if kind in ("i", "a"):
            group_id, _, index = rest.partition(".")
            group = self.spec.by_id.get(group_id)
            if group is None or group.kind != "group":
                return [Reply(self.spec.t("stale")), *self._render(ctx, data)]
            items = answers.get(group.id) or []
            data["return_to"] = REVIEW
            if kind == "a":
                if len(items) >= group.max_items:
                    return [Reply(self.spec.t("too_many")), *self._render(ctx, data)]
                data["adding"] = True
                self._jump(ctx, data, self.spec.entry(group), len(items))
                return self._render(ctx, data)
            if index.isdecimal() and int(index) < len(items):
                self._jump(ctx, data, f"{group.id}.item", int(index))
                return self._render(ctx, data)
        return [Reply(self.spec.t("stale")), *self._render(ctx, data)]

    def _item_menu_action(
        self, ctx: TurnContext, data: dict[str, Any], group: Step, action: str
    ) -> list[Reply]:
        """From an item's menu: change one of its fields, remove it, or return to the review."""
        items = data["answers"].get(group.id) or []
        index = data.get("item", 0)
        if action == "rev":
            return self._to_review(ctx, data)
        if action == "del":
            if len(items) <= group.min_items:
                return [Reply(group.text("cannot_remove")), *self._render(ctx, data)]
            if index < len(items):
                items.pop(index)
                self._renumber_flags(data["answers"], group.id, index)
            return self._with_note(group.text("removed"), self._to_review(ctx, data))
        if action.startswith("f.") and index < len(items):
            sub_id = action[2:]
            for sub in group.fields:
                if sub.id == sub_id:
                    self._jump(ctx, data, state_of(group, sub), index)
                    return self._render(ctx, data)
        return [Reply(self.spec.t("stale")), *self._render(ctx, data)]

    def _renumber_flags(self, answers: dict[str, Any], group_id: str, removed: int) -> None:
        flags = []
        for flag in answers.get("flags", []):
            m = re.match(rf"^{re.escape(group_id)}\[(\d+)\](.*)$", flag.get("field", ""))
            if m:
                n = int(m.group(1))
                if n == removed:
                    continue
                if n > removed:
                    flag = {**flag, "field": f"{group_id}[{n - 1}]{m.group(2)}"}
            flags.append(flag)
        if "flags" in answers:
            answers["flags"] = flags

    # ------------------------------------------------------------------ submission
    def recipient(self, ctx: TurnContext) -> str:
        setting = self.spec.recipient.get("setting")
        if setting:
            return str(getattr(ctx.settings, setting))
        return str(self.spec.recipient.get("address", ""))

    def final_answers(self, ctx: TurnContext, data: dict[str, Any]) -> dict[str, Any]:
        """The answers in the shape the e-mail, PDF and exports are written against."""
        answers = data.get("answers") or {}
        out: dict[str, Any] = {}
        for step in self.spec.steps:
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
        out["flags"] = list(answers.get("flags") or [])
        out["copy_to_referent"] = bool(answers.get("copy_to_referent", False))
        # absent from responses stored before the question existed: no consent
        out["consent_contact"] = bool(answers.get("consent_contact", False))
        out["form_title"] = self.spec.form_title
        out["telegram_user_id"] = ctx.user_id
        out["submitted_at"] = ctx.now.isoformat()
        return out

    # ------------------------------------------------------------------ copy to a proven address
    def _toggle_copy(self, ctx: TurnContext, data: dict[str, Any]) -> list[Reply]:
        """Ask for a copy: only to an address the user proves they hold (a code e-mailed to it)."""
        from bot.mail.outbox import first_referent_address
        from bot.trust import Refused, is_verified, start_verification

        answers = data["answers"]
        if answers.get("copy_to_referent") or data.get("verifying"):
            answers["copy_to_referent"] = False
            data.pop("verifying", None)
            return [Reply(self.spec.t("copy_off")), self._review_actions(ctx, data)]
        address = first_referent_address(answers)
        if address is None:
            return [Reply(self.spec.t("copy_no_address")), self._review_actions(ctx, data)]
        session = ctx.turn.session
        if is_verified(session, ctx.user_id, address):
            answers["copy_to_referent"] = True
            return [Reply(self.spec.t("copy_on", address=address)), self._review_actions(ctx, data)]
        result = start_verification(
            session, ctx.settings, user_id=ctx.user_id, address=address, now=ctx.now
        )
        if isinstance(result, Refused):
            return [Reply(self.spec.t("copy_code_limit")), self._review_actions(ctx, data)]
        data["verifying"] = address
        text = self.spec.t(
            "copy_code_sent", address=address, minutes=ctx.settings.copy_code_minutes
        )
        return [Reply(text), self._review_actions(ctx, data)]

    def _check_code(self, ctx: TurnContext, data: dict[str, Any], typed: str) -> list[Reply]:
        from bot.trust import Check, check_code

        address = str(data["verifying"])
        outcome, left = check_code(
            ctx.turn.session,
            ctx.settings,
            user_id=ctx.user_id,
            address=address,
            typed=typed,
            now=ctx.now,
        )
        if outcome == Check.WRONG:
            return [Reply(self.spec.t("copy_code_wrong", left=left))]
        data.pop("verifying", None)
        if outcome == Check.OK:
            data["answers"]["copy_to_referent"] = True
            text = self.spec.t("copy_verified", address=address)
        elif outcome == Check.EXPIRED:
            text = self.spec.t("copy_code_expired")
        else:
            text = self.spec.t("copy_code_exhausted")
        return [Reply(text), self._review_actions(ctx, data)]

    def _submit(self, ctx: TurnContext, data: dict[str, Any]) -> list[Reply]:
        """Store the submission and its e-mail job in the turn's transaction; clear the draft."""
        from bot.trust import submissions_today

        self._prune(data)
        missing = self._missing(data)
        if missing:
            return [
                Reply(self.spec.t("missing", fields=", ".join(missing))),
                *self._render(ctx, data),
            ]
        session = ctx.turn.session
        limit = ctx.settings.submissions_per_day
        if submissions_today(session, ctx.user_id, ctx.now) >= limit:
            return [
                Reply(self.spec.t("submission_limit", limit=limit, contact=ARS_CONTACT_TEXT)),
                self._review_actions(ctx, data),
            ]
        copy_wanted = bool(data.pop("verifying", None) or data["answers"].get("copy_to_referent"))
        answers = self.final_answers(ctx, data)
        for step in self.spec.steps:
            if step.understand:
                try:
                    get_understander(step.understand).annotate(answers)
                except Exception:  # never lose a response over its annotation
                    log.exception("understander %s could not annotate", step.understand)
        recipient = self.recipient(ctx)
        sub = ctx.store.add_submission(
            session,
            user_id=ctx.user_id,
            form_id=self.name,
            recipient=recipient,
            answers=answers,
            prefix=self.spec.reference_prefix,
        )
        jobs = enqueue_mail(ctx, sub)
        ctx.conversation.data.pop(self.name, None)
        ctx.finish()
        delivered = bool(ctx.settings.smtp_host)
        key = "submitted" if delivered else "submitted_no_mail"
        text = self.spec.t(key, reference=sub.reference, recipient=recipient)
        if copy_wanted:
            copies = [j for j in jobs if j.kind == "copy"]
            if copies:
                text += "\n\n" + self.spec.t("copy_queued", address=copies[0].recipient)
            else:
                text += "\n\n" + self.spec.t("copy_not_sent")
        return [*fiche_document(sub), Reply(text, self._menu_buttons(ctx))]

    def _missing(self, data: dict[str, Any]) -> list[str]:
        answers = data["answers"]
        missing = []
        for step in self.spec.steps:
            if step.kind == "group":
                lacking = len(answers.get(step.id) or []) < step.min_items
            else:
                lacking = step.kind in QUESTION_KINDS and not step.optional and not step.ask_if
                lacking = lacking and answers.get(step.id) in (None, "", [])
            if lacking:
                missing.append(step.label)
        return missing

    def _finish_outcomeless(self, ctx: TurnContext, data: dict[str, Any]) -> list[Reply]:
        ctx.conversation.data.pop(self.name, None)
        ctx.finish()
        return [Reply(self.spec.t("finished"), self._menu_buttons(ctx))]

    # ------------------------------------------------------------------ outcomes (guides)
    def _outcome_action(
        self, ctx: TurnContext, data: dict[str, Any], step: Step, action: str
    ) -> list[Reply]:
        """An outcome's button: restart, menu, question, go to a step, or switch flow (prefill)."""
        if not (action.startswith("o") and action[1:].isdecimal()):
            return [Reply(self.spec.t("stale")), *self._render(ctx, data)]
        index = int(action[1:])
        if index >= len(step.buttons):
            return [Reply(self.spec.t("stale")), *self._render(ctx, data)]
        button = step.buttons[index]
        kind = button.get("action", "menu")
        if kind == "restart":
            ctx.conversation.data.pop(self.name, None)
            return self.start(ctx, {})
        if kind == "goto":
            self._jump(ctx, data, self.spec.entry(self.spec.by_id[button["goto"]]))
            return self._render(ctx, data)
        if kind == "switch":
            prefill = resolve_prefill(button.get("prefill") or {}, self.path_answers(data))
            ctx.conversation.data.pop(self.name, None)
            ctx.finish()
            ctx.switch_to(str(button["flow"]), **prefill)
            return []
        if kind == "question":
            # like the menu's « Poser une question »: leave the guide, the next message is a
            # question; the answers stay, so /orientation comes back to this outcome
            ctx.finish()
            return [Reply(self._engine_text("ask_question") or self.spec.t("finished"))]
        ctx.conversation.data.pop(self.name, None)
        ctx.finish()
        return [Reply(self.spec.t("finished"), self._menu_buttons(ctx))]

    def _engine_text(self, key: str) -> str:
        texts = getattr(getattr(self.app, "engine", None), "texts", None)
        return texts.get(key) if texts is not None and hasattr(texts, "get") else ""

    def _apply_prefill(self, data: dict[str, Any], prefill: dict[str, Any]) -> str:
        """Take answers known from another flow (objectives ticked, territory); mark them."""
        notes = []
        answers = data.setdefault("answers", {})
        prefilled: list[str] = data.setdefault("prefilled", [])
        for key, value in prefill.items():
            step = self.spec.by_id.get(key)
            if step is None or value in (None, "", []):
                continue
            if step.kind == "multi_choice":
                wanted = {str(v) for v in (value if isinstance(value, list) else [value])}
                value = self._ordered(step, wanted)
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
            answers[key] = value
            if key not in prefilled:
                prefilled.append(key)
            notes.append(f"{step.label} : {shown}")
        if not notes:
            return ""
        return self.spec.t("prefilled", items="\n".join(f"• {n}" for n in notes))

    # ------------------------------------------------------------------ rendering
    def _render(
        self, ctx: TurnContext, data: dict[str, Any], reminder: bool = False
    ) -> list[Reply]:
        step, sub = self._current(data)
        state = data["step"]
        if step.kind == "consent":
            from bot.privacy import notice_values

            values = notice_values(ctx.settings)
            prompt = NOTICE_PLACEHOLDER.sub(
                lambda m: values.get(m.group(1), m.group(0)), step.prompt
            )
            return [
                Reply(
                    prompt,
                    [
                        [Button(step.text("accept"), self._payload(data, "yes"))],
                        [Button(step.text("refuse"), self._payload(data, "no"))],
                    ],
                )
            ]
        if state.endswith(".more"):
            return [self._more_prompt(data, step)]
        if state.endswith(".item"):
            return [self._item_menu(data, step)]
        if step.kind == "review":
            return self._review(ctx, data)
        if step.kind == "outcome":
            return self._outcome(ctx, data, step)
        pending = data.get("pending")
        if pending and sub is None and step.understand and pending.get("field") == step.id:
            return [self._confirmation(data, step)]
        return [self._question(data, step, sub, reminder)]

    def _question(
        self, data: dict[str, Any], step: Step, sub: Step | None, reminder: bool
    ) -> Reply:
        field_ = sub or step
        answers = data["answers"]
        index = data.get("item", 0)
        values: dict[str, Any] = {"n": index + 1}
        current: Any = None
        if sub is not None:
            items = answers.get(step.id) or []
            item = items[index] if index < len(items) else {}
            values.update({k: v for k, v in item.items() if isinstance(v, str)})
            current = item.get(sub.id)
            display_value = item.get(f"{sub.id}_display") if sub.store_display else None
        else:
            current = answers.get(step.id)
            display_value = None
        try:
            text = french_format(field_.prompt, **values)
        except (KeyError, IndexError):
            text = field_.prompt
        if sub is not None and sub is step.fields[0] and step.text("intro") and index == 0:
            text = step.text("intro") + "\n\n" + text
        buttons: list[list[Button]] = []
        edit_key = None
        if field_.kind == "choice":
            buttons += [
                [Button(c.label, self._payload(data, f"c{i}"))]
                for i, c in enumerate(field_.choices)
            ]
        elif field_.kind == "multi_choice":
            selected = set(current or [])
            for i, c in enumerate(field_.choices):
                box = "☑" if c.value in selected else "☐"
                buttons.append([Button(f"{box} {c.label}", self._payload(data, f"t{i}"))])
            buttons.append([Button(self.spec.t("validate"), self._payload(data, "ok"))])
            edit_key = f"{self.name}:{field_.id}"
        if field_.suggest and current in (None, ""):
            for i, name in enumerate(self._suggestions(data, field_)):
                buttons.append(
                    [
                        Button(
                            self.spec.t("suggest", value=_short(name, 40)),
                            self._payload(data, f"s{i}"),
                        )
                    ]
                )
        shown = _display(field_, display_value or current)
        if shown and field_.kind != "multi_choice" and not reminder:
            text += "\n\n" + self.spec.t("current", value=_short(shown, 300))
            buttons.append(
                [Button(self.spec.t("keep", value=_short(shown, 30)), self._payload(data, "cur"))]
            )
        row = [Button(self.spec.t("back"), self._payload(data, "back"))]
        if field_.optional:
            row.append(Button(self.spec.t("skip"), self._payload(data, "skip")))
        if field_.why:
            row.append(Button(self.spec.t("why_button"), self._payload(data, "why")))
        buttons.append(row)
        return Reply(text, buttons, edit_key=edit_key)

    def _suggestions(self, data: dict[str, Any], field_: Step) -> list[str]:
        assert field_.suggest is not None
        items = data["answers"].get(field_.suggest.get("group", "")) or []
        key = field_.suggest.get("field", "name")
        names = []
        for item in items:
            name = item.get(key)
            if name and name not in names:
                names.append(name)
        return names[:4]

    def _more_prompt(self, data: dict[str, Any], group: Step) -> Reply:
        items = data["answers"].get(group.id) or []
        lines = [f"{i + 1}. {self._summary(group, item)}" for i, item in enumerate(items)]
        text = group.text("more_prompt", "").format(count=len(items))
        text = "\n".join(lines) + "\n\n" + text
        buttons = []
        if len(items) < group.max_items:
            buttons.append([Button(group.text("add"), self._payload(data, "add"))])
        buttons.append([Button(group.text("done"), self._payload(data, "done"))])
        buttons.append([Button(self.spec.t("back"), self._payload(data, "back"))])
        return Reply(text, buttons)

    def _item_menu(self, data: dict[str, Any], group: Step) -> Reply:
        items = data["answers"].get(group.id) or []
        index = data.get("item", 0)
        item = items[index] if index < len(items) else {}
        text = self.spec.t(
            "item_menu",
            label=group.text("item_label"),
            n=index + 1,
            summary=self._summary(group, item),
        )
        buttons = []
        for sub in group.fields:
            if sub.ask_if and not evaluate(sub.ask_if, {**data["answers"], **item}):
                continue
            shown = _display(sub, item.get(f"{sub.id}_display") or item.get(sub.id))
            buttons.append(
                [Button(_short(f"✏️ {sub.label} : {shown}", 60), self._payload(data, f"f.{sub.id}"))]
            )
        buttons.append([Button(group.text("remove"), self._payload(data, "del"))])
        buttons.append([Button(self.spec.t("to_review"), self._payload(data, "rev"))])
        return Reply(text, buttons)

    def _summary(self, group: Step, item: dict[str, Any]) -> str:
        """One line per item; a follow-up answer ("Autre" → which) replaces its choice."""
        parts: list[str] = []
        for i, sub in enumerate(group.fields):
            value = item.get(f"{sub.id}_display") if sub.store_display else None
            shown = _display(sub, value or item.get(sub.id))
            if not shown:
                continue
            if sub.ask_if and i > 0 and parts:
                parts[-1] = f"{parts[-1].rstrip('…')} : {shown}"
            else:
                parts.append(shown)
        return " — ".join(parts)

    def review_text(self, ctx: TurnContext, data: dict[str, Any]) -> str:
        """Every answer, numbered, as it will be sent."""
        answers = data["answers"]
        prefilled = data.get("prefilled") or []
        lines = [self.spec.t("review_title"), ""]
        number = 0
        for step in self.spec.steps:
            if step.kind not in QUESTION_KINDS and step.kind != "group":
                continue
            number += 1
            lines.append(f"{number}. {step.label}")
            if step.kind == "group":
                for i, item in enumerate(answers.get(step.id) or []):
                    lines.append(f"   {number}.{i + 1} {self._summary(step, item)}")
            elif step.kind == "multi_choice":
                selected = answers.get(step.id) or []
                for choice in step.choices:
                    box = "☑" if choice.value in selected else "☐"
                    lines.append(f"   {box} {choice.label}")
            else:
                shown = _display(step, answers.get(step.id))
                lines.append("   " + (shown or self.spec.t("not_given")))
                understood = answers.get(f"{step.id}_understood") if step.understand else None
                if understood and step.understand:
                    values = get_understander(step.understand).values(understood)
                    lines.append("   " + step.understood_text("review", **values))
            if step.id in prefilled:
                lines.append("   " + self.spec.t("prefilled_mark"))
        flags = answers.get("flags") or []
        if flags:
            lines += ["", self.spec.t("flags_title")]
            lines += [
                f"• {f.get('label') or f['field']} : « {_short(f['value'], 60)} » (non vérifié)"
                for f in flags
            ]
        lines += [
            "",
            self.spec.t(
                "review_recipient",
                recipient=self.recipient(ctx),
                name=self.spec.recipient.get("name", ""),
            ),
        ]
        return "\n".join(lines)

    def _review(self, ctx: TurnContext, data: dict[str, Any]) -> list[Reply]:
        text = self.review_text(ctx, data)
        chunks = split_lines(text, 3800)
        return [*(Reply(c) for c in chunks), self._review_actions(ctx, data)]

    def _review_actions(self, ctx: TurnContext, data: dict[str, Any]) -> Reply:
        answers = data["answers"]
        p = lambda action: self._payload(data, action)  # noqa: E731
        buttons = [[Button(self.spec.t("send"), p("send"))]]
        box = "☑" if answers.get("copy_to_referent") else "☐"
        buttons.append([Button(self.spec.t("copy", box=box), p("copy"))])
        if "contact" in self.spec.texts:
            box = "☑" if answers.get("consent_contact") else "☐"
            buttons.append([Button(self.spec.t("contact", box=box), p("contact"))])
        for step in self.spec.steps:
            if step.kind == "group":
                label = step.text("item_label")
                for i, item in enumerate(answers.get(step.id) or []):
                    first = _display(step.fields[0], item.get(step.fields[0].id))
                    buttons.append(
                        [Button(_short(f"✏️ {label} {i + 1} : {first}", 60), p(f"i.{step.id}.{i}"))]
                    )
                buttons.append([Button(step.text("add"), p(f"a.{step.id}"))])
            elif step.kind in QUESTION_KINDS:
                buttons.append([Button(f"✏️ {step.label}", p(f"e.{step.id}"))])
        return Reply(self.spec.t("review_prompt"), buttons, edit_key=f"{self.name}:review")

    def _outcome(self, ctx: TurnContext, data: dict[str, Any], step: Step) -> list[Reply]:
        """One reply per part of the text (a list in the YAML); sources and buttons on the last."""
        texts = [self._fill(data, part) for part in step.parts]
        texts[-1] = self._with_sources(ctx, texts[-1], step.sources)
        buttons = [
            [Button(str(b["label"]), self._payload(data, f"o{i}"))]
            for i, b in enumerate(step.buttons)
        ]
        buttons.append([Button(self.spec.t("back"), self._payload(data, "back"))])
        return [*(Reply(t) for t in texts[:-1]), Reply(texts[-1], buttons)]

    # ------------------------------------------------------------------ answers in texts
    def path_answers(self, data: dict[str, Any]) -> dict[str, Any]:
        """The answers of the steps on the path taken to here (history, current, prefilled).

        Going back and taking another branch leaves the other branch's answers in the draft
        (offered again as « Réponse actuelle » if the user returns there), but they no longer
        count: not in an outcome's text, not in the prefill handed to another flow. A form with
        a review (the AMI) keeps every answer: the review shows and sends them all.
        """
        answers: dict[str, Any] = data.get("answers") or {}
        if REVIEW in self.spec.locate:
            return answers
        locate = self.spec.locate
        on_path = {locate[s][0].id for s, _ in data.get("history") or [] if s in locate}
        state = data.get("step")
        if state in locate:
            on_path.add(locate[state][0].id)
        on_path.update(data.get("prefilled") or [])
        return {k: v for k, v in answers.items() if k in on_path}

    def _fill(self, data: dict[str, Any], text: str) -> str:
        """Replace `{answers.<id>}` (the chosen label) and `{summary}` in an outcome's text."""
        if "{" not in text:
            return text
        answers = self.path_answers(data)

        def value(match: re.Match[str]) -> str:
            if match.group(0) == "{summary}":
                return self.summary(answers)
            step = self.spec.by_id.get(match.group(1))
            if step is None:
                return match.group(0)
            return _bare(_display(step, answers.get(step.id)))

        return PLACEHOLDER.sub(value, text)

    def summary(self, answers: dict[str, Any]) -> str:
        """One line per answered question (in the YAML's order), `in_summary: false` left out."""
        lines = [
            self.spec.t("summary_item", label=step.label, value=_bare(shown))
            for step in self.spec.steps
            if step.kind in QUESTION_KINDS and step.in_summary
            for shown in [_display(step, answers.get(step.id))]
            if shown
        ]
        return "\n".join(lines)

    # ------------------------------------------------------------------ citations
    def _with_sources(self, ctx: TurnContext, text: str, sources: list[str]) -> str:
        """`text` and its « Sources » line: document names and sections, phone-sized."""
        if not sources:
            return text
        for detailed in (True, False):
            cited = text + "\n\n" + self.citations(ctx, sources, detailed)
            if len(cited) <= self.spec.max_chars:
                return cited
        return cited

    def citations(self, ctx: TurnContext | None, sources: list[str], detailed: bool = True) -> str:
        """The « Sources » line of `sources` (passage ids), one entry per document, cached."""
        key = (tuple(sources), detailed)
        line = self._citations.get(key)
        if line is None:
            qa = getattr(self.app, "qa", None) or getattr(ctx, "qa", None)
            entries = [
                self.spec.t("citation", document=name, sections=" ; ".join(sections))
                if sections and detailed
                else self.spec.t("citation_document", document=name)
                for name, sections in cite(qa, sources, self.spec.documents)
            ]
            line = self.spec.t("sources", citations="\n".join(entries), ids="; ".join(entries))
            self._citations[key] = line
        return line

    def _menu_buttons(self, ctx: TurnContext) -> list[list[Button]]:
        engine = getattr(self.app, "engine", None)
        if engine is not None and hasattr(engine, "menu_buttons"):
            return engine.menu_buttons(ctx)
        return []

    @staticmethod
    def _with_note(note: str, replies: list[Reply]) -> list[Reply]:
        if note and replies:
            replies[0].text = note + "\n\n" + replies[0].text
        elif note:
            replies = [Reply(note)]
        return replies


# =========================================================================== helpers
def _display(field_: Step, value: Any) -> str:
    if value in (None, "", []):
        return ""
    if field_.kind == "choice":
        return field_.choice_label(value)
    if field_.kind == "multi_choice":
        return ", ".join(field_.choice_label(v) for v in value)
    if isinstance(value, dict):
        return str(value.get("label") or value.get("text") or "")
    return str(value)


PLACEHOLDER = re.compile(r"\{(?:answers\.(\w+)|summary)\}")
_ENUMERATOR = re.compile(r"^[A-Z]\.\s+")


def _bare(label: str) -> str:
    """A choice label without its « A. » enumerator, to be read inside a sentence."""
    return _ENUMERATOR.sub("", label)


_NUMBERED = re.compile(r"^([IVXL]+|[A-Z]|\d{1,2})\s*\.\s*[–—-]\s*(.+)$")


def short_section(section: str) -> str:
    """« I. – ESP et CPTS › A. – Les ESP › Objet… » → « I. A. Les ESP »; else the last part."""
    parts = [p.strip() for p in section.split("›") if p.strip()]
    numbered = [m for m in (_NUMBERED.match(p) for p in parts) if m]
    if numbered:
        return " ".join(f"{m.group(1)}." for m in numbered) + " " + numbered[-1].group(2)
    return parts[-1] if parts else ""


def cite(qa: Any, sources: Iterable[str], names: dict[str, str]) -> list[tuple[str, list[str]]]:
    """(document name, its cited sections) in order of first citation, deduplicated."""
    cited: dict[str, tuple[str, list[str]]] = {}
    documents = getattr(getattr(qa, "kb", None), "documents", None) or {}
    for passage_id in sources:
        passage = qa.passage(passage_id) if hasattr(qa, "passage") else None
        doc_id = getattr(passage, "doc_id", None) or passage_id.partition("#")[0]
        if doc_id not in cited:
            document = documents.get(doc_id)
            name = (
                names.get(doc_id)
                or getattr(document, "short_title", "")
                or getattr(passage, "title", "")
                or doc_id
            )
            cited[doc_id] = (name, [])
        section = short_section(getattr(passage, "section", "") or "")
        if section and section not in cited[doc_id][1]:
            cited[doc_id][1].append(section)
    return list(cited.values())


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fold_label(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum() or ch in " '’").strip()


def _match_choice(choices: Iterable[Choice], folded: str) -> Choice | None:
    wanted = _fold_label(folded)
    if not wanted:
        return None
    choices = list(choices)
    for c in choices:
        if wanted in (_fold_label(c.value), _fold_label(c.label)):
            return c
    if wanted.isdecimal() and 1 <= int(wanted) <= len(choices):
        return choices[int(wanted) - 1]
    starts = [c for c in choices if _fold_label(c.label).startswith(wanted) and len(wanted) >= 3]
    return starts[0] if len(starts) == 1 else None


def resolve_prefill(spec: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """Prefill values: literals, or `{answer: field}` copied from this flow's answers."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if isinstance(value, dict) and "answer" in value:
            value = answers.get(str(value["answer"]))
        if value not in (None, "", []):
            out[key] = value
    return out


def enqueue_mail(ctx: TurnContext, submission: Any) -> list[Any]:
    """Queue the ARS e-mail (and the copy) in the turn's transaction: the outbox."""
    from bot.mail.outbox import enqueue_submission

    return enqueue_submission(ctx.store, ctx.turn.session, submission, ctx.settings)


def fiche_document(submission: Any) -> list[Reply]:
    """The filled fiche as PDF for the respondent, rendered once the submission has committed."""
    from bot.mail.pdfproc import render_pdf

    document = Document(
        filename=f"{submission.reference}.pdf",
        content=b"",
        mime_type="application/pdf",
        caption=f"Votre fiche AMI {submission.reference}",
        render=lambda: render_pdf(submission),  # in the renderer process, after the commit
    )
    return [
        Reply(
            f"Voici votre fiche remplie ({submission.reference}), au format PDF.", document=document
        )
    ]


# =========================================================================== loading
def dialogue_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.is_file())


def load_specs(directory: Path) -> dict[str, FormSpec]:
    """Every dialogue file but menu.yaml (texts only), each validated by the flow schema."""
    from bot.schema.dialogues import MENU_FILE

    specs: dict[str, FormSpec] = {}
    for path in dialogue_files(directory):
        if path.name != MENU_FILE:
            spec = FormSpec.load(path)
            specs[spec.name] = spec
    return specs


def load_flows(directory: Path, app: Any = None) -> dict[str, FormFlow]:
    """Build a `FormFlow` for every flow declared in `directory`."""
    return {name: FormFlow(spec, app) for name, spec in load_specs(directory).items()}


@lru_cache(maxsize=8)
def _spec_of(form_id: str, directory: Path | None = None) -> FormSpec:
    from bot.config import DIALOGUES_DIR

    return FormSpec.load((directory or DIALOGUES_DIR) / f"{form_id}.yaml")


def objective_labels(form_id: str = AMI_FORM) -> dict[str, str]:
    """The objectives' exact wording from the fiche (value → label), for e-mails and PDFs."""
    return _spec_of(form_id).choice_labels("objectives")


def practice_labels(form_id: str = AMI_FORM) -> dict[str, str]:
    """Coordinated-practice choices (value → label)."""
    spec = _spec_of(form_id)
    for sub in spec.by_id["actors"].fields:
        if sub.id == "practice":
            return {c.value: c.label for c in sub.choices}
    return {}


def form_texts(form_id: str = AMI_FORM) -> dict[str, Any]:
    """Title, reference prefix and recipient of a form, for renderers."""
    spec = _spec_of(form_id)
    return {
        "form_title": spec.form_title,
        "reference_prefix": spec.reference_prefix,
        "recipient": dict(spec.recipient),
        "labels": {s.id: s.label for s in spec.steps},
    }


def __getattr__(name: str) -> Any:
    if name == "OBJECTIVE_LABELS":
        return objective_labels()
    raise AttributeError(name)
