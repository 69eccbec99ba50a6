"""The buttons' mini-language, written and read here only.

A button's payload is `<form>:<visit>:<action>`: `visit` changes whenever the step changes, so
a button of an old message is recognised as stale and never corrupts answers. Actions:

    back why yes no add done rev del skip cur asis ok copy contact send   (words)
    c<n> choose a choice   t<n> tick a box   s<n> take a suggestion   o<n> an outcome's button
    f.<field> change an item's field   e.<step> edit a step from the review
    i.<group>.<n> an item's menu   a.<group> add an item from the review
    u.ok u.fix u.asis u.a<n> u.an   the confirmation of an understood answer (a territory)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MAX_PAYLOAD = 60  # Telegram allows 64 bytes of callback data


class Verb(StrEnum):
    BACK = "back"
    WHY = "why"
    YES = "yes"
    NO = "no"
    ADD = "add"
    DONE = "done"
    REVIEW = "rev"
    DELETE = "del"
    SKIP = "skip"
    CURRENT = "cur"
    AS_TYPED = "asis"
    OK = "ok"
    COPY = "copy"
    CONTACT = "contact"
    SEND = "send"
    CHOOSE = "c"
    TICK = "t"
    SUGGESTION = "s"
    OUTCOME = "o"
    FIELD = "f"
    EDIT = "e"
    ITEM = "i"
    ADD_ITEM = "a"
    CONFIRM = "u.ok"
    FIX = "u.fix"
    KEEP_TYPED = "u.asis"
    CANDIDATE = "u.a"
    UNKNOWN = "?"


WORDS = {
    v.value: v
    for v in (
        Verb.BACK,
        Verb.WHY,
        Verb.YES,
        Verb.NO,
        Verb.ADD,
        Verb.DONE,
        Verb.REVIEW,
        Verb.DELETE,
        Verb.SKIP,
        Verb.CURRENT,
        Verb.AS_TYPED,
        Verb.OK,
        Verb.COPY,
        Verb.CONTACT,
        Verb.SEND,
        Verb.CONFIRM,
        Verb.FIX,
        Verb.KEEP_TYPED,
    )
}
INDEXED = {Verb.CHOOSE, Verb.TICK, Verb.SUGGESTION, Verb.OUTCOME}
UNDERSTOOD = {Verb.CONFIRM, Verb.FIX, Verb.KEEP_TYPED, Verb.CANDIDATE}


@dataclass(frozen=True, slots=True)
class Action:
    """One parsed action: a verb, and what it is about (a step or group id, an index)."""

    verb: Verb
    target: str = ""
    index: int | None = None

    @property
    def code(self) -> str:
        """The action as written in a payload."""
        if self.verb in WORDS.values():
            return self.verb.value
        if self.verb in INDEXED:
            return f"{self.verb.value}{self.index}"
        if self.verb == Verb.CANDIDATE:
            return f"u.a{'n' if self.index is None else self.index}"
        if self.verb == Verb.ITEM:
            return f"i.{self.target}.{self.index}"
        if self.verb in (Verb.FIELD, Verb.EDIT, Verb.ADD_ITEM):
            return f"{self.verb.value}.{self.target}"
        return self.target

    @property
    def is_understood(self) -> bool:
        """True for the buttons of an understood answer's confirmation."""
        return self.verb in UNDERSTOOD


def parse(code: str) -> Action:
    """The action a payload's last part names (`Verb.UNKNOWN` when it names none)."""
    word = WORDS.get(code)
    if word is not None:
        return Action(word)
    head, rest = code[:1], code[1:]
    if head in ("c", "t", "s", "o") and rest.isdecimal():
        return Action(Verb(head), index=int(rest))
    if code.startswith("u.a"):
        choice = code[3:]
        return Action(Verb.CANDIDATE, index=int(choice) if choice.isdigit() else None)
    kind, dot, target = code.partition(".")
    if dot and kind in ("f", "e"):
        return Action(Verb(kind), target=target)
    if dot and kind == "a":
        return Action(Verb.ADD_ITEM, target=target.partition(".")[0])
    if dot and kind == "i":
        group, _, index = target.partition(".")
        return Action(Verb.ITEM, target=group, index=int(index) if index.isdecimal() else None)
    return Action(Verb.UNKNOWN, target=code)


@dataclass(frozen=True, slots=True)
class Payload:
    """A button's whole payload."""

    form: str
    visit: str
    action: Action


def read_payload(payload: str) -> Payload:
    """`<form>:<visit>:<action>` read back."""
    form, _, rest = payload.partition(":")
    visit, _, code = rest.partition(":")
    return Payload(form, visit, parse(code))


def write_payload(form: str, visit: int, action: Action) -> str:
    """`<form>:<visit>:<action>`, at most 60 bytes."""
    payload = f"{form}:{visit}:{action.code}"
    assert len(payload.encode()) <= MAX_PAYLOAD, payload
    return payload
