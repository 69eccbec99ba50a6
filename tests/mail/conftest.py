"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records, refuses or goes down on demand."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from bot.config import Settings
from bot.storage.store import Store
from tests.conftest import FakeClock, make_settings

REPLIES = {
    "421": "421 4.3.2 Service temporairement indisponible",
    "451": "451 4.3.0 Erreur locale, réessayez plus tard",
    "550": "550 5.7.1 Message refusé",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    """One accepted message: envelope and parsed content."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]


@dataclass
class RecordingHandler:
    """Accepts and records messages, or answers `mode` (421/451/550) at DATA."""

    messages: list[Received] = field(default_factory=list)
    mode: str | None = None
    refuse_rcpt: set[str] = field(default_factory=set)
    attempts: int = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse_rcpt:
            return "550 5.1.1 Destinataire inconnu"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.mode:
            return REPLIES[self.mode]
        self.messages.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        )
        return "250 Message accepté"

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]


class SmtpServer:
    """An aiosmtpd server that can be stopped and started again on the same port."""

    def __init__(self, **controller_kw: Any) -> None:
        self.handler = RecordingHandler()
        self.port = free_port()
        self.controller_kw = controller_kw
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, **self.controller_kw
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mail_settings(database_url: str, tmp_path: Path, smtp_server: SmtpServer) -> Settings:
    return make_settings(
        database_url,
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_security="none",
        smtp_timeout=5.0,
    )


@pytest.fixture
def mail_store(mail_settings: Settings, clock: FakeClock) -> Iterator[Store]:
    store = Store.from_url(mail_settings.database_url, clock)
    store.create_all()
    yield store
    store.engine.dispose()
