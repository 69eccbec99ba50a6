"""The dialogues in a terminal: interactive on a TTY, scripted when stdin is a pipe.

Scripted mode reads one user message per line and prints the bot's replies, so conversations
can be written as plain text files. A button is answered by its number or its label; a line
starting with "/" is a command.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from bot.engine.messages import Button, Incoming, Kind, Reply

Handler = Callable[[Incoming], list[Reply]]


class ConsoleSession:
    """Turns lines of text into `Incoming` events and replies into numbered text."""

    def __init__(
        self,
        handle: Handler,
        user_id: int = 1,
        out: TextIO = sys.stdout,
        documents_dir: Path | None = None,
        after_turn: Callable[[], list[str]] | None = None,
        display_name: str = "",
    ) -> None:
        self.handle = handle
        self.user_id = user_id
        self.out = out
        self.documents_dir = documents_dir
        self.after_turn = after_turn
        self.display_name = display_name
        self.buttons: list[Button] = []

    def to_incoming(self, line: str) -> Incoming:
        """Read a typed line as a command, a button (number or label) or free text."""
        text = line.rstrip("\n")
        stripped = text.strip()
        if stripped.startswith("/") and len(stripped) > 1:
            name, _, arg = stripped[1:].partition(" ")
            return Incoming(
                self.user_id, Kind.COMMAND, name.lower(), arg.strip(), self.display_name
            )
        if stripped.isdecimal() and 1 <= int(stripped) <= len(self.buttons):
            return Incoming(self.user_id, Kind.CHOICE, self.buttons[int(stripped) - 1].payload)
        folded = stripped.casefold()
        for button in self.buttons:
            if folded and button.label.casefold().strip() == folded:
                return Incoming(self.user_id, Kind.CHOICE, button.payload)
        for button in self.buttons:  # a label typed without its emoji
            label = "".join(ch for ch in button.label if ch.isalnum() or ch in " '’-").strip()
            if folded and label.casefold() == folded:
                return Incoming(self.user_id, Kind.CHOICE, button.payload)
        return Incoming(self.user_id, Kind.TEXT, text, "", self.display_name)

    def send(self, line: str) -> list[Reply]:
        """Handle one typed line and print the replies."""
        replies = self.handle(self.to_incoming(line))
        self.show(replies)
        return replies

    def show(self, replies: Iterable[Reply]) -> None:
        buttons: list[Button] = []
        for reply in replies:
            self.out.write(reply.text.rstrip() + "\n")
            if reply.document is not None:
                self.out.write(self._save(reply) + "\n")
            for row in reply.buttons:
                for button in row:
                    buttons.append(button)
                    self.out.write(f"  [{len(buttons)}] {button.label}\n")
            self.out.write("\n")
        if buttons:
            self.buttons = buttons
        for notice in self.after_turn() if self.after_turn else []:
            self.out.write(notice.rstrip() + "\n\n")
        self.out.flush()

    def _save(self, reply: Reply) -> str:
        doc = reply.document
        assert doc is not None
        if self.documents_dir is None:
            return f"[document : {doc.filename}, {len(doc.content)} octets]"
        self.documents_dir.mkdir(parents=True, exist_ok=True)
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in doc.filename)
        path = self.documents_dir / safe
        path.write_bytes(doc.content)
        return f"[document enregistré : {path}]"


def run_console(session: ConsoleSession, stdin: TextIO = sys.stdin) -> int:
    """Interactive loop on a terminal; one message per line otherwise."""
    interactive = stdin.isatty()
    if interactive:
        session.out.write(
            "Console du bot ESP / CPTS. Tapez votre message, un numéro de bouton, /aide, "
            "ou Ctrl-D pour quitter.\n\n"
        )
        session.send("/start")
    while True:
        if interactive:
            session.out.write("vous> ")
            session.out.flush()
        line = stdin.readline()
        if not line:
            break
        if not interactive:
            session.out.write(f"> {line.rstrip()}\n")
        session.send(line)
    return 0
