"""The engine's vocabulary: what comes in from an adapter and what goes back out.

Nothing here knows about Telegram or the terminal. Adapters translate their own events into
`Incoming` and render `Reply` objects with their own means (inline keyboards, numbered lists).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """What the user did."""

    TEXT = "text"  # free text typed by the user
    COMMAND = (
        "command"  # /start, /ami… (`text` holds the command name without slash, `arg` its argument)
    )
    CHOICE = "choice"  # a button pressed (`text` holds the button's payload)
    CONTACT = "contact"  # a shared contact card (`text` holds the phone number)
    UNSUPPORTED = "unsupported"  # photo, sticker, voice… (`text` holds the media kind)


@dataclass(frozen=True, slots=True)
class Incoming:
    """One user event, already translated by an adapter."""

    user_id: int
    kind: Kind
    text: str = ""
    arg: str = ""
    display_name: str = ""
    update_id: int | None = None  # the front end's id for the event, to apply it only once

    @classmethod
    def say(cls, user_id: int, text: str) -> Incoming:
        return cls(user_id=user_id, kind=Kind.TEXT, text=text)

    @classmethod
    def command(cls, user_id: int, name: str, arg: str = "") -> Incoming:
        return cls(user_id=user_id, kind=Kind.COMMAND, text=name.lstrip("/").lower(), arg=arg)

    @classmethod
    def choose(cls, user_id: int, payload: str) -> Incoming:
        return cls(user_id=user_id, kind=Kind.CHOICE, text=payload)


@dataclass(frozen=True, slots=True)
class Button:
    """A choice offered to the user. `payload` comes back as an `Incoming` of kind CHOICE."""

    label: str
    payload: str


@dataclass(frozen=True, slots=True)
class Document:
    """A file sent to the user (the filled fiche as PDF, their data as JSON).

    `render`, when given, makes the content after the turn's transaction has committed (the
    engine calls it), so that slow rendering such as a PDF never holds the conversation lock.
    """

    filename: str
    content: bytes
    mime_type: str
    caption: str = ""
    render: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class Reply:
    """One message from the bot.

    `text` is plain text (adapters escape it for their medium); `buttons` are rows of buttons.
    `edit_key`, when set, names a message the adapter may edit in place instead of sending a new
    one (the objectives multi-select toggles its ☐/☑ this way).
    """

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    document: Document | None = None
    edit_key: str | None = None

    def labels(self) -> list[str]:
        return [b.label for row in self.buttons for b in row]


def split_lines(text: str, limit: int) -> list[str]:
    """Cut a long text into pieces of at most `limit` characters, at line breaks when possible."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) + 1 > limit:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


# « de » and « que » elide before a vowel: « la profession d'Anne Le Goff », « d'EHPAD ».
_ELIDABLE = re.compile(r"\b([dD]e|[qQ]ue) \{(\w+)\}")
_VOWELS = frozenset("aeiouàâäéèêëîïôöùûüœæAEIOUÀÂÄÉÈÊËÎÏÔÖÙÛÜŒÆ")


def french_format(template: str, **values: object) -> str:
    """`template.format(**values)`, with « de » / « que » elided before a value that starts
    with a vowel (names, structures typed by the user)."""
    if "{" not in template and "}" not in template:
        return template  # nothing to fill (most prompts): as `format` would return it

    def elide(m: re.Match[str]) -> str:
        value = str(values.get(m.group(2), ""))
        if value[:1] in _VOWELS:
            return f"{m.group(1)[:-1]}'{{{m.group(2)}}}"
        return m.group(0)

    return _ELIDABLE.sub(elide, template).format(**values)
