"""Logging that never writes secrets: bot tokens, passwords and answers are redacted."""

from __future__ import annotations

import logging
import re

TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{20,}\b")
BOT_URL = re.compile(r"/bot[^/\s]+/")


class RedactingFilter(logging.Filter):
    """Replace Telegram tokens and configured secrets in every log record."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self.secrets = [s for s in (secrets or []) if s and len(s) >= 4]

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[secret]")
        text = BOT_URL.sub("/bot[token]/", text)
        return TOKEN.sub("[token]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure_logging(level: str = "INFO", secrets: list[str] | None = None) -> None:
    """Root logging with redaction; chatty HTTP libraries only warn."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for noisy in ("httpx", "httpcore", "apscheduler", "alembic", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
