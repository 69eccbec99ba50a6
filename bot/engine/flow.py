"""What a flow (the AMI form, the orientation guide…) sees of a turn, and what it must offer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from bot.engine.messages import Incoming, Reply

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.engine.ports import ConversationRecord, StorePort, TurnPort
    from bot.qa import QAService


@dataclass
class TurnContext:
    """One turn of one user: the locked conversation, the services, and flow switching."""

    turn: TurnPort
    settings: Settings
    qa: QAService
    store: StorePort
    now: datetime
    display_name: str = ""
    # Set by a flow to hand over to another flow at the end of the turn (name, prefill).
    next_flow: tuple[str, dict[str, Any]] | None = None
    finished: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> int:
        return self.turn.conversation.user_id

    @property
    def conversation(self) -> ConversationRecord:
        """The user's conversation row (locked for the turn)."""
        return self.turn.conversation

    def flow_data(self, flow: str) -> dict[str, Any]:
        """The flow's own part of the conversation data (created on first use)."""
        data = self.turn.conversation.data
        return data.setdefault(flow, {})

    def changed(self) -> None:
        self.turn.changed()

    def finish(self) -> None:
        """Leave the current flow at the end of this turn (back to free questions)."""
        self.finished = True

    def switch_to(self, flow: str, **prefill: Any) -> None:
        """Start another flow at the end of this turn, with answers already known."""
        self.next_flow = (flow, prefill)


class Flow(Protocol):
    """A conversation declared in `dialogues/*.yaml` and run by the engine."""

    name: str
    title: str  # what the user is doing, for « Voulez-vous vraiment abandonner {title} ? »

    def start(self, ctx: TurnContext, prefill: dict[str, Any]) -> list[Reply]:
        """Begin (or restart) the flow and return its first prompt."""
        ...

    def handle(self, ctx: TurnContext, incoming: Incoming) -> list[Reply]:
        """Take one user event while the flow is active; call ctx.finish() when done."""
        ...

    def prompt(self, ctx: TurnContext) -> list[Reply]:
        """Ask the current step again (resume, after a question, after a stale button)."""
        ...

    def has_progress(self, ctx: TurnContext) -> bool:
        """True when the user has given answers worth offering to resume."""
        ...
