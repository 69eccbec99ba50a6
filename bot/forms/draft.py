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


class History:
    """Where the user has been (for « Précédent »): (state, group item), most recent last.

    Kept as the stored JSON list of `[state, item]` pairs, read and written without conversion."""

    __slots__ = ("_entries",)

    def __init__(self, entries: list[list[Any]] | None = None) -> None:
        self._entries: list[list[Any]] = entries if entries is not None else []

    def push(self, state: str, item: int) -> None:
        """Remember a position (the oldest forgotten beyond MAX_HISTORY)."""
        self._entries.append([state, item])
        del self._entries[:-MAX_HISTORY]

    def pop(self) -> tuple[str, int]:
        """The most recent position, forgotten."""
        state, item = self._entries.pop()
        return str(state), int(item)

    def clear(self) -> None:
        """Forget every position."""
        self._entries.clear()

    def states(self) -> list[str]:
        """The states visited, oldest first."""
        return [str(entry[0]) for entry in self._entries]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def to_json(self) -> list[list[Any]]:
        """The stored shape."""
        return self._entries


@dataclass
class Pending:
    """An understood answer (a territory) shown to the user and waiting for confirmation."""

    field: str
    value: Any
    understood: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The stored shape."""
        return {"field": self.field, "value": self.value, "understood": self.understood}


@dataclass(slots=True)
class Draft:
    """One user's progress in one form."""

    step: str | None = None  # the machine's state; None: not started
    item: int = 0  # the group item being answered or edited
    visit: int = 0  # changes with every step shown: a button of an older message is stale
    answers: dict[str, Any] = field(default_factory=dict)
    flags: list[Flag] = field(default_factory=list)
    copy_to_referent: bool | None = None  # None: never asked
    consent_contact: bool | None = None
    history: History = field(default_factory=History)
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
        """A stored draft (any version: missing keys take their defaults).

        The values are JSON written by `to_dict` (or by the former runner, same shape), read as
        they are: the answers mapping is the stored one, copied only when the review's keys
        (`flags`, `copy_to_referent`, `consent_contact`) are to be set apart."""
        get = data.get
        answers: dict[str, Any] = get("answers") or {}
        has_flags = FLAGS in answers
        stored_flags = copy = contact = None
        if has_flags or COPY in answers or CONTACT in answers:  # the review's, kept apart
            answers = dict(answers)
            stored_flags = answers.pop(FLAGS, None)
            copy = answers.pop(COPY, None)
            contact = answers.pop(CONTACT, None)
        pending = get("pending")
        draft = cls(
            step=get("step") or None,
            item=get("item") or 0,
            visit=get("visit") or 0,
            answers=answers,
            history=History(list(get("history") or ())),
            fails=dict(get("fails") or ()),
            prefilled=list(get("prefilled") or ()),
            return_to=get("return_to"),
            adding=bool(get("adding")),
            last_bad=get("last_bad"),
            last_error=get("last_error"),
            verifying=get("verifying"),
            has_flags_key=has_flags,
        )
        if stored_flags:
            draft.flags = [Flag.from_dict(f) for f in stored_flags if isinstance(f, dict)]
        if copy is not None:
            draft.copy_to_referent = bool(copy)
        if contact is not None:
            draft.consent_contact = bool(contact)
        if isinstance(pending, dict):
            draft.pending = Pending(
                field=str(pending.get("field")),
                value=pending.get("value"),
                understood=dict(pending.get("understood") or {}),
            )
        return draft

    def to_dict(self) -> dict[str, Any]:
        """The stored shape (the keys older code wrote, only those set)."""
        answers = self.answers
        review = self.copy_to_referent is not None or self.consent_contact is not None
        if self.flags or self.has_flags_key or review:
            answers = dict(answers)
            if self.flags or self.has_flags_key:
                answers[FLAGS] = [f.to_dict() for f in self.flags]
            if self.copy_to_referent is not None:
                answers[COPY] = self.copy_to_referent
            if self.consent_contact is not None:
                answers[CONTACT] = self.consent_contact
        out: dict[str, Any] = {
            "answers": answers,
            "visit": self.visit,
            "history": self.history.to_json(),
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
        self.history.push(state, item)

    def enter(self, state: str, item: int) -> None:
        """Show a new step: a new visit, nothing refused nor waiting yet."""
        self.step = state
        self.item = item
        self.visit += 1
        self.last_bad = None
        self.pending = None

    def set_flag(self, path: str, value: str | None, reason: str | None, label: str) -> None:
        """Record (or clear) an answer kept as typed at `path`."""
        if not self.flags and (value is None or reason is None):
            return  # nothing to record, nothing to clear
        flags = [f for f in self.flags if f.field != path]
        if value is not None and reason is not None:
            flags.append(Flag(field=path, label=label or path, value=value, reason=reason))
        if flags or self.has_flags_key:
            self.has_flags_key = True
        self.flags = flags
