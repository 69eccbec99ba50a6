"""Conditions are data: a `when:` / `ask_if:` dictionary evaluated on the answers.

Operators: equals, in, has, is_set, not; `any:` / `all:` combine dictionaries. A `Condition`
is what the `transitions` Machine calls (`send_event=True`: it receives the event, whose model
gives the answers in scope).
"""

from __future__ import annotations

from typing import Any, Protocol


class Scoped(Protocol):
    """A machine model that can show the answers a condition reads."""

    def scope(self) -> dict[str, Any]:
        """The answers in scope (a group item's answers over the form's)."""
        ...


class EventLike(Protocol):
    """What `transitions` passes to a condition when `send_event=True`."""

    model: Scoped


class Condition:
    """A `when:` dictionary as a Machine condition (`negate` turns it into its opposite)."""

    __slots__ = ("negate", "when")

    def __init__(self, when: dict[str, Any], negate: bool = False) -> None:
        self.when = when
        self.negate = negate

    def __call__(self, event: EventLike) -> bool:
        return self.is_met(event.model.scope())

    def is_met(self, scope: dict[str, Any]) -> bool:
        """True when the dictionary holds on `scope` (or does not, when negated)."""
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
    """A readable form of a condition (diagrams, test messages)."""
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
