"""A form as declared in `dialogues/*.yaml`: its steps, and its states and transitions.

The YAML is read through its schema (`bot/schema/form.py`); `FormSpec` turns the steps into
plain lists of states and transitions (conditions are data, `bot.forms.conditions`), from which
`bot.forms.machine` builds the one `transitions` Machine of the form.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypedDict

from bot.engine.messages import french_format
from bot.forms.conditions import Condition

QUESTION_KINDS = {"text", "email", "phone", "date_or_period", "choice", "multi_choice"}
STEP_KINDS = QUESTION_KINDS | {"consent", "group", "review", "outcome"}
DEFAULT_VALIDATORS = {
    "text": "text",
    "email": "email",
    "phone": "phone",
    "date_or_period": "date_or_period",
}
MAX_CHARS = 900  # a message read on a phone: longer citations fall back to document names
REVIEW = "review"
DONE = "submitted"
AMI_FORM = "ami_bretagne"
# triggers (verbs)
ADVANCE = "advance"
ADD_ITEM = "add_item"
REFUSE = "refuse"
SUBMIT = "submit"


class TransitionDef(TypedDict, total=False):
    """One transition as `transitions.Machine` takes it."""

    trigger: str
    source: str
    dest: str
    conditions: list[Condition]
    unless: list[Condition]


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
        """A step from its YAML mapping (already checked by the schema)."""
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
        """A text of the step's YAML (`intro`, `add`, `refused`…)."""
        return str(self.raw.get(key, default))

    def understood_text(self, key: str, **values: Any) -> str:
        """A text of the step's `understood:` block (the confirmation of what was read)."""
        text = str((self.raw.get("understood") or {}).get(key, ""))
        try:
            return french_format(text, **values) if values else text
        except (KeyError, IndexError):
            return text

    def choice_label(self, value: Any) -> str:
        """The label of a choice's value (the value itself when unknown)."""
        for choice in self.choices:
            if choice.value == value:
                return choice.label
        return str(value)


def state_of(step: Step, sub: Step | None = None) -> str:
    """The state asking a step, or a group's field (`referents.email`)."""
    return f"{step.id}.{sub.id}" if sub is not None else step.id


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
        self.transitions: list[TransitionDef] = []
        self.locate: dict[str, tuple[Step, Step | None]] = {}
        self._build()

    @classmethod
    def load(cls, path: Path) -> FormSpec:
        """Read a flow file through its schema (bot/schema/form.py): `SchemaError` if broken."""
        from bot.schema.dialogues import read_form

        return cls(read_form(path), path)

    @property
    def initial(self) -> str:
        """The state a new draft starts in."""
        return self.states[0]

    @property
    def has_review(self) -> bool:
        """True for a form that ends on a review (the AMI), not on outcomes (the guide)."""
        return REVIEW in self.locate

    # --- states and transitions --------------------------------------------------------
    def entry(self, step: Step) -> str:
        """The state that starts a step (a group's first field)."""
        return state_of(step, step.fields[0]) if step.kind == "group" else step.id

    def exit(self, step: Step) -> str:
        """The state a step is left from (a group's « add another? »)."""
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
                    {"trigger": ADD_ITEM, "source": f"{step.id}.more", "dest": self.entry(step)}
                )
            if step.kind == "consent":
                self.transitions.append({"trigger": REFUSE, "source": step.id, "dest": DONE})
            if step.kind == "review":
                self.transitions.append({"trigger": SUBMIT, "source": step.id, "dest": DONE})
            if step.kind in ("outcome", "review"):
                continue
            source = self.exit(step)
            for rule in step.next:
                dest = self._goto(rule["goto"])
                cond = [Condition(rule["when"])] if rule.get("when") else []
                self.transitions.append(
                    {"trigger": ADVANCE, "source": source, "dest": dest, "conditions": cond}
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
                    "trigger": ADVANCE,
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
            {"trigger": ADVANCE, "source": source, "dest": DONE, "unless": list(unless)}
        )

    def _chain(self, fields: list[Step], name: Callable[[Step], str], end: str) -> None:
        for i, sub in enumerate(fields):
            unless: list[Condition] = []
            for later in fields[i + 1 :]:
                cond = [Condition(later.ask_if)] if later.ask_if else []
                self.transitions.append(
                    {
                        "trigger": ADVANCE,
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
                    {"trigger": ADVANCE, "source": name(sub), "dest": end, "unless": list(unless)}
                )

    def _add_state(self, name: str, step: Step, sub: Step | None) -> None:
        self.states.append(name)
        self.locate[name] = (step, sub)

    # --- texts -------------------------------------------------------------------------
    def t(self, key: str, **values: Any) -> str:
        """A text of the form's `texts:`, with its placeholders filled (French elision)."""
        text = str(self.texts.get(key, key))
        return french_format(text, **values) if values else text

    def choice_labels(self, step_id: str) -> dict[str, str]:
        """A choice step's labels by value."""
        step = self.by_id[step_id]
        return {c.value: c.label for c in step.choices}


# =========================================================================== loading
def dialogue_files(directory: Path) -> list[Path]:
    """The YAML files of a dialogues directory, sorted."""
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


@lru_cache(maxsize=8)
def spec_of(form_id: str, directory: Path | None = None) -> FormSpec:
    """A form's spec read once from `dialogues/` (renderers, exports)."""
    from bot.config import DIALOGUES_DIR

    return FormSpec.load((directory or DIALOGUES_DIR) / f"{form_id}.yaml")


_spec_of = spec_of  # the name the back office imports


def objective_labels(form_id: str = AMI_FORM) -> dict[str, str]:
    """The objectives' exact wording from the fiche (value → label), for e-mails and PDFs."""
    return spec_of(form_id).choice_labels("objectives")


def practice_labels(form_id: str = AMI_FORM) -> dict[str, str]:
    """Coordinated-practice choices (value → label)."""
    spec = spec_of(form_id)
    for sub in spec.by_id["actors"].fields:
        if sub.id == "practice":
            return {c.value: c.label for c in sub.choices}
    return {}


def form_texts(form_id: str = AMI_FORM) -> dict[str, Any]:
    """Title, reference prefix and recipient of a form, for renderers."""
    spec = spec_of(form_id)
    return {
        "form_title": spec.form_title,
        "reference_prefix": spec.reference_prefix,
        "recipient": dict(spec.recipient),
        "labels": {s.id: s.label for s in spec.steps},
    }
