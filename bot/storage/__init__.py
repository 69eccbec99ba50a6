"""Persistence: conversations, submissions, the e-mail outbox, notices and the audit log."""

from bot.storage.models import (
    AuditEntry,
    Conversation,
    OutboxJob,
    OutboxStatus,
    Submission,
    UserNotice,
)
from bot.storage.store import ConversationLocked, Store

__all__ = [
    "AuditEntry",
    "Conversation",
    "ConversationLocked",
    "OutboxJob",
    "OutboxStatus",
    "Store",
    "Submission",
    "UserNotice",
]
