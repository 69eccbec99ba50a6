"""The engine's `RespondentPort`: the ARS exchange and the user's data, over the storage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from bot import exchange, privacy
from bot.config import Settings
from bot.engine.messages import Reply
from bot.engine.ports import Erased
from bot.storage.models import Conversation
from bot.storage.store import Store

if TYPE_CHECKING:
    from bot.engine.flow import TurnContext


class StoredRespondent:
    """`bot.exchange` and `bot.privacy` for the engine, bound to the store and the settings."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def ars_choice(self, ctx: TurnContext, payload: str) -> list[Reply]:
        """A button of a message from the ARS."""
        data = ctx.conversation.data
        return exchange.handle_choice(
            ctx.turn.session, self.store, self.settings, ctx.user_id, data, payload
        )

    def ars_reply(
        self, ctx: TurnContext, submission_id: int, text: str
    ) -> tuple[list[Reply], bool]:
        """The text typed after « Répondre à l'ARS »: (replies, done)."""
        return exchange.record_reply(
            ctx.turn.session, self.store, self.settings, ctx.user_id, submission_id, text
        )

    def erase(self, ctx: TurnContext) -> Erased:
        """Erase everything about the user that the ARS has not received."""
        erasure = privacy.erase_user(ctx.turn.session, self.settings, ctx.user_id)
        return Erased(erased=list(erasure.erased_submissions), kept=list(erasure.kept))

    def my_data(self, ctx: TurnContext, draft_text: str | None) -> tuple[str, dict[str, Any]]:
        """Everything held about the user: a readable text and the same as JSON."""
        conversation = cast(Conversation, ctx.conversation)  # the store's own row
        return privacy.my_data(
            ctx.turn.session, self.settings, ctx.user_id, conversation, draft_text
        )

    def dpo(self) -> str:
        """The data protection officer's contact."""
        return privacy.dpo(self.settings)
