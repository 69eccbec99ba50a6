"""Fixtures of the operations tests: the emulator, an SMTP sink, databases for subprocesses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.ops.harness import TOKEN, OpsBotApi, SmtpSink
from tests.postgres_cluster import PostgresCluster


@pytest.fixture
async def api() -> AsyncIterator[OpsBotApi]:
    async with OpsBotApi(TOKEN, bot_username="esp_cpts_ops_bot", webhook_retry_delay=0.2) as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def pg_url(postgres: PostgresCluster) -> str:
    return postgres.new_database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.new_database()
