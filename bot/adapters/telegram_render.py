"""Pure translation between Telegram objects and the engine's vocabulary (no I/O here)."""

from __future__ import annotations

import html
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity

from bot.engine.messages import Button, Incoming, Kind

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 4096  # Telegram's limit for a message text (UTF-16 code units, after parsing)
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes

# Media kinds the engine has a text for (dialogues/menu.yaml, unsupported_kinds), checked in
# this order: an animation also carries a `document`, a venue also carries a `location`.
MEDIA_KINDS = (
    "animation",
    "sticker",
    "photo",
    "video_note",
    "video",
    "voice",
    "audio",
    "document",
    "venue",
    "location",
    "poll",
    "dice",
)
# Other content a user may send: answered with the generic "ce type de message".
OTHER_CONTENT = ("story", "game", "invoice", "paid_media", "passport_data", "checklist")


def escape(text: str) -> str:
    """Escape plain text for Telegram's HTML parse mode."""
    return html.escape(text, quote=False)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split plain text into parts whose escaped form fits in `limit`, at paragraph, then line,
    then sentence or word boundaries (a hard cut only for a single overlong word)."""
    text = text.strip("\n")
    if utf16_len(escape(text)) <= limit:
        return [text] if text else [""]
    parts: list[str] = []
    current = ""
    for piece in _pieces(text, limit):
        candidate = piece if not current else current + piece
        if utf16_len(escape(candidate.strip("\n"))) <= limit:
            current = candidate
            continue
        if current.strip():
            parts.append(current.strip("\n"))
        current = piece
    if current.strip():
        parts.append(current.strip("\n"))
    return parts


def _pieces(text: str, limit: int) -> list[str]:
    """Cut text into atoms that each fit, keeping their separators (paragraphs first)."""
    out: list[str] = []
    for sep in ("\n\n", "\n", ". ", " "):
        if sep in text:
            chunks = text.split(sep)
            atoms = [c + sep for c in chunks[:-1]] + [chunks[-1]]
            for atom in atoms:
                if utf16_len(escape(atom.strip("\n"))) <= limit:
                    out.append(atom)
                else:
                    out.extend(_pieces(atom, limit))
            return out
    # a single overlong word: hard cut, leaving room for escaping
    step = max(1, limit // 6)
    return [text[i : i + step] for i in range(0, len(text), step)]


def keyboard(rows: list[list[Button]]) -> InlineKeyboardMarkup | None:
    """Inline keyboard from the engine's rows of buttons (payloads over 64 bytes are dropped)."""
    out: list[list[InlineKeyboardButton]] = []
    for row in rows:
        line = []
        for button in row:
            if len(button.payload.encode()) > CALLBACK_DATA_LIMIT:
                log.error("button payload over 64 bytes dropped: %r", button.payload[:80])
                continue
            line.append(InlineKeyboardButton(button.label, callback_data=button.payload))
        if line:
            out.append(line)
    return InlineKeyboardMarkup(out) if out else None


def pressed_label(message: Message | None, data: str) -> str:
    """The label of the button carrying `data` in a message's inline keyboard, if any."""
    markup = message.reply_markup if message is not None else None
    if markup is None:
        return ""
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return ""


def command_of(message: Message, bot_username: str) -> tuple[str, str, bool] | None:
    """(name, argument, addressed to another bot) for a message starting with a bot command."""
    text = message.text or ""
    entities = message.entities or ()
    if not text.startswith("/") or not any(
        e.type == MessageEntity.BOT_COMMAND and e.offset == 0 for e in entities
    ):
        return None
    head, _, arg = text[1:].partition(" ")
    head, _, arg_nl = head.partition("\n")
    arg = (arg_nl + " " + arg).strip() if arg_nl else arg.strip()
    name, _, target = head.partition("@")
    other = bool(target) and target.lower() != bot_username.lower()
    return name.lower(), arg, other


def media_kind(message: Message) -> str | None:
    """The engine's name for the media a message carries, "other" for other content, or None."""
    for kind in MEDIA_KINDS:
        if getattr(message, kind, None):
            return kind
    for kind in OTHER_CONTENT:
        if getattr(message, kind, None):
            return "other"
    return None


def to_incoming(message: Message, user_id: int, bot_username: str) -> Incoming | None:
    """Translate a private message into an engine event; None when there is nothing to answer."""
    name = message.from_user.first_name if message.from_user else ""
    command = command_of(message, bot_username)
    if command is not None:
        cmd, arg, _other = command
        return Incoming(user_id, Kind.COMMAND, cmd, arg, name)
    if message.contact is not None:
        return Incoming(user_id, Kind.CONTACT, message.contact.phone_number or "", "", name)
    if message.text is not None:
        return Incoming(user_id, Kind.TEXT, message.text, "", name)
    kind = media_kind(message)
    if kind is not None:
        return Incoming(user_id, Kind.UNSUPPORTED, kind, "", name)
    return None  # service messages (pinned, write access allowed…): nothing to say
