"""Configuration from the environment (and a `.env` file), with production defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
DIALOGUES_DIR = ROOT / "dialogues"
AMI_FLOW = "ami_bretagne"  # the AMI form's flow (its draft's key in a conversation)
KNOWLEDGE_DIR = ROOT / "knowledge"

# From the AMI text: "A retourner à : ars-bretagne-secretariat-daspf@ars.sante.fr"
DEFAULT_ARS_MAILBOX = "ars-bretagne-secretariat-daspf@ars.sante.fr"


class Settings(BaseSettings):
    """Every setting the bot reads. Names are the environment variables of DESIGN.md."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: str = ""
    telegram_api_base_url: str = ""  # e.g. http://127.0.0.1:8081/bot (a Bot API emulator)
    telegram_rate_limit: bool = True  # PTB's AIORateLimiter (Telegram's limits); off for emulators
    webhook_url: str = ""  # public https URL Telegram posts to (webhook mode)
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: str = ""
    # Reverse proxies whose X-Real-IP / X-Forwarded-For are believed (nginx: 127.0.0.1);
    # from anyone else the client address is the socket's
    webhook_trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    database_url: str = f"sqlite:///{ROOT / 'data' / 'bot.sqlite3'}"

    smtp_host: str = ""
    smtp_port: int = 0  # 0: 25 for none, 587 for starttls, 465 for tls
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_timeout: float = 30.0
    smtp_ca_file: str = ""  # PEM bundle to trust for a relay with a private CA (default: system)
    mail_from: str = "bot-cpts@localhost"
    ars_mailbox: str = DEFAULT_ARS_MAILBOX
    mail_outbox_dir: Path = ROOT / "data" / "outbox"

    ars_staff_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # The staff commands in Telegram (/reponses, /export…): off, public agents use the back office
    telegram_staff_commands: bool = False

    # The back office (`python -m bot web`)
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    web_secret_key: str = ""  # signs the OpenID Connect state cookie; random per process if empty
    web_cookie_secure: bool = True  # cookies only over HTTPS (false for plain-HTTP tests)
    web_session_hours: float = 8.0  # a session ends this long after sign-in…
    web_session_idle_minutes: float = 60.0  # …or after this long without a request
    web_login_max_failures_account: int = 5  # failed sign-ins per account…
    web_login_max_failures_ip: int = 20  # …and per address…
    web_login_window_minutes: float = 15.0  # …in this window, then refused until it passes
    web_page_size: int = 50
    oidc_issuer: str = ""  # e.g. https://auth.agentconnect.gouv.fr/api/v2 (ProConnect)
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_redirect_url: str = ""  # e.g. https://backoffice.example.org/auth/oidc/callback
    oidc_scopes: str = "openid email"

    digest_every_hours: int = 0  # 0: no digest
    draft_retention_days: int = 30
    draft_reminder_days: int = 7
    flood_messages: int = 20  # per user…
    flood_seconds: float = 10.0  # …in this window before a polite notice

    # Trust: copies only to proven addresses, limits over 24 h (bot/mail/trust.py)
    submissions_per_day: int = 3  # responses one user may send in 24 h
    copies_per_day: int = 3  # copies one address may receive in 24 h
    copy_codes_per_day: int = 5  # verification codes per user, and per address, in 24 h
    copy_code_minutes: int = 15  # a code's validity
    copy_code_attempts: int = 5  # tries per code

    # Failures reach people: permanent e-mail failures are e-mailed here (and told to staff)
    alert_email: str = ""
    healthz_outbox_max_minutes: int = 60  # /healthz fails when a pending e-mail is older

    # Privacy notice and retention
    dpo_contact: str = ""  # the ARS's data protection officer (address shown in the notice)
    submission_retention_days: int = 365  # submitted responses, their e-mails and files

    # Talking with respondents (bot/exchange.py): the « temps d'échange »
    meeting_minutes: int = 60  # a proposed slot's default length
    meeting_reminder_hours: int = 24  # the respondent's reminder, this long before the slot

    log_level: str = "INFO"

    @field_validator("webhook_trusted_proxies", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.replace(";", ",").split(",") if v.strip()]
        return value

    @field_validator("ars_staff_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(v) for v in value.replace(";", ",").split(",") if v.strip()]
        if isinstance(value, int):
            return [value]
        return value

    @property
    def smtp_effective_port(self) -> int:
        if self.smtp_port:
            return self.smtp_port
        return {"none": 25, "starttls": 587, "tls": 465}[self.smtp_security]

    def is_staff(self, user_id: int) -> bool:
        return user_id in self.ars_staff_ids
