"""What a handler reports: what to say, and what follows. The runner turns it into replies."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.forms.ports import Receipt
    from bot.qa import QAAnswer


class Then(Enum):
    """What follows the messages of a report."""

    PROMPT = auto()  # the current step, asked again
    REMINDER = auto()  # the current question without its « Réponse actuelle »
    REVIEW_BUTTONS = auto()  # the review's buttons only
    MENU = auto()  # the last message carries the main menu (the form is over)
    WAY_ON = auto()  # after repeated failures: keep as typed, skip, back
    NOTHING = auto()


@dataclass(slots=True)
class Report:
    """What happened in a turn of a form."""

    said: list[str] = field(default_factory=list)  # messages, each its own reply
    then: Then = Then.PROMPT
    note: str = ""  # put before the first reply (« Noté : … »)
    answer: QAAnswer | None = None  # a question answered mid-form, before the prompt
    receipt: Receipt | None = None  # a submitted response: its fiche goes first
    offer_keep: bool = False  # WAY_ON: the refused text may be kept as typed

    def noted(self, note: str) -> Report:
        """The same report with `note` before everything it shows."""
        if note:
            self.note = f"{note}\n\n{self.note}" if self.note else note
        return self


def say(text: str, then: Then = Then.PROMPT) -> Report:
    """A message, then `then` (the step asked again by default)."""
    return Report(said=[text], then=then)
