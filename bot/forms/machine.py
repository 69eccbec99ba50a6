"""The `transitions` Machine that runs a form: built once per spec, fired on every turn.

Nothing of a conversation lives in process memory: the Machine is created with `model=None`
and holds only the form's states and transitions (`FormSpec`). Each turn fires a trigger on a
light `Position` model carrying the stored state and the answers in scope; the Machine's own
semantics (first transition whose conditions hold and whose `unless` do not, invalid triggers
ignored) pick the new state, which the runner stores in the draft. A new process on the same
database therefore resumes exactly where the user was.

Firing is memoised: a condition reads only the answers its `when:` names, so the Machine's
choice from a (trigger, state) is a function of those answers' values; each new combination is
fired on the Machine once and remembered (bounded). The Machine decides every case it is asked.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable, Iterable
from typing import Any

from transitions import Machine

from bot.forms.conditions import Condition
from bot.forms.draft import Draft
from bot.forms.spec import FormSpec

MEMO_SIZE = 4096


class Position:
    """The per-turn model: a state, and the answers the conditions read there."""

    __slots__ = ("_scope", "answers", "item", "spec", "state")

    def __init__(self, spec: FormSpec, state: str, answers: dict[str, Any], item: int) -> None:
        self.spec = spec
        self.state = state
        self.answers = answers
        self.item = item
        self._scope: dict[str, Any] | None = None

    def scope(self) -> dict[str, Any]:
        """The answers, with the current group item's over them (read once per firing)."""
        if self._scope is None:
            self._scope = self.answers
            step, _sub = self.spec.locate.get(self.state, (None, None))
            if step is not None and step.kind == "group":
                items = self.answers.get(step.id) or []
                if 0 <= self.item < len(items):
                    self._scope = {**self.answers, **items[self.item]}
        return self._scope


class FormMachine:
    """One form's Machine and the way a turn fires it."""

    def __init__(self, spec: FormSpec) -> None:
        self.spec = spec
        self.machine = Machine(
            model=None,
            states=list(spec.states),
            transitions=[dict(t) for t in spec.transitions],
            initial=spec.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=True,
        )
        # (trigger, state) → the answers its transitions' conditions read
        self.reads: dict[tuple[str, str], tuple[str, ...]] = {}
        for t in spec.transitions:
            conditions = [*t.get("conditions", []), *t.get("unless", [])]
            key = (t["trigger"], t["source"])
            names = set(self.reads.get(key, ())) | set(_names_read(conditions))
            self.reads[key] = tuple(sorted(names))
        self._memo: dict[tuple[Hashable, ...], str] = {}

    def fire(self, trigger: str, state: str, answers: dict[str, Any], item: int = 0) -> str:
        """The state `trigger` leads to from `state` (the same state when nothing applies)."""
        position = Position(self.spec, state, answers, item)
        key: tuple[Hashable, ...] | None = (trigger, state)
        names = self.reads.get((trigger, state))
        if names:
            scope = position.scope()
            try:
                key = (trigger, state, *(_frozen(scope.get(n)) for n in names))
            except TypeError:  # a value that cannot be a key: fire without remembering
                key = None
        dest = self._memo.get(key) if key is not None else None
        if dest is not None:
            return dest
        event = self.machine.events.get(trigger)
        if event is None or state not in event.transitions:
            return state  # an ignored trigger (without the library's warning in the log)
        event.trigger(position)
        if key is not None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = position.state
        return position.state

    def fire_on(self, draft: Draft, trigger: str) -> str:
        """Fire `trigger` from the draft's state, its current group item in scope."""
        assert draft.step is not None
        return self.fire(trigger, draft.step, draft.answers, draft.item)


def _names_read(conditions: Iterable[Condition]) -> list[str]:
    """The answers a list of conditions reads (inside `any:` / `all:` too)."""
    names: list[str] = []

    def walk(when: dict[str, Any]) -> None:
        for key, test in when.items():
            if key in ("any", "all"):
                for inner in test:
                    walk(inner)
            else:
                names.append(key)

    for condition in conditions:
        walk(condition.when)
    return names


def _frozen(value: Any) -> Hashable:
    """A value usable in a memo key (lists and mappings made tuples)."""
    if isinstance(value, list):
        return ("list", *(_frozen(v) for v in value))
    if isinstance(value, dict):
        return ("dict", *((k, _frozen(v)) for k, v in sorted(value.items())))
    hash(value)
    return (type(value).__name__, value)


_machines: weakref.WeakKeyDictionary[FormSpec, FormMachine] = weakref.WeakKeyDictionary()


def machine_for(spec: FormSpec) -> FormMachine:
    """The spec's Machine, built on first use and kept as long as the spec."""
    machine = _machines.get(spec)
    if machine is None:
        machine = _machines[spec] = FormMachine(spec)
    return machine
