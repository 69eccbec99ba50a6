"""The draft: where a user is in a form and what they answered, typed.

It is stored as JSON in the conversation (`conversation.data[<form>]`), loaded at the start of
each turn and saved at its end. The stored shape is the one drafts have always had (`step`,
`item`, `visit`, `answers` holding `flags`, …): a draft saved before this module existed loads,
and a draft saved now is read the same way by the privacy export and the retention jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_HISTORY = 60
# answers that are not a step's: the review's choices, and the answers kept as typed
FLAGS = "flags"
COPY = "copy_to_referent"
CONTACT = "consent_contact"


@dataclass
class Flag:
    """An answer kept as typed after repeated failures (shown « non vérifié »)."""

    field: str  # its path: `referents[1].phone`
    label: str  # what people read: « Référent 2 — Téléphone »
    value: str
    reason: str  # the error the validator gave

    def to_dict(self) -> dict[str, str]:
        """The stored shape."""
        return {
            "field": self.field,
            "label": self.label,
            "value": self.value,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Flag:
        """A stored flag (older ones may lack a label or a reason)."""
        path = str(stored.get("field", ""))
        return cls(
            field=path,
            label=str(stored.get("label") or path),
            value=str(stored.get("value", "")),
            reason=str(stored.get("reason", "")),
        )


@dataclass
class Pending:
    """An understood answer (a territory) shown to the user and waiting for confirmation."""

    field: str
    value: Any
    understood: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The stored shape."""
        return {"field": self.field, "value": self.value, "understood": self.understood}


@dataclass
class Draft:
    """One user's progress in one form."""

    step: str | None = None  # the machine's state; None: not started
    item: int = 0  # the group item being answered or edited
    visit: int = 0  # changes with every step shown: a button of an older message is stale
    answers: dict[str, Any] = field(default_factory=dict)
    flags: list[Flag] = field(default_factory=list)
    copy_to_referent: bool | None = None  # None: never asked
    consent_contact: bool | None = None
    history: list[tuple[str, int]] = field(default_factory=list)
    fails: dict[str, int] = field(default_factory=dict)
    prefilled: list[str] = field(default_factory=list)
    return_to: str | None = None  # editing from the review: go back to it
    adding: bool = False  # adding a group item from the review
    pending: Pending | None = None
    last_bad: str | None = None  # the last refused text (« garder tel quel »)
    last_error: str | None = None
    verifying: str | None = None  # the address a copy code was sent to
    has_flags_key: bool = False  # the stored answers held `flags` (kept, even empty)
    discarded: bool = False  # the turn removed the draft (submitted, refused, cancelled)

    # ------------------------------------------------------------------ storage
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Draft:
        """A stored draft (any version: missing keys take their defaults)."""
        answers = dict(data.get("answers") or {})
        has_flags = FLAGS in answers
        flags = [Flag.from_dict(f) for f in answers.pop(FLAGS, None) or [] if isinstance(f, dict)]
        copy = answers.pop(COPY, None)
        contact = answers.pop(CONTACT, None)
        pending = data.get("pending")
        step = data.get("step")
        return cls(
            step=str(step) if step else None,
            item=int(data.get("item") or 0),
            visit=int(data.get("visit") or 0),
            answers=answers,
            flags=flags,
            copy_to_referent=None if copy is None else bool(copy),
            consent_contact=None if contact is None else bool(contact),
            history=[(str(s), int(i)) for s, i in data.get("history") or []],
            fails={str(k): int(v) for k, v in (data.get("fails") or {}).items()},
            prefilled=[str(p) for p in data.get("prefilled") or []],
            return_to=data.get("return_to"),
            adding=bool(data.get("adding", False)),
            pending=Pending(
                field=str(pending.get("field")),
                value=pending.get("value"),
                understood=dict(pending.get("understood") or {}),
            )
            if isinstance(pending, dict)
            else None,
            last_bad=data.get("last_bad"),
            last_error=data.get("last_error"),
            verifying=data.get("verifying"),
            has_flags_key=has_flags,
        )

    def to_dict(self) -> dict[str, Any]:
        """The stored shape (the keys older code wrote, only those set)."""
        answers = dict(self.answers)
        if self.flags or self.has_flags_key:
            answers[FLAGS] = [f.to_dict() for f in self.flags]
        if self.copy_to_referent is not None:
            answers[COPY] = self.copy_to_referent
        if self.consent_contact is not None:
            answers[CONTACT] = self.consent_contact
        out: dict[str, Any] = {
            "answers": answers,
            "visit": self.visit,
            "history": [[s, i] for s, i in self.history],
            "fails": dict(self.fails),
        }
        if self.step is not None:
            out["step"] = self.step
            out["item"] = self.item
        out["prefilled"] = list(self.prefilled)
        optional = {
            "return_to": self.return_to,
            "pending": self.pending.to_dict() if self.pending else None,
            "last_bad": self.last_bad,
            "last_error": self.last_error,
            "verifying": self.verifying,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        if self.adding:
            out["adding"] = True
        return out

    # ------------------------------------------------------------------ reading
    @property
    def started(self) -> bool:
        """True once the draft has a state."""
        return self.step is not None

    def has_answers(self) -> bool:
        """True when at least one answer (or a review choice) was given."""
        given = any(v not in (None, "", [], {}) for v in self.answers.values())
        return given or self.copy_to_referent is not None or self.consent_contact is not None

    def items(self, group_id: str) -> list[dict[str, Any]]:
        """A group's items (created empty)."""
        items: list[dict[str, Any]] = self.answers.setdefault(group_id, [])
        return items

    def current_item(self, group_id: str) -> dict[str, Any]:
        """The group item being answered (an empty mapping when absent)."""
        items = self.answers.get(group_id) or []
        return items[self.item] if 0 <= self.item < len(items) else {}

    def is_prefilled(self, state: str) -> bool:
        """True for a step answered by another flow, skipped unless edited from the review."""
        return state in self.prefilled and self.return_to is None

    # ------------------------------------------------------------------ changing
    def record_history(self, state: str, item: int) -> None:
        """Remember where the user was (for « Précédent »), bounded."""
        self.history.append((state, item))
        del self.history[:-MAX_HISTORY]

    def enter(self, state: str, item: int) -> None:
        """Show a new step: a new visit, nothing refused nor waiting yet."""
        self.step = state
        self.item = item
        self.visit += 1
        self.last_bad = None
        self.pending = None

    def set_flag(self, path: str, value: str | None, reason: str | None, label: str) -> None:
        """Record (or clear) an answer kept as typed at `path`."""
        flags = [f for f in self.flags if f.field != path]
        if value is not None and reason is not None:
            flags.append(Flag(field=path, label=label or path, value=value, reason=reason))
        if flags or self.has_flags_key:
            self.has_flags_key = True
        self.flags = flags
