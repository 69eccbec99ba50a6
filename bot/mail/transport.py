"""Ways of delivering an e-mail: SMTP (aiosmtplib) or `.eml` files in a directory."""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import tempfile
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib

from bot.config import Settings


class TemporaryFailure(Exception):
    """The server is unreachable or answered 4xx: try again later."""


class PermanentFailure(Exception):
    """The server answered 5xx for this message: retrying will not help."""


class ConfigurationError(ValueError):
    """The SMTP settings are unsafe or inconsistent."""


class Transport(Protocol):
    """Delivers one message or raises `TemporaryFailure` / `PermanentFailure`."""

    async def send(self, message: EmailMessage) -> None: ...


def _envelope(message: EmailMessage) -> tuple[str, list[str]]:
    """Envelope sender and recipients: From and To (never Cc, Bcc or Reply-To)."""
    sender = message["From"].addresses[0].addr_spec
    return sender, [a.addr_spec for a in message["To"].addresses]


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def smtp_options(settings: Settings) -> dict[str, Any]:
    """The aiosmtplib connection options for the settings (refuses a password sent in clear)."""
    security = settings.smtp_security
    if security == "none" and settings.smtp_username and not _is_loopback(settings.smtp_host):
        raise ConfigurationError(
            "SMTP_SECURITY=none avec SMTP_USERNAME : le mot de passe circulerait en clair. "
            "Choisissez SMTP_SECURITY=starttls ou tls."
        )
    options: dict[str, Any] = {
        "hostname": settings.smtp_host,
        "port": settings.smtp_effective_port,
        "timeout": settings.smtp_timeout,
        "use_tls": security == "tls",
        "start_tls": security == "starttls",
    }
    if settings.smtp_username:
        options["username"] = settings.smtp_username
        options["password"] = settings.smtp_password
    if security != "none" and settings.smtp_ca_file:
        options["tls_context"] = ssl.create_default_context(cafile=settings.smtp_ca_file)
    return options


def mail_settings_problems(settings: Settings) -> list[str]:
    """Every mistake in the mail settings, in French (empty when the bot can send)."""
    from email.utils import parseaddr

    from bot.mail.outbox import valid_address

    problems: list[str] = []
    host = settings.smtp_host.strip()
    if host and ("://" in host or any(c.isspace() for c in host) or "/" in host):
        problems.append(
            f"SMTP_HOST={settings.smtp_host!r} n'est pas un nom de serveur "
            "(exemple : smtp.example.org, sans « smtp:// » ni espace)."
        )
    if not 0 <= settings.smtp_port <= 65535:
        problems.append(f"SMTP_PORT={settings.smtp_port} : un port va de 1 à 65535 (0 = défaut).")
    if settings.smtp_timeout <= 0:
        problems.append("SMTP_TIMEOUT doit être un nombre de secondes positif.")
    if settings.smtp_password and not settings.smtp_username:
        problems.append("SMTP_PASSWORD est défini sans SMTP_USERNAME : il ne servirait jamais.")
    if host:
        try:
            smtp_options(settings)
        except ConfigurationError as exc:
            problems.append(str(exc))
        except (OSError, ssl.SSLError) as exc:
            problems.append(f"SMTP_CA_FILE={settings.smtp_ca_file!r} illisible : {exc}.")
    for name, value, required in (
        ("MAIL_FROM", settings.mail_from, True),
        ("ARS_MAILBOX", settings.ars_mailbox, True),
        ("ALERT_EMAIL", settings.alert_email, False),
    ):
        if not value and not required:
            continue
        address = parseaddr(value)[1]
        local_ok = name == "MAIL_FROM" and address.endswith("@localhost")  # the demo default
        if valid_address(address) is None and not (local_ok and address.count("@") == 1):
            problems.append(f"{name}={value!r} n'est pas une adresse e-mail valide.")
    for name in (
        "submissions_per_day",
        "copies_per_day",
        "copy_codes_per_day",
        "copy_code_minutes",
        "copy_code_attempts",
        "healthz_outbox_max_minutes",
        "submission_retention_days",
    ):
        if getattr(settings, name) < 1:
            problems.append(f"{name.upper()} doit valoir au moins 1.")
    return problems


def validate_mail_settings(settings: Settings) -> None:
    """Refuse to start with mail settings that could never send (one French message)."""
    problems = mail_settings_problems(settings)
    if problems:
        raise ConfigurationError(
            "Réglages de messagerie invalides, le bot ne démarre pas :\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


class SmtpTransport:
    """Sends through an SMTP server, one connection per message."""

    def __init__(self, settings: Settings, **extra: Any) -> None:
        self.options = smtp_options(settings) | extra

    async def send(self, message: EmailMessage) -> None:
        sender, recipients = _envelope(message)
        try:
            await aiosmtplib.send(message, sender=sender, recipients=recipients, **self.options)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            if codes and all(400 <= c < 500 for c in codes):
                raise TemporaryFailure(detail) from exc
            raise PermanentFailure(detail) from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            # The message is fine, the configuration is not: keep it queued until fixed.
            raise TemporaryFailure(f"authentification refusée : {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            text = f"{exc.code} {exc.message}"
            if 500 <= exc.code < 600:
                raise PermanentFailure(text) from exc
            raise TemporaryFailure(text) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RANDOM_PART = re.compile(r"[0-9a-f]{16}")


def eml_name(message: EmailMessage) -> str:
    """`AMI-2026-0007-ars.eml` from the Message-ID `<AMI-2026-0007.ars.<random>@domain>`."""
    local = str(message["Message-ID"]).strip("<> ").split("@", 1)[0]
    parts = local.split(".")
    if len(parts) >= 3 and _RANDOM_PART.fullmatch(parts[-1]):
        parts = parts[:-1]  # the random part keeps Message-IDs unique, not file names
    stem, _, kind = ".".join(parts).rpartition(".")
    name = f"{stem}-{kind}" if stem else kind
    return _UNSAFE.sub("_", name).strip("._") + ".eml"


class EmlDirectoryTransport:
    """Writes each message as a `.eml` file (same Message-ID, same file): no SMTP needed."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    async def send(self, message: EmailMessage) -> None:
        _, recipients = _envelope(message)
        if "X-Delivered-To" not in message:
            message["X-Delivered-To"] = ", ".join(recipients)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            target = self.directory / eml_name(message)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(message.as_bytes(policy=SMTP_POLICY))
            os.replace(tmp, target)
        except OSError as exc:
            raise TemporaryFailure(f"écriture impossible dans {self.directory} : {exc}") from exc


def make_transport(settings: Settings) -> Transport:
    """SMTP when SMTP_HOST is set, otherwise `.eml` files in MAIL_OUTBOX_DIR."""
    if settings.smtp_host:
        return SmtpTransport(settings)
    return EmlDirectoryTransport(settings.mail_outbox_dir)
