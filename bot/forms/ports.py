"""What a form needs from outside, as protocols: the composition root (`bot.app`) plugs them.

A form never holds the app: it answers questions through `QuestionAnswering`, hands a finished
response to `Submissions` (storage, outbox, PDF, copy verification: `bot.mail.submission`),
asks its `Host` (the dialogue engine) for the main menu and the look of an answer, and reads the
privacy notice's configured values (retention days, DPO) from `notice_values`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from bot.engine.messages import Button, Reply

if TYPE_CHECKING:
    from sqlmodel import Session

    from bot.config import Settings
    from bot.engine.flow import TurnContext
    from bot.engine.texts import Texts
    from bot.qa import QAAnswer


class QuestionAnswering(Protocol):
    """Answers a question typed in the middle of a form."""

    def answer(self, text: str) -> QAAnswer:
        """The answer from the texts (`abstained` when they do not answer)."""
        ...


class Host(Protocol):
    """The dialogue engine a form runs in (`bot.engine.engine.DialogueEngine`)."""

    def menu_buttons(self, ctx: TurnContext, offer_resume: bool = True) -> list[list[Button]]:
        """The main menu's buttons."""
        ...

    def render_answer(self, ctx: TurnContext, answer: QAAnswer) -> list[Reply]:
        """An answer as the engine shows it (with its follow-up buttons)."""
        ...

    @property
    def texts(self) -> Texts:
        """The texts of `menu.yaml`."""
        ...


class CodeCheck(StrEnum):
    """What checking a typed copy code gave."""

    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    NONE = "none"


@dataclass(frozen=True)
class Receipt:
    """A stored response: its reference, the copies queued, and how to render its fiche."""

    reference: str
    recipient: str
    copies_to: list[str]
    render_fiche: Callable[[], bytes]


class Submissions(Protocol):
    """Where a finished response goes (in the turn's transaction), and the copy's checks."""

    def submitted_today(self, session: Session, user_id: int, now: datetime) -> int:
        """How many responses the user submitted in the last 24 hours."""
        ...

    def copy_address(self, answers: dict[str, Any]) -> str | None:
        """The address a copy would go to (the first usable referent e-mail)."""
        ...

    def is_verified(self, session: Session, user_id: int, address: str) -> bool:
        """True when the user proved they hold the address."""
        ...

    def send_code(
        self, session: Session, settings: Settings, user_id: int, address: str, now: datetime
    ) -> bool:
        """Queue a verification code to the address; False when a daily limit refuses it."""
        ...

    def check_code(
        self,
        session: Session,
        settings: Settings,
        user_id: int,
        address: str,
        typed: str,
        now: datetime,
    ) -> tuple[CodeCheck, int]:
        """Check a typed code: (outcome, tries left)."""
        ...

    def submit(
        self,
        session: Session,
        settings: Settings,
        *,
        user_id: int,
        form_id: str,
        recipient: str,
        answers: dict[str, Any],
        prefix: str,
    ) -> Receipt:
        """Store the response and queue its e-mails, in the caller's transaction."""
        ...


@dataclass
class FormPorts:
    """The ports a form is built with (each absent in unit tests that need none)."""

    qa: QuestionAnswering | None = None
    submissions: Submissions | None = None
    host: Host | None = None
    # the privacy notice's configured values (`bot.privacy.notice_values`), {notice.<key>}
    notice_values: Callable[[], dict[str, str]] | None = None
