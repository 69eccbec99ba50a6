"""What the engine needs from storage and from the storage-backed services, as protocols.

The engine imports neither the storage nor the mail (a ruff rule, `bot/engine/ruff.toml`): the
composition root (`bot.app.build_app`) hands it a `bot.storage.store.Store` (a `StorePort`) and
a `bot.respondent.StoredRespondent` (a `RespondentPort`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlmodel import Session

    from bot.engine.flow import TurnContext
    from bot.engine.messages import Reply


class ConversationRecord(Protocol):
    """A user's conversation row: the active flow, its state, the flows' drafts."""

    user_id: int
    flow: str | None
    state: str | None
    data: dict[str, Any]
    version: int
    consent_at: datetime | None
    updated_at: datetime


class TurnPort(Protocol):
    """One locked turn: the conversation and the open transaction."""

    @property
    def conversation(self) -> ConversationRecord:
        """The locked conversation (saved at the end of the turn)."""
        ...

    @property
    def session(self) -> Session:
        """An ORM session inside the turn's transaction."""
        ...

    def changed(self) -> None:
        """Mark the conversation as changed."""
        ...

    def erase(self) -> None:
        """Delete the conversation at the end of the turn instead of saving it."""
        ...


class StorePort(Protocol):
    """Where conversations are kept: one locked turn at a time, and the clock."""

    clock: Callable[[], datetime]

    def turn(self, user_id: int) -> AbstractContextManager[TurnPort]:
        """Lock the user's conversation for one turn; commit everything at the end."""
        ...


@dataclass(frozen=True)
class Erased:
    """What /supprimer did: references erased before reaching the ARS, and those it holds."""

    erased: list[str]
    kept: list[str]


class RespondentPort(Protocol):
    """The user's side of the ARS exchange and of their data (`bot.exchange`, `bot.privacy`)."""

    def ars_choice(self, ctx: TurnContext, payload: str) -> list[Reply]:
        """A button of a message from the ARS."""
        ...

    def ars_reply(
        self, ctx: TurnContext, submission_id: int, text: str
    ) -> tuple[list[Reply], bool]:
        """The text typed after « Répondre à l'ARS »: (replies, done)."""
        ...

    def erase(self, ctx: TurnContext) -> Erased:
        """Erase everything about the user that the ARS has not received."""
        ...

    def my_data(self, ctx: TurnContext, draft_text: str | None) -> tuple[str, dict[str, Any]]:
        """Everything held about the user: a readable text and the same as JSON."""
        ...

    def dpo(self) -> str:
        """The data protection officer's contact."""
        ...
