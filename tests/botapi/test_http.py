"""The emulator's HTTP surface, spoken to directly (no PTB)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.support.botapi import BotApiServer, parse_html, parse_markdown_v2


async def test_unknown_token_and_method(server: BotApiServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{server.base_url}999:WRONG/getMe")
        assert response.status_code == 401
        assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        response = await client.post(f"{server.api_url}/sendTeleport")
        assert response.status_code == 404
        assert response.json()["description"] == "Not Found: method not found"
        response = await client.get(f"{server.api_url}/getMe")
        assert response.json()["result"]["username"] == "esp_test_bot"


async def test_json_and_urlencoded_bodies(server: BotApiServer) -> None:
    server.user(3001, "Json")
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{server.api_url}/sendMessage",
            json={
                "chat_id": 3001,
                "text": "<b>1</b>",
                "parse_mode": "HTML",
                "reply_markup": {"inline_keyboard": [[{"text": "go", "callback_data": "go"}]]},
            },
        )
        message = response.json()["result"]
        assert message["text"] == "1"
        assert message["entities"] == [{"type": "bold", "offset": 0, "length": 1}]
        assert message["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "go"
        response = await client.post(
            f"{server.api_url}/sendMessage", data={"chat_id": "3001", "text": "123"}
        )
        assert response.json()["result"]["text"] == "123"  # text stays a string
    assert server.calls("sendMessage")[1].params == {"chat_id": 3001, "text": "123"}


async def test_get_updates_offset_limit_and_long_poll(server: BotApiServer) -> None:
    user = server.user(3002, "Poll")
    for index in range(3):
        await user.send_text(f"m{index}")
    async with httpx.AsyncClient(timeout=5) as client:
        url = f"{server.api_url}/getUpdates"
        first = (await client.post(url, data={"limit": "2"})).json()["result"]
        assert [u["message"]["text"] for u in first] == ["m0", "m1"]
        again = (await client.post(url, data={"offset": str(first[-1]["update_id"] + 1)})).json()
        assert [u["message"]["text"] for u in again["result"]] == ["m2"]
        last_id = again["result"][-1]["update_id"]
        started = time.monotonic()
        empty = (await client.post(url, data={"offset": str(last_id + 1), "timeout": "0.3"})).json()
        assert empty["result"] == []
        assert time.monotonic() - started >= 0.25
        # a long poll is woken by a new update
        poll = asyncio.create_task(
            client.post(url, data={"offset": str(last_id + 1), "timeout": "5"})
        )
        await asyncio.sleep(0.1)
        await user.send_text("wake")
        result = (await asyncio.wait_for(poll, 2)).json()["result"]
        assert [u["message"]["text"] for u in result] == ["wake"]
        # allowed_updates filters out (and drops) other types
        await user.send_text("dropped")
        await user.block()
        only = (
            await client.post(
                url,
                data={
                    "offset": str(result[-1]["update_id"] + 1),
                    "allowed_updates": '["my_chat_member"]',
                },
            )
        ).json()["result"]
        assert list(only[0]) == ["update_id", "my_chat_member"]


async def test_second_poller_terminates_first(server: BotApiServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        url = f"{server.api_url}/getUpdates"
        first = asyncio.create_task(client.post(url, data={"timeout": "3"}))
        await asyncio.sleep(0.1)
        second = asyncio.create_task(client.post(url, data={"timeout": "0.2"}))
        response = await asyncio.wait_for(first, 2)
        assert response.status_code == 409
        assert "terminated by other getUpdates request" in response.json()["description"]
        assert (await second).json()["result"] == []


def test_html_parser_rules() -> None:
    plain, entities = parse_html(
        '<b>a<i>b</i></b> <a href="https://x.fr/?a=1&amp;b=2">lien</a> &lt;&#233;&#x41;&gt; '
        '<tg-spoiler>s</tg-spoiler> <span class="tg-spoiler">t</span> '
        '<pre><code class="language-python">x</code></pre> <blockquote expandable>q</blockquote>'
    )
    assert plain == "ab lien <éA> s t x q"
    kinds = [(e["type"], e["offset"], e["length"]) for e in entities]
    assert ("bold", 0, 2) in kinds and ("italic", 1, 1) in kinds
    link = next(e for e in entities if e["type"] == "text_link")
    assert link["url"] == "https://x.fr/?a=1&b=2"
    assert next(e for e in entities if e["type"] == "pre")["language"] == "python"
    assert any(e["type"] == "expandable_blockquote" for e in entities)
    # offsets are UTF-16 code units
    _, emoji_entities = parse_html("😀<b>x</b>")
    assert emoji_entities == [{"type": "bold", "offset": 2, "length": 1}]
    assert parse_html("Tom & Jerry", strict_ampersand=False)[0] == "Tom & Jerry"


@pytest.mark.parametrize(
    "text", ["<br>", "<b>x", "x</b>", "<a href='x'>y", "1 < 2", "&nbsp;", "<b/>"]
)
def test_html_parser_rejects(text: str) -> None:
    from tests.support.botapi import EntityParseError

    with pytest.raises(EntityParseError):
        parse_html(text)


def test_markdown_v2() -> None:
    plain, entities = parse_markdown_v2(r"*gras* _it_ __u__ [lien](https://x.fr) `c` 1\.5")
    assert plain == "gras it u lien c 1.5"
    assert [e["type"] for e in entities] == ["bold", "italic", "underline", "text_link", "code"]
    from tests.support.botapi import EntityParseError

    with pytest.raises(EntityParseError, match="reserved"):
        parse_markdown_v2("1.5")
    with pytest.raises(EntityParseError, match="Bold"):
        parse_markdown_v2("*gras")
