"""Fixtures for the emulator's own tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.botapi import BotApiServer

TOKEN = "123456:TEST-TOKEN"


@pytest.fixture
async def server() -> AsyncIterator[BotApiServer]:
    """A running emulator."""
    async with BotApiServer(token=TOKEN, bot_username="esp_test_bot") as running:
        yield running
