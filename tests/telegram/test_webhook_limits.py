"""The webhook refuses large bodies before reading them, and logs the socket's address."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.telegram.conftest import serving_webhook


@pytest.fixture
async def webhook_port(botapi, tg_settings, qa_service) -> AsyncIterator[int]:  # type: ignore[no-untyped-def]
    async with serving_webhook(botapi, tg_settings, qa_service) as port:
        yield port


@pytest.fixture
async def proxied_port(botapi, tg_settings, qa_service) -> AsyncIterator[int]:  # type: ignore[no-untyped-def]
    async with serving_webhook(
        botapi, tg_settings, qa_service, webhook_trusted_proxies=["127.0.0.1"]
    ) as port:
        yield port


async def test_a_body_over_one_mebibyte_is_refused_before_the_secret_is_even_checked(
    webhook_port: int,
) -> None:
    url = f"http://127.0.0.1:{webhook_port}/tg/hook"
    headers = {"X-Telegram-Bot-Api-Secret-Token": "wrong", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=b"x" * 1000, headers=headers) as response:
            assert response.status == 403  # small body: read, secret checked
        refused = None
        try:
            big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
            async with session.post(url, data=big, headers=headers) as response:
                refused = response.status
        except aiohttp.ClientError:
            refused = "connection closed"
        assert refused != 403 and refused != 200, refused
        async with session.get(f"http://127.0.0.1:{webhook_port}/healthz") as response:
            assert response.status == 200  # still serving


async def test_a_forged_forwarded_for_is_not_logged_as_the_client(
    webhook_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": "wrong", "X-Forwarded-For": "203.0.113.9"}
    with caplog.at_level(logging.WARNING, logger="bot.adapters.telegram"):
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{webhook_port}/tg/hook", json={}, headers=headers
            ) as response,
        ):
            assert response.status == 403
    [line] = [r.getMessage() for r in caplog.records if "wrong secret" in r.getMessage()]
    assert line.endswith("127.0.0.1") and "203.0.113.9" not in line


async def test_a_trusted_proxy_passes_on_the_client_address(
    proxied_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": "wrong", "X-Real-IP": "203.0.113.9"}
    with caplog.at_level(logging.WARNING, logger="bot.adapters.telegram"):
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{proxied_port}/tg/hook", json={}, headers=headers
            ) as response,
        ):
            assert response.status == 403
    [line] = [r.getMessage() for r in caplog.records if "wrong secret" in r.getMessage()]
    assert line.endswith("203.0.113.9")
