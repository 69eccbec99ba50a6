"""A Telegram Bot API server emulator on loopback, plus a user-side API for tests.

PTB (python-telegram-bot) talks to :class:`BotApiServer` over real HTTP, unmodified::

    async with BotApiServer(token="123:ABC") as server:
        app = server.application_builder().build()
        app.add_handler(...)
        async with run_polling(app):
            user = server.user(user_id=1001, first_name="Claire")
            await user.send_text("Bonjour")
            [reply] = await user.wait_for_messages(1)

See ``docs/testing-botapi.md`` for the full guide.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import secrets
import socket
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

__all__ = [
    "ApiError",
    "BotApiServer",
    "BotApiTimeout",
    "BotMessage",
    "CallbackQueryState",
    "ChatHandle",
    "EntityParseError",
    "FileRecord",
    "GroupHandle",
    "RecordedCall",
    "UserHandle",
    "WebhookDelivery",
    "parse_html",
    "parse_markdown_v2",
    "run_polling",
    "run_webhook",
    "utf16_len",
]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200

# Update types delivered when allowed_updates is empty (Telegram's default).
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

# Parameters that Telegram treats as strings: never JSON-decode them.
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "inline_message_id",
        "url",
        "secret_token",
        "language_code",
        "action",
        "ip_address",
        "first_name",
        "last_name",
        "phone_number",
        "title",
        "description",
        "short_description",
        "name",
        "query",
        "emoji",
        "business_connection_id",
        "message_effect_id",
        "question",
        "address",
        "document",
        "photo",
        "audio",
        "video",
        "voice",
        "animation",
        "sticker",
        "video_note",
        "thumbnail",
        "file_id",
    }
)

# Methods whose call to a chat counts as "the bot replied" for latency measurement.
_REPLY_METHODS = frozenset(
    {
        "sendmessage",
        "senddocument",
        "sendphoto",
        "editmessagetext",
        "editmessagereplymarkup",
        "editmessagecaption",
        "copymessage",
        "forwardmessage",
    }
)

# Methods never throttled by :meth:`BotApiServer.throttle` unless named explicitly.
_UNTHROTTLED_BY_DEFAULT = frozenset(
    {"getupdates", "getme", "setwebhook", "deletewebhook", "getwebhookinfo", "close", "logout"}
)


# --------------------------------------------------------------------------------------------
# Helpers: text, entities, HTML and MarkdownV2 parsing
# --------------------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (the unit of Telegram entity offsets)."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


class EntityParseError(ValueError):
    """Raised when formatted text cannot be parsed (Telegram's "can't parse entities")."""


_HTML_TAGS: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_END_TAG_RE = re.compile(r"</([^\s>]*)\s*>")
_TAG_NAME_STOP = " \t\r\n>/"
_ATTR_NAME_STOP = " \t\r\n=>"


@dataclass
class _OpenTag:
    name: str
    start: int  # UTF-16 offset in the plain text
    attrs: dict[str, str | None]
    byte_offset: int


def _decode_entity(match: re.Match[str], source: str, index: int) -> str:
    named, dec, hexa = match.groups()
    if named:
        return _NAMED_ENTITIES[named]
    code = int(dec) if dec is not None else int(hexa, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise EntityParseError(
            f"Can't parse entities: invalid numeric HTML entity at byte offset "
            f"{_byte_offset(source, index)}"
        )
    return chr(code)


def _unescape_attr(value: str) -> str:
    return html.unescape(value)


def parse_html(text: str, *, strict_ampersand: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram-flavoured HTML into (plain text, entities) or raise EntityParseError."""
    out: list[str] = []
    pos = 0  # UTF-16 length of ``out``
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    i, n = 0, len(text)

    def emit(chunk: str) -> None:
        nonlocal pos
        out.append(chunk)
        pos += utf16_len(chunk)

    while i < n:
        char = text[i]
        if char == "&":
            match = _ENTITY_RE.match(text, i)
            if match:
                emit(_decode_entity(match, text, i))
                i = match.end()
                continue
            if strict_ampersand:
                snippet = text[i : i + 12].split(" ")[0]
                raise EntityParseError(
                    f'Can\'t parse entities: unsupported HTML entity "{snippet}" at byte offset '
                    f"{_byte_offset(text, i)} (escape '&' as &amp;)"
                )
            emit("&")
            i += 1
            continue
        if char != "<":
            start = i
            while i < n and text[i] not in "<&":
                i += 1
            emit(text[start:i])
            continue
        byte_off = _byte_offset(text, i)
        if text.startswith("</", i):
            match = _END_TAG_RE.match(text, i)
            if not match:
                raise EntityParseError(
                    f"Can't parse entities: unclosed end tag at byte offset {byte_off}"
                )
            name = match.group(1).lower()
            if not stack:
                raise EntityParseError(
                    f"Can't parse entities: unexpected end tag at byte offset {byte_off}"
                )
            top = stack[-1]
            if name and name != top.name:
                raise EntityParseError(
                    f"Can't parse entities: unmatched end tag at byte offset {byte_off}, "
                    f'expected "</{top.name}>", found "</{name}>"'
                )
            stack.pop()
            _close_html_entity(top, pos, entities, stack)
            i = match.end()
            continue
        # Start tag.
        j = i + 1
        while j < n and text[j] not in _TAG_NAME_STOP:
            j += 1
        name = text[i + 1 : j].lower()
        if name not in _HTML_TAGS:
            raise EntityParseError(
                f'Can\'t parse entities: unsupported start tag "{name}" at byte offset {byte_off}'
            )
        attrs: dict[str, str | None] = {}
        while True:
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j >= n:
                raise EntityParseError(
                    f"Can't parse entities: unclosed start tag at byte offset {byte_off}"
                )
            if text[j] == ">":
                j += 1
                break
            if text[j] == "/" and text.startswith("/>", j):
                raise EntityParseError(
                    f'Can\'t parse entities: unsupported self-closing tag "{name}" at byte offset '
                    f"{byte_off}"
                )
            k = j
            while k < n and text[k] not in _ATTR_NAME_STOP:
                k += 1
            attr_name = text[j:k].lower()
            if not attr_name:
                raise EntityParseError(
                    f'Can\'t parse entities: empty attribute name in the tag "{name}" at byte '
                    f"offset {byte_off}"
                )
            j = k
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j >= n or text[j] != "=":
                attrs[attr_name] = None
                continue
            j += 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j >= n:
                raise EntityParseError(
                    f"Can't parse entities: unclosed start tag at byte offset {byte_off}"
                )
            if text[j] in "\"'":
                quote = text[j]
                end = text.find(quote, j + 1)
                if end < 0:
                    raise EntityParseError(
                        f"Can't parse entities: unclosed end of attribute value at byte offset "
                        f"{byte_off}"
                    )
                attrs[attr_name] = _unescape_attr(text[j + 1 : end])
                j = end + 1
            else:
                k = j
                while k < n and text[k] not in " \t\r\n>":
                    k += 1
                attrs[attr_name] = _unescape_attr(text[j:k])
                j = k
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError(
                f'Can\'t parse entities: tag "span" must have class "tg-spoiler" at byte offset '
                f"{byte_off}"
            )
        if name == "tg-emoji" and not (attrs.get("emoji-id") or "").isdigit():
            raise EntityParseError(
                f'Can\'t parse entities: tag "tg-emoji" must have a valid "emoji-id" attribute '
                f"at byte offset {byte_off}"
            )
        stack.append(_OpenTag(name, pos, attrs, byte_off))
        i = j
    if stack:
        raise EntityParseError(
            f"Can't parse entities: can't find end tag corresponding to start tag \"{stack[-1].name}\""
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close_html_entity(
    tag: _OpenTag, pos: int, entities: list[dict[str, Any]], stack: list[_OpenTag]
) -> None:
    length = pos - tag.start
    if length <= 0:
        return
    kind = _HTML_TAGS[tag.name]
    entity: dict[str, Any] = {"type": kind, "offset": tag.start, "length": length}
    if tag.name == "a":
        href = tag.attrs.get("href") or ""
        match = re.fullmatch(r"tg://user\?id=(\d+)", href)
        if match:
            entity = {"type": "text_mention", "offset": tag.start, "length": length}
            entity["user"] = {"id": int(match.group(1)), "is_bot": False, "first_name": ""}
        elif not href:
            return
        else:
            entity["url"] = href
    elif tag.name == "tg-emoji":
        entity["custom_emoji_id"] = tag.attrs.get("emoji-id")
    elif tag.name == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    elif tag.name == "code":
        language = tag.attrs.get("class") or ""
        if stack and stack[-1].name == "pre" and language.startswith("language-"):
            stack[-1].attrs["__language"] = language[len("language-") :]
    elif tag.name == "pre" and tag.attrs.get("__language"):
        entity["language"] = tag.attrs["__language"]
    entities.append(entity)


_MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"
_MDV2_MARKERS = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
}
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
}


def parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram MarkdownV2 into (plain text, entities) or raise EntityParseError."""
    out: list[str] = []
    pos = 0
    stack: list[tuple[str, int, int]] = []  # (marker, start, byte offset)
    entities: list[dict[str, Any]] = []
    link_stack: list[tuple[int, int]] = []
    i, n = 0, len(text)

    def emit(chunk: str) -> None:
        nonlocal pos
        out.append(chunk)
        pos += utf16_len(chunk)

    while i < n:
        char = text[i]
        if char == "\\":
            if i + 1 < n and ord(text[i + 1]) < 127:
                emit(text[i + 1])
                i += 2
                continue
            emit(char)
            i += 1
            continue
        if char == "`":
            fence = text.startswith("```", i)
            delim = "```" if fence else "`"
            j = i + len(delim)
            chunk: list[str] = []
            while j < n and not text.startswith(delim, j):
                if text[j] == "\\" and j + 1 < n and text[j + 1] in "`\\":
                    chunk.append(text[j + 1])
                    j += 2
                    continue
                chunk.append(text[j])
                j += 1
            if j >= n:
                kind = "Pre" if fence else "Code"
                raise EntityParseError(
                    f"Can't parse entities: can't find end of {kind} entity at byte offset {_byte_offset(text, i)}"
                )
            body = "".join(chunk)
            language = ""
            if fence and "\n" in body:
                first, rest = body.split("\n", 1)
                if first and " " not in first:
                    language, body = first, rest
            start = pos
            emit(body)
            entity: dict[str, Any] = {
                "type": "pre" if fence else "code",
                "offset": start,
                "length": pos - start,
            }
            if language:
                entity["language"] = language
            if entity["length"]:
                entities.append(entity)
            i = j + len(delim)
            continue
        if char == "[":
            link_stack.append((pos, i))
            i += 1
            continue
        if char == "]" and link_stack:
            start, _ = link_stack.pop()
            if not text.startswith("(", i + 1):
                raise EntityParseError(
                    "Can't parse entities: character ']' is reserved and must be escaped with "
                    "the preceding '\\'"
                )
            end = i + 2
            url_chars: list[str] = []
            while end < n and text[end] != ")":
                if text[end] == "\\" and end + 1 < n:
                    url_chars.append(text[end + 1])
                    end += 2
                    continue
                url_chars.append(text[end])
                end += 1
            if end >= n:
                raise EntityParseError(
                    f"Can't parse entities: can't find end of a url at byte offset {_byte_offset(text, i)}"
                )
            if pos > start:
                entities.append(
                    {
                        "type": "text_link",
                        "offset": start,
                        "length": pos - start,
                        "url": "".join(url_chars),
                    }
                )
            i = end + 1
            continue
        if char == ">" and (i == 0 or text[i - 1] == "\n"):
            # Block quotation line marker: keep it simple, no entity bookkeeping across lines.
            i += 1
            continue
        marker = None
        if text.startswith("__", i):
            marker = "__"
        elif text.startswith("||", i):
            marker = "||"
        elif char in "*_~":
            marker = char
        if marker is not None:
            if stack and stack[-1][0] == marker:
                _, start, _ = stack.pop()
                if pos > start:
                    entities.append(
                        {"type": _MDV2_MARKERS[marker], "offset": start, "length": pos - start}
                    )
            else:
                stack.append((marker, pos, i))
            i += len(marker)
            continue
        if char in _MDV2_RESERVED:
            raise EntityParseError(
                f"Can't parse entities: character '{char}' is reserved and must be escaped with "
                f"the preceding '\\'"
            )
        emit(char)
        i += 1
    if stack:
        marker, _, index = stack[-1]
        raise EntityParseError(
            f"Can't parse entities: can't find end of {_MDV2_NAMES[_MDV2_MARKERS[marker]]} "
            f"entity at byte offset {_byte_offset(text, index)}"
        )
    if link_stack:
        raise EntityParseError(
            f"Can't parse entities: can't find end of a text URL at byte offset "
            f"{_byte_offset(text, link_stack[-1][1])}"
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _html_to_plain(text: str) -> str:
    """Best-effort plain text of HTML (never raises)."""
    try:
        return parse_html(text, strict_ampersand=False)[0]
    except EntityParseError:
        return html.unescape(re.sub(r"<[^>]*>", "", text))


_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


def _command_entities(text: str) -> list[dict[str, Any]]:
    entities = []
    for match in _COMMAND_RE.finditer(text):
        entities.append(
            {
                "type": "bot_command",
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group(0)),
            }
        )
    return entities


# --------------------------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """A Bot API error answered to the bot, e.g. ``ApiError(400, "Bad Request: …")``."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram sends for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


class BotApiTimeout(AssertionError):
    """Raised by the ``wait_*`` helpers when the bot did not do what was expected in time."""


@dataclass
class RecordedCall:
    """One Bot API call received from the bot."""

    method: str
    params: dict[str, Any]
    time: float  # time.monotonic() at arrival
    files: dict[str, FileRecord] = field(default_factory=dict)
    status: int = 0
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        return self.status == 200


@dataclass
class FileRecord:
    """A file known to the server (uploaded by the bot or sent by a user)."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_name: str | None = None
    mime_type: str | None = None
    file_path: str | None = None

    @property
    def size(self) -> int:
        """Size of the file in bytes."""
        return len(self.data)


@dataclass
class BotMessage:
    """A message sent by the bot as seen by the user, with edits applied.

    ``text`` is what the bot sent (possibly HTML); ``plain`` is the parsed plain text. For media
    messages both hold the caption.
    """

    message_id: int
    chat_id: int
    method: str
    date: int
    text: str | None
    plain: str | None
    parse_mode: str | None
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None
    raw: dict[str, Any]
    document: FileRecord | None = None
    photo: FileRecord | None = None
    history: list[str | None] = field(default_factory=list)
    markup_history: list[dict[str, Any] | None] = field(default_factory=list)
    deleted: bool = False
    link_preview_disabled: bool = False
    reply_to_message_id: int | None = None

    @property
    def edited(self) -> bool:
        """True when the message was edited at least once."""
        return bool(self.history) or bool(self.markup_history)

    @property
    def keyboard(self) -> list[list[tuple[str, str | None]]]:
        """Inline keyboard rows as (label, callback_data or url) pairs."""
        if not self.reply_markup or "inline_keyboard" not in self.reply_markup:
            return []
        return [
            [(b.get("text", ""), b.get("callback_data", b.get("url"))) for b in row]
            for row in self.reply_markup["inline_keyboard"]
        ]

    @property
    def buttons(self) -> list[str]:
        """Labels of all inline buttons, row by row."""
        return [label for row in self.keyboard for label, _ in row]

    @property
    def reply_keyboard(self) -> list[list[str]] | None:
        """Reply-keyboard rows (labels) attached to this message, if any."""
        if not self.reply_markup or "keyboard" not in self.reply_markup:
            return None
        return [[_button_label(b) for b in row] for row in self.reply_markup["keyboard"]]

    def find_button(self, label: str | None = None, data: str | None = None) -> dict[str, Any]:
        """Return the inline button with this label (or callback_data); KeyError if absent."""
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            for row in self.reply_markup["inline_keyboard"]:
                for button in row:
                    if label is not None and button.get("text") == label:
                        return button
                    if data is not None and button.get("callback_data") == data:
                        return button
                    if label is not None and data is None and button.get("callback_data") == label:
                        return button
        raise KeyError(label if label is not None else data)

    def __str__(self) -> str:
        return f"#{self.message_id} {self.method}: {self.plain!r} {self.buttons or ''}"


def _button_label(button: Any) -> str:
    return button if isinstance(button, str) else str(button.get("text", ""))


@dataclass
class CallbackQueryState:
    """A callback query created by a user pressing an inline button."""

    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str | None
    created: float
    answered: bool = False
    answer: dict[str, Any] | None = None


@dataclass
class WebhookDelivery:
    """One attempt to POST an update to a webhook target."""

    update_id: int
    url: str
    attempt: int
    status: int | None
    error: str | None
    time: float


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None


@dataclass
class _ChatState:
    chat: dict[str, Any]
    user_id: int | None = None  # private chats
    next_message_id: int = 1
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    bot_messages: list[BotMessage] = field(default_factory=list)
    bot_by_id: dict[int, BotMessage] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    reply_keyboard: list[list[str]] | None = None
    last_activity: float = 0.0


@dataclass
class _UserState:
    user: dict[str, Any]
    blocked: bool = False


class _Target:
    def __init__(self, url: str) -> None:
        self.url = url
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.busy = 0


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class BotApiServer:
    """Bot API emulator bound to 127.0.0.1 on a free port; use as an async context manager."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        bot_username: str = "test_bot",
        bot_first_name: str = "Test Bot",
        host: str = "127.0.0.1",
        port: int = 0,
        strict_html: bool = True,
        webhook_max_attempts: int = 3,
        webhook_retry_delay: float = 0.05,
        webhook_timeout: float = 10.0,
        require_https_webhook: bool = False,
    ) -> None:
        self.token = token
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.bot_user: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.host = host
        self._requested_port = port
        self.port = 0
        self.strict_html = strict_html
        self.webhook_max_attempts = webhook_max_attempts
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_timeout = webhook_timeout
        self.require_https_webhook = require_https_webhook

        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closing = False
        self._changed = asyncio.Event()
        self._updates_changed = asyncio.Event()

        self._calls: list[RecordedCall] = []
        self._last_bot_activity = 0.0
        self._chats: dict[int, _ChatState] = {}
        self._users: dict[int, _UserState] = {}
        self._files: dict[str, FileRecord] = {}
        self._file_paths: dict[str, FileRecord] = {}
        self._file_counter = itertools.count(1)
        self._callbacks: dict[str, CallbackQueryState] = {}
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._menu_buttons: dict[int | None, dict[str, Any]] = {}
        self._bot_texts: dict[str, dict[str, str]] = {}
        self._handles: dict[int, ChatHandle] = {}

        self._update_ids = itertools.count(1)
        self._pending: deque[dict[str, Any]] = deque()
        self._allowed_updates: list[str] = []
        self._poll_generation = 0
        self._polling_since: float | None = None

        self._webhook: _Webhook | None = None
        self._webhook_last_error: tuple[int, str] | None = None
        self._lb_targets: list[str] | None = None
        self._lb_chooser: Callable[[dict[str, Any], list[str]], str] | None = None
        self._lb_counter = itertools.count()
        self._targets: dict[str, _Target] = {}
        self._dispatch_task: asyncio.Task[None] | None = None
        self._webhook_override_secret: str | None = None
        self.webhook_deliveries: list[WebhookDelivery] = []

        self._throttle_left: int | None = 0
        self._throttle_retry_after = 0
        self._throttle_methods: frozenset[str] | None = None

        self._update_times: dict[int, float] = {}
        self._latency_pending: dict[int, deque[tuple[int, float]]] = {}
        self._latencies: list[tuple[int, float]] = []

        self._methods: dict[str, Callable[[dict[str, Any], dict[str, FileRecord]], Any]] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "editmessagecaption": self._edit_message_caption,
            "answercallbackquery": self._answer_callback_query,
            "senddocument": self._send_document,
            "sendphoto": self._send_photo,
            "sendchataction": self._send_chat_action,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "setchatmenubutton": self._set_chat_menu_button,
            "getchatmenubutton": self._get_chat_menu_button,
            "setmydescription": self._set_my_text("description"),
            "setmyshortdescription": self._set_my_text("short_description"),
            "setmyname": self._set_my_text("name"),
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "close": self._true,
            "logout": self._true,
            "deletemessage": self._delete_message,
            "getchat": self._get_chat,
            "getfile": self._get_file,
        }

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> BotApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind the HTTP server (free port by default) and start serving."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        """Stop serving; wakes pending long polls and stops webhook delivery."""
        self._closing = True
        self._bump_updates()
        self._bump()
        tasks = [t.task for t in self._targets.values() if t.task] + (
            [self._dispatch_task] if self._dispatch_task else []
        )
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session:
            await self._session.close()
        if self._runner:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """Base URL for PTB's ``base_url`` (``http://127.0.0.1:PORT/bot``)."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """Base URL for PTB's ``base_file_url`` (``http://127.0.0.1:PORT/file/bot``)."""
        return f"http://{self.host}:{self.port}/file/bot"

    @property
    def api_url(self) -> str:
        """Full API prefix including the token (``…/bot<token>``)."""
        return f"{self.base_url}{self.token}"

    def application_builder(self) -> Any:
        """A PTB ``ApplicationBuilder`` already pointed at this server."""
        from telegram.ext import Application

        return (
            Application.builder()
            .token(self.token)
            .base_url(self.base_url)
            .base_file_url(self.base_file_url)
        )

    # ---------------------------------------------------------------- change notification

    def _bump(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _bump_updates(self) -> None:
        self._updates_changed.set()
        self._updates_changed = asyncio.Event()

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 5.0,
        describe: Callable[[], str] | None = None,
    ) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every server event); return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                detail = describe() if describe else ""
                raise BotApiTimeout(f"condition not met within {timeout}s. {detail}".strip())
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.25))

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[RecordedCall], bool] | None = None,
        timeout: float = 5.0,
        *,
        after: float | None = None,
    ) -> RecordedCall:
        """Wait for a (completed) call to ``method`` matching ``predicate``; return it."""

        def find() -> RecordedCall | None:
            for call in reversed(self.calls(method)):
                if after is not None and call.time < after:
                    break
                if call.status and (predicate is None or predicate(call)):
                    return call
            return None

        return await self.wait_for(
            find, timeout, lambda: f"calls: {[c.method for c in self.calls()][-20:]}"
        )

    # ---------------------------------------------------------------- recorded calls

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        """Recorded bot calls, optionally for one method (getUpdates only when asked by name)."""
        if method is None:
            return [c for c in self._calls if c.method.lower() != "getupdates"]
        wanted = method.lower()
        return [c for c in self._calls if c.method.lower() == wanted]

    def clear_calls(self) -> None:
        """Forget recorded calls."""
        self._calls.clear()

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet acknowledged (polling) or delivered (webhook)."""
        return list(self._pending)

    def commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        """Commands set by the bot for a scope / language."""
        return list(self._commands.get(self._commands_key(scope, language_code), []))

    def menu_button(self, chat_id: int | None = None) -> dict[str, Any] | None:
        """Menu button set for a chat (None = default)."""
        return self._menu_buttons.get(chat_id)

    def callback(self, query_id: str) -> CallbackQueryState:
        """State of a callback query created by a press."""
        return self._callbacks[query_id]

    @property
    def webhook_url(self) -> str | None:
        """URL registered by the bot with setWebhook (None in polling mode)."""
        return self._webhook.url if self._webhook else None

    def file(self, file_id: str) -> FileRecord:
        """A file known to the server."""
        return self._files[file_id]

    # ---------------------------------------------------------------- throttling

    def throttle(
        self, retry_after: int = 1, *, count: int | None = 1, methods: Iterable[str] | None = None
    ) -> None:
        """Answer the next ``count`` calls (None = until unthrottle) with 429 retry_after."""
        self._throttle_retry_after = int(retry_after)
        self._throttle_left = count
        self._throttle_methods = frozenset(m.lower() for m in methods) if methods else None

    def unthrottle(self) -> None:
        """Stop answering 429."""
        self._throttle_left = 0

    def _throttled(self, method: str) -> bool:
        if self._throttle_left == 0:
            return False
        if self._throttle_methods is not None:
            if method not in self._throttle_methods:
                return False
        elif method in _UNTHROTTLED_BY_DEFAULT:
            return False
        if self._throttle_left is not None:
            self._throttle_left -= 1
        return True

    # ---------------------------------------------------------------- latency

    def latencies(self) -> list[float]:
        """Seconds from each user update being made available to the bot's first reply call."""
        return [seconds for _, seconds in self._latencies]

    def latency_stats(self) -> dict[str, float]:
        """count, mean, p50, p95, max of :meth:`latencies` (seconds)."""
        values = self.latencies()
        if not values:
            return {
                "count": 0,
                "mean": float("nan"),
                "p50": float("nan"),
                "p95": float("nan"),
                "max": float("nan"),
            }
        return {
            "count": len(values),
            "mean": statistics.fmean(values),
            "p50": _pct(values, 0.50),
            "p95": _pct(values, 0.95),
            "max": max(values),
        }

    def reset_latencies(self) -> None:
        """Forget latency samples and pending measurements."""
        self._latencies.clear()
        self._latency_pending.clear()

    def _note_reply(self, chat_id: int, now: float) -> None:
        queue = self._latency_pending.get(chat_id)
        if queue:
            update_id, started = queue.popleft()
            self._latencies.append((update_id, now - started))

    # ---------------------------------------------------------------- users and chats

    def user(
        self,
        user_id: int = 1001,
        first_name: str = "Test",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "fr",
        *,
        is_premium: bool | None = None,
    ) -> UserHandle:
        """Create a user with a private chat with the bot (same id → same handle)."""
        if user_id not in self._users:
            user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
            if last_name:
                user["last_name"] = last_name
            if username:
                user["username"] = username
            if language_code:
                user["language_code"] = language_code
            if is_premium:
                user["is_premium"] = True
            self._users[user_id] = _UserState(user)
            chat = {"id": user_id, "type": "private", "first_name": first_name}
            if last_name:
                chat["last_name"] = last_name
            if username:
                chat["username"] = username
            self._chats[user_id] = _ChatState(chat, user_id=user_id)
            self._handles[user_id] = UserHandle(self, user_id)
        handle = self._handles[user_id]
        assert isinstance(handle, UserHandle)
        return handle

    def group(
        self, chat_id: int = -100123, title: str = "Group", *, supergroup: bool | None = None
    ) -> GroupHandle:
        """Create (or return) a group chat (a supergroup when the id starts with -100)."""
        if chat_id not in self._chats:
            is_super = str(chat_id).startswith("-100") if supergroup is None else supergroup
            chat = {"id": chat_id, "type": "supergroup" if is_super else "group", "title": title}
            self._chats[chat_id] = _ChatState(chat)
            self._handles[chat_id] = GroupHandle(self, chat_id)
        handle = self._handles[chat_id]
        assert isinstance(handle, GroupHandle)
        return handle

    def _chat(self, chat_id: Any) -> _ChatState:
        if isinstance(chat_id, str):
            if chat_id.startswith("@"):
                for state in self._chats.values():
                    if state.chat.get("username", "").lower() == chat_id[1:].lower():
                        return state
                raise _bad_request("chat not found")
            try:
                chat_id = int(chat_id)
            except ValueError:
                raise _bad_request("chat not found") from None
        if chat_id is None:
            raise _bad_request("chat_id is empty")
        if not isinstance(chat_id, int) or chat_id not in self._chats:
            raise _bad_request("chat not found")
        return self._chats[chat_id]

    def _check_can_send(self, state: _ChatState) -> None:
        if state.user_id is not None and self._users[state.user_id].blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")

    def _new_message_id(self, state: _ChatState) -> int:
        message_id = state.next_message_id
        state.next_message_id += 1
        return message_id

    # ---------------------------------------------------------------- updates

    def push_update(self, kind: str, payload: dict[str, Any], *, chat_id: int | None = None) -> int:
        """Queue a raw update of ``kind`` (e.g. "message"); returns its update_id."""
        update_id = next(self._update_ids)
        now = time.perf_counter()
        self._pending.append({"update_id": update_id, kind: payload})
        self._update_times[update_id] = now
        if chat_id is not None and kind in ("message", "callback_query", "edited_message"):
            self._latency_pending.setdefault(chat_id, deque()).append((update_id, now))
        self._bump_updates()
        self._bump()
        return update_id

    def _allowed(self, update: dict[str, Any], allowed: list[str] | None) -> bool:
        kind = next(k for k in update if k != "update_id")
        if not allowed:
            return kind not in DEFAULT_EXCLUDED_UPDATES
        return kind in allowed

    def _ack(self, offset: int) -> None:
        if offset < 0:
            keep = -offset
            while len(self._pending) > keep:
                self._pending.popleft()
        else:
            while self._pending and self._pending[0]["update_id"] < offset:
                self._pending.popleft()

    def _take(self, limit: int, allowed: list[str] | None) -> list[dict[str, Any]]:
        kept: deque[dict[str, Any]] = deque()
        batch: list[dict[str, Any]] = []
        for update in self._pending:
            if not self._allowed(update, allowed):
                continue  # Telegram does not create updates of types that are not allowed
            kept.append(update)
            if len(batch) < limit:
                batch.append(update)
        self._pending = kept
        return batch

    def is_idle(self) -> bool:
        """True when no update is waiting to be fetched or delivered."""
        in_flight = sum(t.queue.qsize() + t.busy for t in self._targets.values())
        return not self._pending and in_flight == 0

    # ---------------------------------------------------------------- HTTP plumbing

    async def _read_params(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, FileRecord]]:
        params: dict[str, Any] = {}
        files: dict[str, FileRecord] = {}
        raw: dict[str, Any] = dict(request.query)
        content_type = request.content_type
        if request.method == "POST" and request.body_exists:
            if content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _bad_request("can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise _bad_request("can't parse JSON object")
                params.update(body)
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = FileRecord(
                            file_id="",
                            file_unique_id="",
                            data=value.file.read(),
                            file_name=value.filename,
                            mime_type=value.content_type,
                        )
                    else:
                        raw[key] = value
        for key, value in raw.items():
            params[key] = self._decode_value(key, value)
        return params, files

    @staticmethod
    def _decode_value(key: str, value: Any) -> Any:
        if not isinstance(value, str) or key in _STRING_PARAMS:
            return value
        try:
            return json.loads(value)
        except ValueError:
            return value

    async def _handle_api(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        method_name = request.match_info["method"]
        if token != self.token:
            return web.json_response(ApiError(401, "Unauthorized").payload(), status=401)
        method = method_name.lower()
        arrival = time.monotonic()
        try:
            params, files = await self._read_params(request)
        except ApiError as exc:
            return web.json_response(exc.payload(), status=exc.code)
        call = RecordedCall(method_name, params, arrival, files)
        self._calls.append(call)
        if method != "getupdates":
            self._last_bot_activity = arrival
        handler = self._methods.get(method)
        try:
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            if self._throttled(method):
                seconds = self._throttle_retry_after
                raise ApiError(
                    429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}
                )
            result = handler(params, files)
            if asyncio.iscoroutine(result):
                result = await result
        except ApiError as exc:
            call.status = exc.code
            call.error = exc.description
            body = exc.payload()
            status = exc.code
        else:
            call.status = 200
            call.result = result
            body = {"ok": True, "result": result}
            status = 200
        if method != "getupdates":
            self._last_bot_activity = time.monotonic()
            self._bump()
        return web.json_response(body, status=status)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").payload(), status=401)
        record = self._file_paths.get(request.match_info["path"])
        if record is None:
            return web.json_response(ApiError(404, "Not Found").payload(), status=404)
        return web.Response(
            body=record.data, content_type=record.mime_type or "application/octet-stream"
        )

    # ---------------------------------------------------------------- files

    def _register_file(
        self, data: bytes, file_name: str | None, mime_type: str | None, folder: str
    ) -> FileRecord:
        number = next(self._file_counter)
        record = FileRecord(
            file_id=f"F{number:06d}{secrets.token_hex(8)}",
            file_unique_id=f"U{number:06d}",
            data=data,
            file_name=file_name,
            mime_type=mime_type,
        )
        suffix = ""
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[1]
        record.file_path = f"{folder}/file_{number}{suffix}"
        self._files[record.file_id] = record
        self._file_paths[record.file_path] = record
        return record

    def _input_file(
        self, field_name: str, params: dict[str, Any], files: dict[str, FileRecord], folder: str
    ) -> FileRecord:
        value = params.get(field_name)
        upload = files.get(field_name)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value[len("attach://") :])
        if upload is not None:
            return self._register_file(upload.data, upload.file_name, upload.mime_type, folder)
        if isinstance(value, str) and value:
            if value in self._files:
                return self._files[value]
            if value.startswith(("http://", "https://")):
                raise _bad_request("failed to get HTTP URL content")
            raise _bad_request("wrong file identifier/HTTP URL specified")
        raise _bad_request(f"there is no {field_name} in the request")

    def _document_dict(self, record: FileRecord) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "file_id": record.file_id,
            "file_unique_id": record.file_unique_id,
            "file_size": record.size,
        }
        if record.file_name:
            doc["file_name"] = record.file_name
        if record.mime_type:
            doc["mime_type"] = record.mime_type
        return doc

    def _photo_sizes(self, record: FileRecord) -> list[dict[str, Any]]:
        return [
            {
                "file_id": record.file_id + "s",
                "file_unique_id": record.file_unique_id + "s",
                "width": 90,
                "height": 90,
                "file_size": min(record.size, 1000),
            },
            {
                "file_id": record.file_id,
                "file_unique_id": record.file_unique_id,
                "width": 800,
                "height": 600,
                "file_size": record.size,
            },
        ]

    # ---------------------------------------------------------------- formatting helpers

    def _format(
        self, text: Any, parse_mode: Any, entities: Any, *, what: str = "text"
    ) -> tuple[str, list[dict[str, Any]]]:
        if text is None:
            text = ""
        text = str(text)
        if parse_mode in (None, ""):
            plain = text
            parsed = list(entities) if isinstance(entities, list) else []
        elif str(parse_mode).lower() == "html":
            try:
                plain, parsed = parse_html(text, strict_ampersand=self.strict_html)
            except EntityParseError as exc:
                raise _bad_request(_lower_first(str(exc))) from None
        elif parse_mode == "MarkdownV2":
            try:
                plain, parsed = parse_markdown_v2(text)
            except EntityParseError as exc:
                raise _bad_request(_lower_first(str(exc))) from None
        elif parse_mode == "Markdown":
            plain = re.sub(r"[*_`]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", text)
            parsed = []
        else:
            raise _bad_request("unsupported parse_mode")
        limit = MAX_TEXT_LENGTH if what == "text" else MAX_CAPTION_LENGTH
        if what == "text" and not plain.strip():
            raise _bad_request("message text is empty")
        if utf16_len(plain) > limit:
            raise _bad_request(
                "message is too long" if what == "text" else "message caption is too long"
            )
        return plain, parsed

    @staticmethod
    def _validate_markup(markup: Any) -> dict[str, Any] | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad_request(
                    "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
                )
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not button.get("text"):
                        raise _bad_request(
                            "BUTTON_TEXT_INVALID"
                            if isinstance(button, dict)
                            else "can't parse inline keyboard button"
                        )
                    actions = [k for k in button if k != "text"]
                    if not actions:
                        raise _bad_request("text buttons are unallowed in the inline keyboard")
                    data = button.get("callback_data")
                    if data is not None:
                        encoded = str(data).encode("utf-8")
                        if not encoded or len(encoded) > MAX_CALLBACK_DATA_BYTES:
                            raise _bad_request("BUTTON_DATA_INVALID")
                    url = button.get("url")
                    if url is not None and not re.match(r"^(https?|tg)://\S+$", str(url)):
                        raise _bad_request("BUTTON_URL_INVALID")
        elif "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad_request("can't parse reply keyboard markup JSON object")
            for row in rows:
                for button in row:
                    if not _button_label(button):
                        raise _bad_request("keyboard button text is empty")
        elif not (markup.get("remove_keyboard") or markup.get("force_reply")):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        return markup

    def _message_dict(
        self,
        state: _ChatState,
        message_id: int,
        content: dict[str, Any],
        from_user: dict[str, Any],
    ) -> dict[str, Any]:
        message = {
            "message_id": message_id,
            "from": from_user,
            "chat": dict(state.chat),
            "date": int(time.time()),
        }
        message.update(content)
        return message

    def _reply_to(self, state: _ChatState, params: dict[str, Any]) -> dict[str, Any] | None:
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            target_id = reply.get("message_id")
            allow = bool(reply.get("allow_sending_without_reply"))
        else:
            target_id = params.get("reply_to_message_id")
            allow = bool(params.get("allow_sending_without_reply"))
        if target_id is None:
            return None
        target = state.messages.get(int(target_id))
        if target is None:
            if allow:
                return None
            raise _bad_request("message to be replied not found")
        shallow = dict(target)
        shallow.pop("reply_to_message", None)
        return shallow

    def _store_bot_message(
        self,
        state: _ChatState,
        method: str,
        message: dict[str, Any],
        *,
        text: str | None,
        plain: str | None,
        parse_mode: str | None,
        entities: list[dict[str, Any]],
        markup: dict[str, Any] | None,
        document: FileRecord | None = None,
        photo: FileRecord | None = None,
        link_preview_disabled: bool = False,
    ) -> BotMessage:
        state.messages[message["message_id"]] = message
        bot_message = BotMessage(
            message_id=message["message_id"],
            chat_id=state.chat["id"],
            method=method,
            date=message["date"],
            text=text,
            plain=plain,
            parse_mode=parse_mode,
            entities=entities,
            reply_markup=markup,
            raw=message,
            document=document,
            photo=photo,
            link_preview_disabled=link_preview_disabled,
            reply_to_message_id=(message.get("reply_to_message") or {}).get("message_id"),
        )
        state.bot_messages.append(bot_message)
        state.bot_by_id[bot_message.message_id] = bot_message
        if markup and "keyboard" in markup:
            state.reply_keyboard = bot_message.reply_keyboard
        elif markup and markup.get("remove_keyboard"):
            state.reply_keyboard = None
        state.last_activity = time.monotonic()
        self._note_reply(state.chat["id"], time.perf_counter())
        return bot_message

    # ---------------------------------------------------------------- methods

    def _true(self, params: dict[str, Any], files: dict[str, FileRecord]) -> bool:
        return True

    def _get_me(self, params: dict[str, Any], files: dict[str, FileRecord]) -> dict[str, Any]:
        return dict(self.bot_user)

    async def _get_updates(
        self, params: dict[str, Any], files: dict[str, FileRecord]
    ) -> list[dict[str, Any]]:
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset")
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = max(0.0, float(params.get("timeout") or 0))
        if params.get("allowed_updates") is not None:
            self._allowed_updates = list(params["allowed_updates"])
        self._poll_generation += 1
        generation = self._poll_generation
        self._bump_updates()  # terminates an older long poll, like Telegram does
        if offset is not None:
            self._ack(int(offset))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one "
                    "bot instance is running",
                )
            if self._webhook is not None:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; use "
                    "deleteWebhook to delete the webhook first",
                )
            batch = self._take(limit, self._allowed_updates)
            remaining = deadline - loop.time()
            if batch:
                # Handing updates to the bot counts as activity: `wait_until_idle` must not
                # return before the bot has had the chance to act on them.
                self._last_bot_activity = time.monotonic()
            if batch or remaining <= 0 or self._closing:
                return batch
            event = self._updates_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _send_message(self, params: dict[str, Any], files: dict[str, FileRecord]) -> dict[str, Any]:
        state = self._chat(params.get("chat_id"))
        text = params.get("text")
        parse_mode = params.get("parse_mode")
        plain, entities = self._format(text, parse_mode, params.get("entities"))
        markup = self._validate_markup(params.get("reply_markup"))
        self._check_can_send(state)
        reply_to = self._reply_to(state, params)
        content: dict[str, Any] = {"text": plain}
        if entities:
            content["entities"] = entities
        preview = params.get("link_preview_options")
        disabled = bool(params.get("disable_web_page_preview")) or (
            isinstance(preview, dict) and bool(preview.get("is_disabled"))
        )
        if isinstance(preview, dict) and preview:
            content["link_preview_options"] = preview
        elif disabled:
            content["link_preview_options"] = {"is_disabled": True}
        if reply_to:
            content["reply_to_message"] = reply_to
        if markup and "inline_keyboard" in markup:
            content["reply_markup"] = markup
        message = self._message_dict(state, self._new_message_id(state), content, self.bot_user)
        self._store_bot_message(
            state,
            "sendMessage",
            message,
            text=str(text),
            plain=plain,
            parse_mode=parse_mode,
            entities=entities,
            markup=markup,
            link_preview_disabled=disabled,
        )
        return message

    def _send_document(
        self, params: dict[str, Any], files: dict[str, FileRecord]
    ) -> dict[str, Any]:
        return self._send_media("document", params, files)

    def _send_photo(self, params: dict[str, Any], files: dict[str, FileRecord]) -> dict[str, Any]:
        return self._send_media("photo", params, files)

    def _send_media(
        self, kind: str, params: dict[str, Any], files: dict[str, FileRecord]
    ) -> dict[str, Any]:
        state = self._chat(params.get("chat_id"))
        caption = params.get("caption")
        parse_mode = params.get("parse_mode")
        plain: str | None = None
        entities: list[dict[str, Any]] = []
        if caption:
            plain, entities = self._format(
                caption, parse_mode, params.get("caption_entities"), what="caption"
            )
        markup = self._validate_markup(params.get("reply_markup"))
        self._check_can_send(state)
        record = self._input_file(
            kind, params, files, "documents" if kind == "document" else "photos"
        )
        reply_to = self._reply_to(state, params)
        content: dict[str, Any] = {}
        if kind == "document":
            content["document"] = self._document_dict(record)
        else:
            content["photo"] = self._photo_sizes(record)
        if plain:
            content["caption"] = plain
            if entities:
                content["caption_entities"] = entities
        if reply_to:
            content["reply_to_message"] = reply_to
        if markup and "inline_keyboard" in markup:
            content["reply_markup"] = markup
        message = self._message_dict(state, self._new_message_id(state), content, self.bot_user)
        self._store_bot_message(
            state,
            "sendDocument" if kind == "document" else "sendPhoto",
            message,
            text=caption,
            plain=plain,
            parse_mode=parse_mode,
            entities=entities,
            markup=markup,
            document=record if kind == "document" else None,
            photo=record if kind == "photo" else None,
        )
        return message

    def _editable(self, params: dict[str, Any], missing: str) -> tuple[_ChatState, BotMessage]:
        if params.get("inline_message_id"):
            raise _bad_request("MESSAGE_ID_INVALID")
        state = self._chat(params.get("chat_id"))
        message_id = params.get("message_id")
        if message_id is None:
            raise _bad_request("message identifier is not specified")
        bot_message = state.bot_by_id.get(int(message_id))
        if bot_message is None or bot_message.deleted:
            if int(message_id) in state.messages:
                raise _bad_request("message can't be edited")
            raise _bad_request(missing)
        return state, bot_message

    def _apply_edit(
        self,
        state: _ChatState,
        bot_message: BotMessage,
        *,
        text_key: str | None,
        text: str | None,
        plain: str | None,
        parse_mode: str | None,
        entities: list[dict[str, Any]],
        markup: dict[str, Any] | None,
        content_changed: bool,
    ) -> dict[str, Any]:
        old_markup = (
            bot_message.reply_markup
            if bot_message.reply_markup and "inline_keyboard" in bot_message.reply_markup
            else None
        )
        if not content_changed and old_markup == markup:
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        if content_changed:
            bot_message.history.append(bot_message.plain)
            bot_message.text, bot_message.plain = text, plain
            bot_message.parse_mode, bot_message.entities = parse_mode, entities
        if old_markup != markup:
            bot_message.markup_history.append(bot_message.reply_markup)
            bot_message.reply_markup = markup
        message = dict(bot_message.raw)
        entity_key = "entities" if text_key == "text" else "caption_entities"
        if text_key is not None:
            message[text_key] = plain
            message.pop(entity_key, None)
            if entities:
                message[entity_key] = entities
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        bot_message.raw = message
        state.messages[bot_message.message_id] = message
        state.last_activity = time.monotonic()
        self._note_reply(state.chat["id"], time.perf_counter())
        return message

    def _edit_message_text(
        self, params: dict[str, Any], files: dict[str, FileRecord]
    ) -> dict[str, Any]:
        state, bot_message = self._editable(params, "message to edit not found")
        if bot_message.method != "sendMessage":
            raise _bad_request("there is no text in the message to edit")
        text = params.get("text")
        parse_mode = params.get("parse_mode")
        plain, entities = self._format(text, parse_mode, params.get("entities"))
        markup = self._validate_markup(params.get("reply_markup"))
        if markup and "inline_keyboard" not in markup:
            raise _bad_request("inline keyboard expected")
        changed = plain != bot_message.plain or entities != bot_message.entities
        return self._apply_edit(
            state,
            bot_message,
            text_key="text",
            text=str(text),
            plain=plain,
            parse_mode=parse_mode,
            entities=entities,
            markup=markup,
            content_changed=changed,
        )

    def _edit_message_caption(
        self, params: dict[str, Any], files: dict[str, FileRecord]
    ) -> dict[str, Any]:
        state, bot_message = self._editable(params, "message to edit not found")
        if bot_message.method == "sendMessage":
            raise _bad_request("there is no caption in the message to edit")
        caption = params.get("caption")
        parse_mode = params.get("parse_mode")
        plain: str | None = None
        entities: list[dict[str, Any]] = []
        if caption:
            plain, entities = self._format(
                caption, parse_mode, params.get("caption_entities"), what="caption"
            )
        markup = self._validate_markup(params.get("reply_markup"))
        changed = plain != bot_message.plain or entities != bot_message.entities
        return self._apply_edit(
            state,
            bot_message,
            text_key="caption",
            text=caption,
            plain=plain,
            parse_mode=parse_mode,
            entities=entities,
            markup=markup,
            content_changed=changed,
        )

    def _edit_message_reply_markup(
        self, params: dict[str, Any], files: dict[str, FileRecord]
    ) -> dict[str, Any]:
        state, bot_message = self._editable(params, "message to edit not found")
        markup = self._validate_markup(params.get("reply_markup"))
        if markup and "inline_keyboard" not in markup:
            raise _bad_request("inline keyboard expected")
        return self._apply_edit(
            state,
            bot_message,
            text_key=None,
            text=bot_message.text,
            plain=bot_message.plain,
            parse_mode=bot_message.parse_mode,
            entities=bot_message.entities,
            markup=markup,
            content_changed=False,
        )

    def _delete_message(self, params: dict[str, Any], files: dict[str, FileRecord]) -> bool:
        state = self._chat(params.get("chat_id"))
        message_id = int(params.get("message_id") or 0)
        if message_id not in state.messages:
            raise _bad_request("message to delete not found")
        del state.messages[message_id]
        bot_message = state.bot_by_id.get(message_id)
        if bot_message is not None:
            bot_message.deleted = True
        return True

    def _answer_callback_query(self, params: dict[str, Any], files: dict[str, FileRecord]) -> bool:
        query = self._callbacks.get(str(params.get("callback_query_id")))
        if query is None or query.answered:
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        text = params.get("text")
        if text is not None and len(str(text)) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad_request("MESSAGE_TOO_LONG")
        query.answered = True
        query.answer = {k: v for k, v in params.items() if k != "callback_query_id"}
        return True

    def _send_chat_action(self, params: dict[str, Any], files: dict[str, FileRecord]) -> bool:
        state = self._chat(params.get("chat_id"))
        action = params.get("action")
        if action not in CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        self._check_can_send(state)
        state.actions.append(str(action))
        return True

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        if not isinstance(scope, dict) or not scope:
            scope = {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    def _set_my_commands(self, params: dict[str, Any], files: dict[str, FileRecord]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad_request("too many commands")
        cleaned = []
        for command in commands:
            name = str(command.get("command", "")) if isinstance(command, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _bad_request("BOT_COMMAND_INVALID")
            description = str(command.get("description", ""))
            if not 1 <= len(description) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        if cleaned:
            self._commands[key] = cleaned
        else:
            self._commands.pop(key, None)
        return True

    def _get_my_commands(
        self, params: dict[str, Any], files: dict[str, FileRecord]
    ) -> list[dict[str, Any]]:
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        return list(self._commands.get(key, []))

    def _delete_my_commands(self, params: dict[str, Any], files: dict[str, FileRecord]) -> bool:
        self._commands.pop(
            self._commands_key(params.get("scope"), params.get("language_code")), None
        )
        return True

    def _set_chat_menu_button(self, params: dict[str, Any], files: dict[str, FileRecord]) -> bool:
        chat_id = params.get("chat_id")
        if chat_id is not None:
            chat_id = self._chat(chat_id).chat["id"]
        button = params.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in (
            "default",
            "commands",
            "web_app",
        ):
            raise _bad_request("can't parse menu button JSON object")
        self._menu_buttons[chat_id] = button
        return True

    def _get_chat_menu_button(
        self, params: dict[str, Any], files: dict[str, FileRecord]
    ) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if chat_id is not None:
            chat_id = self._chat(chat_id).chat["id"]
        return (
            self._menu_buttons.get(chat_id) or self._menu_buttons.get(None) or {"type": "commands"}
        )

    def _set_my_text(self, name: str) -> Callable[[dict[str, Any], dict[str, FileRecord]], bool]:
        def handler(params: dict[str, Any], files: dict[str, FileRecord]) -> bool:
            self._bot_texts.setdefault(name, {})[str(params.get("language_code") or "")] = str(
                params.get(name) or ""
            )
            return True

        return handler

    def _get_chat(self, params: dict[str, Any], files: dict[str, FileRecord]) -> dict[str, Any]:
        state = self._chat(params.get("chat_id"))
        info = dict(state.chat)
        info.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": True,
                    "limited_gifts": True,
                    "unique_gifts": True,
                    "premium_subscription": True,
                    "gifts_from_channels": True,
                },
            }
        )
        return info

    def _get_file(self, params: dict[str, Any], files: dict[str, FileRecord]) -> dict[str, Any]:
        file_id = str(params.get("file_id") or "")
        record = self._files.get(file_id)
        if record is None:
            raise _bad_request("invalid file_id")
        return {
            "file_id": record.file_id,
            "file_unique_id": record.file_unique_id,
            "file_size": record.size,
            "file_path": record.file_path,
        }

    # ---------------------------------------------------------------- webhook

    def _set_webhook(self, params: dict[str, Any], files: dict[str, FileRecord]) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return self._delete_webhook(params, files)
        if self.require_https_webhook and not url.startswith("https://"):
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if not url.startswith(("http://", "https://")):
            raise _bad_request("bad webhook: Failed to resolve host: Name or service not known")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _bad_request("secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if allowed is not None:
            self._allowed_updates = list(allowed)
        if params.get("drop_pending_updates"):
            self._pending.clear()
        self._webhook = _Webhook(
            url=url,
            secret_token=str(secret) if secret else None,
            max_connections=int(params.get("max_connections") or 40),
            allowed_updates=self._allowed_updates,
        )
        self._webhook_last_error = None
        self._bump_updates()  # a running long poll now ends with 409
        if self._dispatch_task is None or self._dispatch_task.done():
            self._dispatch_task = asyncio.create_task(self._dispatch_loop())
        return True

    def _delete_webhook(self, params: dict[str, Any], files: dict[str, FileRecord]) -> bool:
        if self._webhook is not None:
            self._webhook = None
            # Updates not yet posted go back to the queue, in order.
            returned: list[dict[str, Any]] = []
            for target in self._targets.values():
                while not target.queue.empty():
                    returned.append(target.queue.get_nowait())
            returned.sort(key=lambda u: u["update_id"])
            self._pending.extendleft(reversed(returned))
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _get_webhook_info(
        self, params: dict[str, Any], files: dict[str, FileRecord]
    ) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self._webhook.url if self._webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending)
            + sum(t.queue.qsize() for t in self._targets.values()),
        }
        if self._webhook:
            info["max_connections"] = self._webhook.max_connections
            if self._allowed_updates:
                info["allowed_updates"] = list(self._allowed_updates)
            if self._webhook_last_error:
                info["last_error_date"], info["last_error_message"] = self._webhook_last_error
        return info

    def load_balance(
        self,
        targets: Sequence[str] | None,
        chooser: Callable[[dict[str, Any], list[str]], str] | None = None,
    ) -> None:
        """Deliver webhook updates to several URLs (round-robin, or ``chooser(update, urls)``).

        The bot still has to call setWebhook (its URL is then only recorded). ``None`` restores
        delivery to the URL given by setWebhook.
        """
        self._lb_targets = list(targets) if targets else None
        self._lb_chooser = chooser

    def webhook_secret_override(self, secret: str | None) -> None:
        """Send this secret header instead of the configured one (tests of secret refusal)."""
        self._webhook_override_secret = secret

    def _choose_target(self, update: dict[str, Any]) -> str:
        assert self._webhook is not None
        urls = self._lb_targets or [self._webhook.url]
        if len(urls) == 1:
            return urls[0]
        if self._lb_chooser is not None:
            return self._lb_chooser(update, urls)
        return urls[next(self._lb_counter) % len(urls)]

    async def _dispatch_loop(self) -> None:
        while not self._closing:
            if self._webhook is None or not self._pending:
                event = self._updates_changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), 0.5)
                continue
            for update in self._take(len(self._pending), self._allowed_updates):
                self._pending.popleft()
                url = self._choose_target(update)
                target = self._targets.get(url)
                if target is None:
                    target = self._targets[url] = _Target(url)
                if target.task is None or target.task.done():
                    target.task = asyncio.create_task(self._deliver_loop(target))
                target.queue.put_nowait(update)

    async def _deliver_loop(self, target: _Target) -> None:
        assert self._session is not None
        while not self._closing:
            update = await target.queue.get()
            target.busy += 1
            try:
                await self._deliver(target.url, update)
            finally:
                target.busy -= 1
                self._bump()

    async def _deliver(self, url: str, update: dict[str, Any]) -> bool:
        assert self._session is not None
        body = json.dumps(update).encode("utf-8")
        for attempt in range(1, self.webhook_max_attempts + 1):
            headers = {"Content-Type": "application/json"}
            secret = self._webhook_override_secret or (
                self._webhook.secret_token if self._webhook else None
            )
            if secret:
                headers["X-Telegram-Bot-Api-Secret-Token"] = secret
            status: int | None = None
            error: str | None = None
            try:
                async with self._session.post(
                    url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
                ) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"Connection error: {exc!r}"
            self.webhook_deliveries.append(
                WebhookDelivery(update["update_id"], url, attempt, status, error, time.monotonic())
            )
            if status is not None and 200 <= status < 300:
                return True
            if error is None:
                error = f"Wrong response from the webhook: {status}"
            self._webhook_last_error = (int(time.time()), error)
            if attempt < self.webhook_max_attempts:
                await asyncio.sleep(self.webhook_retry_delay * attempt)
        return False


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# --------------------------------------------------------------------------------------------
# User side
# --------------------------------------------------------------------------------------------


class ChatHandle:
    """What one chat sees: the bot's messages (in order) and helpers to wait for them."""

    def __init__(self, server: BotApiServer, chat_id: int) -> None:
        self.server = server
        self.chat_id = chat_id
        self._cursor = 0

    @property
    def _state(self) -> _ChatState:
        return self.server._chats[self.chat_id]

    @property
    def chat(self) -> dict[str, Any]:
        """The Chat object."""
        return dict(self._state.chat)

    def all_messages(self) -> list[BotMessage]:
        """Every message the bot sent to this chat (deleted ones included), in order."""
        return list(self._state.bot_messages)

    def last_message(self) -> BotMessage | None:
        """The most recent non-deleted bot message, or None."""
        for message in reversed(self._state.bot_messages):
            if not message.deleted:
                return message
        return None

    def message(self, message_id: int) -> BotMessage:
        """A bot message by id."""
        return self._state.bot_by_id[message_id]

    def unread(self) -> list[BotMessage]:
        """Bot messages not yet returned by a wait/read helper."""
        return self._state.bot_messages[self._cursor :]

    def read(self) -> list[BotMessage]:
        """Return unread bot messages and mark them read."""
        messages = self.unread()
        self._cursor = len(self._state.bot_messages)
        return messages

    def documents(self) -> list[FileRecord]:
        """Files the bot sent as documents, in order."""
        return [m.document for m in self._state.bot_messages if m.document is not None]

    def chat_actions(self) -> list[str]:
        """Chat actions (typing, …) sent by the bot."""
        return list(self._state.actions)

    @property
    def reply_keyboard(self) -> list[list[str]] | None:
        """The reply keyboard currently shown to the user (None when removed / never sent)."""
        return self._state.reply_keyboard

    def _describe(self) -> str:
        received = [str(m) for m in self._state.bot_messages[self._cursor :]]
        errors = [f"{c.method}: {c.error}" for c in self.server.calls() if c.error][-5:]
        return f"unread bot messages: {received}; recent errors: {errors}"

    async def wait_for_messages(self, count: int = 1, timeout: float = 5.0) -> list[BotMessage]:
        """Wait until ``count`` new bot messages arrived; return all unread ones and mark read."""
        await self.server.wait_for(
            lambda: len(self._state.bot_messages) - self._cursor >= count, timeout, self._describe
        )
        return self.read()

    async def wait_for_message(self, timeout: float = 5.0) -> BotMessage:
        """Wait for the next bot message and return it (others stay unread)."""
        await self.server.wait_for(
            lambda: len(self._state.bot_messages) > self._cursor, timeout, self._describe
        )
        message = self._state.bot_messages[self._cursor]
        self._cursor += 1
        return message

    async def wait_for_edit(
        self, message_id: int | None = None, timeout: float = 5.0
    ) -> BotMessage:
        """Wait until a bot message (default: the last one) gets one more edit; return it."""
        target = self.message(message_id) if message_id is not None else self.last_message()
        if target is None:
            raise BotApiTimeout("no bot message to wait an edit for")
        before = len(target.history) + len(target.markup_history)
        await self.server.wait_for(
            lambda: len(target.history) + len(target.markup_history) > before,
            timeout,
            lambda: f"message {target} was not edited",
        )
        return target

    async def wait_until_idle(self, quiet: float = 0.3, timeout: float = 5.0) -> list[BotMessage]:
        """Wait until updates are consumed and the bot made no call for ``quiet`` s; read unread."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            now = time.monotonic()
            idle_for = now - self.server._last_bot_activity
            if self.server.is_idle() and idle_for >= quiet:
                return self.read()
            if loop.time() >= deadline:
                raise BotApiTimeout(
                    f"bot not idle within {timeout}s (pending updates: "
                    f"{len(self.server._pending)}). {self._describe()}"
                )
            wait = quiet - idle_for if self.server.is_idle() else 0.02
            await asyncio.sleep(max(0.01, min(wait, deadline - loop.time())))

    async def expect_no_message(self, within: float = 0.3) -> None:
        """Assert that the bot sends nothing to this chat for ``within`` seconds."""
        before = len(self._state.bot_messages)
        await asyncio.sleep(within)
        if len(self._state.bot_messages) != before:
            raise AssertionError(f"unexpected bot messages: {self._describe()}")

    def _find_button_message(
        self, label: str | None, data: str | None, message_id: int | None
    ) -> tuple[BotMessage, dict[str, Any]]:
        if message_id is not None:
            candidates = [self.message(message_id)]
        else:
            candidates = [m for m in reversed(self._state.bot_messages) if not m.deleted]
        for message in candidates:
            try:
                return message, message.find_button(label, data)
            except KeyError:
                continue
        shown = [(m.message_id, m.buttons) for m in candidates if m.buttons]
        raise AssertionError(f"no inline button {label or data!r}; buttons: {shown}")

    def _press(
        self,
        user_id: int,
        label: str | None,
        data: str | None,
        message_id: int | None,
    ) -> str:
        message, button = self._find_button_message(label, data, message_id)
        if message_id is not None and message.deleted:
            raise AssertionError(f"message {message_id} was deleted")
        if "callback_data" not in button:
            raise AssertionError(
                f"button {button.get('text')!r} is not a callback button: {button}"
            )
        query_id = str(secrets.randbits(62))
        query = {
            "id": query_id,
            "from": dict(self.server._users[user_id].user),
            "message": dict(message.raw),
            "chat_instance": str(abs(self.chat_id) * 7919 % 10**12),
            "data": button["callback_data"],
        }
        self.server._callbacks[query_id] = CallbackQueryState(
            query_id,
            user_id,
            self.chat_id,
            message.message_id,
            button["callback_data"],
            time.monotonic(),
        )
        self.server.push_update("callback_query", query, chat_id=self.chat_id)
        return query_id

    def _user_message(self, user_id: int, content: dict[str, Any]) -> dict[str, Any]:
        state = self._state
        user_state = self.server._users[user_id]
        if state.user_id is not None and user_state.blocked:
            raise RuntimeError("this user blocked the bot; call unblock() first")
        message = self.server._message_dict(
            state, self.server._new_message_id(state), content, dict(user_state.user)
        )
        state.messages[message["message_id"]] = message
        self.server.push_update("message", message, chat_id=self.chat_id)
        return message

    @staticmethod
    def _text_content(text: str) -> dict[str, Any]:
        content: dict[str, Any] = {"text": text}
        entities = _command_entities(text)
        if entities:
            content["entities"] = entities
        return content


class UserHandle(ChatHandle):
    """A user in a private chat with the bot (chat id == user id)."""

    def __init__(self, server: BotApiServer, user_id: int) -> None:
        super().__init__(server, user_id)
        self.user_id = user_id
        self.last_callback_id: str | None = None
        self._last_sent: dict[str, Any] | None = None

    @property
    def user(self) -> dict[str, Any]:
        """The User object."""
        return dict(self.server._users[self.user_id].user)

    @property
    def blocked(self) -> bool:
        """True when the user blocked the bot."""
        return self.server._users[self.user_id].blocked

    def _send(self, content: dict[str, Any]) -> dict[str, Any]:
        message = self._user_message(self.user_id, content)
        self._last_sent = message
        return message

    async def send_text(self, text: str) -> dict[str, Any]:
        """Send a text message (bot_command entities are added for /commands)."""
        return self._send(self._text_content(text))

    async def send_command(self, command: str, args: str = "") -> dict[str, Any]:
        """Send ``/command args`` with a bot_command entity."""
        text = f"/{command.lstrip('/')}" + (f" {args}" if args else "")
        return await self.send_text(text)

    async def tap(self, label: str) -> dict[str, Any]:
        """Press a reply-keyboard button (sends its label as text); fails if not shown."""
        keyboard = self._state.reply_keyboard or []
        if not any(label in row for row in keyboard):
            raise AssertionError(f"no reply keyboard button {label!r}; keyboard: {keyboard}")
        return await self.send_text(label)

    async def press(self, label: str | None = None, *, data: str | None = None) -> str:
        """Press an inline button (by label or callback_data) on the latest message having it."""
        self.last_callback_id = self._press(self.user_id, label, data, None)
        return self.last_callback_id

    async def press_in(
        self, message_id: int, label: str | None = None, *, data: str | None = None
    ) -> str:
        """Press an inline button on a specific (possibly old) bot message."""
        self.last_callback_id = self._press(self.user_id, label, data, message_id)
        return self.last_callback_id

    async def wait_for_callback_answer(
        self, query_id: str | None = None, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Wait until the bot answered the callback query; return the answer's parameters."""
        query = self.server.callback(query_id or self.last_callback_id or "")
        await self.server.wait_for(
            lambda: query.answered, timeout, lambda: f"callback {query.data!r} not answered"
        )
        return query.answer or {}

    def _file(
        self, data: bytes, file_name: str | None, mime_type: str | None, folder: str
    ) -> FileRecord:
        return self.server._register_file(data, file_name, mime_type, folder)

    async def send_document(
        self,
        file_name: str = "document.pdf",
        data: bytes = b"%PDF-1.4\n%test\n",
        mime_type: str | None = "application/pdf",
        caption: str | None = None,
    ) -> dict[str, Any]:
        """Send a document; the bot can download it with getFile."""
        record = self._file(data, file_name, mime_type, "documents")
        content: dict[str, Any] = {"document": self.server._document_dict(record)}
        if caption:
            content["caption"] = caption
        return self._send(content)

    async def send_photo(
        self, data: bytes = b"\xff\xd8\xff\xe0JFIF", caption: str | None = None
    ) -> dict[str, Any]:
        """Send a photo (two sizes)."""
        record = self._file(data, None, "image/jpeg", "photos")
        content: dict[str, Any] = {"photo": self.server._photo_sizes(record)}
        if caption:
            content["caption"] = caption
        return self._send(content)

    async def send_voice(self, data: bytes = b"OggS\x00voice", duration: int = 3) -> dict[str, Any]:
        """Send a voice note."""
        record = self._file(data, None, "audio/ogg", "voice")
        voice = {
            "file_id": record.file_id,
            "file_unique_id": record.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": record.size,
        }
        return self._send({"voice": voice})

    async def send_video_note(
        self, data: bytes = b"\x00\x00\x00\x18ftypmp42", duration: int = 5, length: int = 240
    ) -> dict[str, Any]:
        """Send a round video note."""
        record = self._file(data, None, "video/mp4", "video_notes")
        note = {
            "file_id": record.file_id,
            "file_unique_id": record.file_unique_id,
            "length": length,
            "duration": duration,
            "file_size": record.size,
        }
        return self._send({"video_note": note})

    async def send_sticker(self, emoji: str = "👍") -> dict[str, Any]:
        """Send a regular sticker."""
        record = self._file(b"RIFF\x00\x00\x00\x00WEBP", None, "image/webp", "stickers")
        sticker = {
            "file_id": record.file_id,
            "file_unique_id": record.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": record.size,
        }
        return self._send({"sticker": sticker})

    async def send_location(self, latitude: float, longitude: float) -> dict[str, Any]:
        """Send a location."""
        return self._send({"location": {"latitude": latitude, "longitude": longitude}})

    async def send_contact(
        self,
        phone_number: str,
        first_name: str,
        last_name: str | None = None,
        user_id: int | None = None,
    ) -> dict[str, Any]:
        """Send a contact (``user_id`` = own id when sharing one's own number)."""
        contact: dict[str, Any] = {"phone_number": phone_number, "first_name": first_name}
        if last_name:
            contact["last_name"] = last_name
        if user_id is not None:
            contact["user_id"] = user_id
        return self._send({"contact": contact})

    async def send_poll(self, question: str, options: Sequence[str]) -> dict[str, Any]:
        """Send a (regular, anonymous) poll."""
        poll = {
            "id": str(secrets.randbits(60)),
            "question": question,
            "options": [{"text": o, "voter_count": 0} for o in options],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": False,
            "members_only": False,
            "persistent_id": str(secrets.randbits(60)),
        }
        return self._send({"poll": poll})

    async def forward_text(
        self, text: str, from_name: str = "Someone", from_user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Forward a text message from someone else (hidden user unless ``from_user``)."""
        date = int(time.time()) - 60
        if from_user is not None:
            origin: dict[str, Any] = {"type": "user", "sender_user": from_user, "date": date}
        else:
            origin = {"type": "hidden_user", "sender_user_name": from_name, "date": date}
        content = {"text": text, "forward_origin": origin}
        return self._send(content)

    async def edit_last(self, text: str) -> dict[str, Any]:
        """Edit the user's last message (an ``edited_message`` update)."""
        if self._last_sent is None:
            raise RuntimeError("the user has not sent anything yet")
        message = dict(self._last_sent)
        message.update(self._text_content(text))
        if "entities" not in self._text_content(text):
            message.pop("entities", None)
        message["edit_date"] = int(time.time())
        self._state.messages[message["message_id"]] = message
        self._last_sent = message
        self.server.push_update("edited_message", message, chat_id=self.chat_id)
        return message

    def _member_update(self, old: str, new: str) -> None:
        bot = dict(self.server.bot_user)
        new_member: dict[str, Any] = {"status": new, "user": bot}
        if new == "kicked":
            new_member["until_date"] = 0
        old_member: dict[str, Any] = {"status": old, "user": bot}
        if old == "kicked":
            old_member["until_date"] = 0
        payload = {
            "chat": dict(self._state.chat),
            "from": self.user,
            "date": int(time.time()),
            "old_chat_member": old_member,
            "new_chat_member": new_member,
        }
        self.server.push_update("my_chat_member", payload)

    async def block(self) -> None:
        """Block the bot: sends now fail with 403; a my_chat_member (kicked) update is queued."""
        self.server._users[self.user_id].blocked = True
        self._member_update("member", "kicked")

    async def unblock(self) -> None:
        """Unblock the bot (my_chat_member kicked → member)."""
        self.server._users[self.user_id].blocked = False
        self._member_update("kicked", "member")


class GroupHandle(ChatHandle):
    """A group or supergroup; users act in it explicitly."""

    async def send_text(self, user: UserHandle, text: str) -> dict[str, Any]:
        """``user`` sends a text message in the group."""
        return self._user_message(user.user_id, self._text_content(text))

    async def send_command(
        self, user: UserHandle, command: str, args: str = "", *, mention: bool = True
    ) -> dict[str, Any]:
        """``user`` sends ``/command@botname args`` (without @botname if mention=False)."""
        name = command.lstrip("/")
        if mention:
            name += f"@{self.server.bot_user['username']}"
        return await self.send_text(user, f"/{name}" + (f" {args}" if args else ""))

    async def press(
        self, user: UserHandle, label: str | None = None, *, data: str | None = None
    ) -> str:
        """``user`` presses an inline button on the latest group message having it."""
        return self._press(user.user_id, label, data, None)

    async def add_bot(self, by: UserHandle) -> None:
        """Queue a my_chat_member update: the bot was added to the group by ``by``."""
        bot = dict(self.server.bot_user)
        payload = {
            "chat": dict(self._state.chat),
            "from": by.user,
            "date": int(time.time()),
            "old_chat_member": {"status": "left", "user": bot},
            "new_chat_member": {"status": "member", "user": bot},
        }
        self.server.push_update("my_chat_member", payload)


# --------------------------------------------------------------------------------------------
# Running PTB against the server
# --------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def run_polling(
    application: Any, *, timeout: float = 0.5, drop_pending_updates: bool = False, **kwargs: Any
) -> AsyncIterator[Any]:
    """Initialize + start a PTB Application and poll (short long-poll timeout); stop on exit."""
    async with application:
        await application.start()
        await application.updater.start_polling(
            poll_interval=0, timeout=timeout, drop_pending_updates=drop_pending_updates, **kwargs
        )
        try:
            yield application
        finally:
            if application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def run_webhook(
    application: Any,
    *,
    port: int | None = None,
    url_path: str = "webhook",
    secret_token: str | None = None,
    **kwargs: Any,
) -> AsyncIterator[str]:
    """Start a PTB Application in webhook mode on 127.0.0.1; yields the webhook URL."""
    port = port or free_port()
    webhook_url = f"http://127.0.0.1:{port}/{url_path}"
    async with application:
        await application.start()
        await application.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path=url_path,
            webhook_url=webhook_url,
            secret_token=secret_token,
            **kwargs,
        )
        try:
            yield webhook_url
        finally:
            if application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()
