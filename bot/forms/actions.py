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
from functools import lru_cache
from typing import NamedTuple

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
PLAIN: dict[Verb, str] = {v: str(v.value) for v in WORDS.values()}
INDEXED = {Verb.CHOOSE, Verb.TICK, Verb.SUGGESTION, Verb.OUTCOME}
PREFIX: dict[Verb, str] = {v: str(v.value) for v in INDEXED}
UNDERSTOOD = {Verb.CONFIRM, Verb.FIX, Verb.KEEP_TYPED, Verb.CANDIDATE}


class Action(NamedTuple):
    """One parsed action: a verb, and what it is about (a step or group id, a number)."""

    verb: Verb
    target: str = ""
    number: int | None = None

    @property
    def code(self) -> str:
        """The action as written in a payload."""
        return encode(self)

    @property
    def is_understood(self) -> bool:
        """True for the buttons of an understood answer's confirmation."""
        return self.verb in UNDERSTOOD


def numbered(verb: Verb, number: int) -> str:
    """The code of a numbered action: `c3` (a choice), `t0` (a box), `s1`, `o2`."""
    return f"{PREFIX[verb]}{number}"


@lru_cache(maxsize=4096)
def encode(action: Action) -> str:
    """The action as written in a payload (each one written once per process)."""
    verb, target, number = action
    plain = PLAIN.get(verb)
    if plain is not None:
        return plain
    if verb in INDEXED:
        return numbered(verb, number or 0)
    if verb == Verb.CANDIDATE:
        return f"u.a{'n' if number is None else number}"
    if verb == Verb.ITEM:
        return f"i.{target}.{number}"
    if verb in (Verb.FIELD, Verb.EDIT, Verb.ADD_ITEM):
        return f"{verb.value}.{target}"
    return target


def parse(code: str) -> Action:
    """The action a payload's last part names (`Verb.UNKNOWN` when it names none)."""
    word = WORDS.get(code)
    if word is not None:
        return Action(word)
    head, rest = code[:1], code[1:]
    if head in ("c", "t", "s", "o") and rest.isdecimal():
        return Action(Verb(head), number=int(rest))
    if code.startswith("u.a"):
        choice = code[3:]
        return Action(Verb.CANDIDATE, number=int(choice) if choice.isdigit() else None)
    kind, dot, target = code.partition(".")
    if dot and kind in ("f", "e"):
        return Action(Verb(kind), target=target)
    if dot and kind == "a":
        return Action(Verb.ADD_ITEM, target=target.partition(".")[0])
    if dot and kind == "i":
        group, _, index = target.partition(".")
        return Action(Verb.ITEM, target=group, number=int(index) if index.isdecimal() else None)
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


def payload_prefix(form: str, visit: int) -> str:
    """`<form>:<visit>:`, what every button of a step begins with."""
    return f"{form}:{visit}:"


def write_payload(prefix: str, action: Action | Verb) -> str:
    """`<form>:<visit>:<action>` (`prefix` from `payload_prefix`; a plain verb, or an action).

    At most 60 bytes: `python -m bot lint` checks a form's name leaves room for its longest
    action (bot/forms/lint.py), as the tests do for every form."""
    if type(action) is Verb:
        return prefix + PLAIN[action]
    return prefix + encode(action)
