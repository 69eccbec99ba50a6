"""Fixtures shared by every test: settings on a throwaway database, the app, a scripted chat."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Settings
from bot.engine.messages import Button, Incoming, Kind, Reply
from tests.postgres_cluster import PostgresCluster, find_pg_bin

STAFF_ID = 999


class FakeClock:
    """A clock tests move by hand (the store and the engine read time only through it)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster on a free loopback port (skips if no server binaries)."""
    if find_pg_bin() is None:
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail("REQUIRE_POSTGRES is set but no PostgreSQL server binaries were found")
        pytest.skip("PostgreSQL server binaries not found (.ci/run installs them)")
    with PostgresCluster.start() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on SQLite and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.new_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.sqlite3'}"


def make_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "mail_outbox_dir": tmp_path / "outbox",
        "ars_staff_ids": [STAFF_ID],
        "telegram_staff_commands": True,
        "smtp_host": "",
        "telegram_bot_token": "",
        "mail_from": "bot-cpts@example.org",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return make_settings(sqlite_url, tmp_path)


@pytest.fixture(scope="session", autouse=True)
def qa_service():  # type: ignore[no-untyped-def]
    """The question-answering service, loaded once; autouse so that the index cache is built
    (spaCy vectors, topic classifier: 10-20 s) before any test starts a bot process, whose
    readiness wait would otherwise include the build."""
    from bot.qa import QAService

    return QAService.load()


@pytest.fixture
def app(settings: Settings, clock: FakeClock, qa_service):  # type: ignore[no-untyped-def]
    from bot.app import build_app

    return build_app(settings, qa=qa_service, clock=clock, create_schema=True)


class Chat:
    """A scripted conversation with the engine: what the user types, what the bot says."""

    def __init__(self, app, user_id: int = 1) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.user_id = user_id
        self.replies: list[Reply] = []
        self.sent = 0  # user messages, buttons included

    def _run(self, incoming: Incoming) -> str:
        self.sent += 1
        self.replies = self.app.engine.handle(incoming)
        return self.text

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.replies)

    @property
    def buttons(self) -> list[Button]:
        return [b for r in self.replies for row in r.buttons for b in row]

    def say(self, text: str) -> str:
        """Type text (a line starting with / is a command)."""
        if text.startswith("/"):
            name, _, arg = text[1:].partition(" ")
            return self._run(Incoming(self.user_id, Kind.COMMAND, name.lower(), arg.strip()))
        return self._run(Incoming(self.user_id, Kind.TEXT, text))

    def press(self, label: str) -> str:
        """Press the button whose label contains `label` (case-insensitive) in the last replies."""
        wanted = label.casefold()
        for button in self.buttons:
            if button.label.casefold() == wanted:
                return self._run(Incoming(self.user_id, Kind.CHOICE, button.payload))
        for button in self.buttons:
            if wanted in button.label.casefold():
                return self._run(Incoming(self.user_id, Kind.CHOICE, button.payload))
        raise AssertionError(f"no button {label!r} among {[b.label for b in self.buttons]}")

    def send(self, kind: Kind, text: str = "") -> str:
        return self._run(Incoming(self.user_id, kind, text))


@pytest.fixture
def chat(app) -> Chat:  # type: ignore[no-untyped-def]
    return Chat(app)
