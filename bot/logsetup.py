"""Logging that never writes secrets or personal data, at any level.

Three layers:
- third-party libraries (python-telegram-bot, httpx, aiohttp, tornado, SQLAlchemy, aiosmtplib…)
  log at WARNING at least, whatever LOG_LEVEL says: their DEBUG/INFO lines print request and
  response bodies, i.e. users' messages and answers; and the handler drops any of their records
  below WARNING even if a library lowers its own level;
- the bot's own log lines carry ids, counts and kinds, never what users typed;
- a last redaction pass on every record: bot tokens, configured secrets, e-mail addresses
  (except the bot's own and the ARS's) and phone numbers are replaced.
"""

from __future__ import annotations

import logging
import re

TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{20,}\b")
BOT_URL = re.compile(r"/bot[^/\s]+/")
EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PHONE = re.compile(r"(?<![\w+])(?:(?:\+33[ .]?|0)[1-9](?:[ .-]?\d{2}){4}|\+\d{8,15})(?!\w)")
OWN_LOGGERS = ("bot", "__main__", "benchmarks")
THIRD_PARTY = (
    "telegram",
    "httpx",
    "httpcore",
    "aiohttp",
    "tornado",
    "sqlalchemy",
    "aiosmtplib",
    "aiosmtpd",
    "mail.log",
    "asyncio",
    "apscheduler",
    "alembic",
    "fontTools",
    "fpdf",
    "PIL",
    "urllib3",
    "hpack",
    "openpyxl",
    "dateparser",
    "tzlocal",
)


class RedactingFilter(logging.Filter):
    """Replace tokens, secrets, e-mail addresses and phone numbers in every log record."""

    def __init__(self, secrets: list[str] | None = None, allowed: list[str] | None = None) -> None:
        super().__init__()
        self.secrets = [s for s in (secrets or []) if s and len(s) >= 4]
        self.allowed = {a.lower() for a in (allowed or []) if a}

    def _email(self, match: re.Match[str]) -> str:
        return match.group(0) if match.group(0).lower() in self.allowed else "[e-mail]"

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[secret]")
        text = BOT_URL.sub("/bot[token]/", text)
        text = TOKEN.sub("[token]", text)
        text = EMAIL.sub(self._email, text)
        return PHONE.sub("[téléphone]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            # the traceback's last line repeats the exception's message: redact it too
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redact(formatted)
        return True


class ThirdPartyFilter(logging.Filter):
    """Drop library records below WARNING: at DEBUG they print request and response bodies."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return record.name.split(".", 1)[0] in OWN_LOGGERS


def configure_logging(
    level: str = "INFO", secrets: list[str] | None = None, allowed: list[str] | None = None
) -> None:
    """Root logging with redaction; libraries only warn, at every LOG_LEVEL."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ThirdPartyFilter())
    handler.addFilter(RedactingFilter(secrets, allowed))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for noisy in THIRD_PARTY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
