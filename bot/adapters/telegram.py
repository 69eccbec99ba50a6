"""The Telegram front end (python-telegram-bot v22): translation only, no dialogue logic.

Every update goes through one handler that turns it into an `Incoming`, runs the synchronous
engine in a worker thread, and renders the `Reply` objects (HTML-escaped text split under
4 096 characters, inline keyboards, in-place edits, documents). Updates are processed
concurrently across users and in order for each user (`telegram_gate.UserGate`). Long polling
by default; `--webhook` serves Telegram's POSTs (secret-token header checked) and `GET /healthz`
on one tornado server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import secrets
import signal
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    ChatMemberUpdated,
    InputFile,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatAction, ChatMemberStatus, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, Application, ContextTypes, TypeHandler

from bot import exchange
from bot.adapters.telegram_aiohttp import AiohttpRequest
from bot.adapters.telegram_gate import PerUserUpdateProcessor, UserGate, update_user_id
from bot.adapters.telegram_render import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    command_of,
    escape,
    keyboard,
    media_kind,
    pressed_label,
    split_text,
    to_incoming,
)
from bot.engine.messages import Button, Document, Incoming, Kind, Reply
from bot.storage.models import MessageState

if TYPE_CHECKING:
    from bot.app import App
    from bot.config import Settings
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

# The command menu shown by Telegram clients (set at start-up).
COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "Accueil et présentation"),
    ("aide", "Ce que je sais faire"),
    ("question", "Poser une question sur les ESP et les CPTS"),
    ("orientation", "ESP ou CPTS ? Trouver le bon cadre"),
    ("ami", "Répondre à l'AMI CPTS de l'ARS Bretagne"),
    ("reprendre", "Reprendre une réponse commencée"),
    ("annuler", "Abandonner l'action en cours"),
    ("mesdonnees", "Recevoir les données que je conserve sur vous"),
    ("supprimer", "Effacer vos données"),
)
COMMAND_NAMES = frozenset(name for name, _ in COMMANDS) | {"menu", "help"}

# Adapter-level texts (Telegram-specific situations). `engine.texts.get(key, default)` lets
# dialogues/menu.yaml override them without touching Python.
DEFAULT_TEXTS = {
    "group_invitation": (
        "Je réponds aux professionnels de santé en conversation privée, pour protéger vos "
        "données. Écrivez-moi ici : {link}"
    ),
    "edited_message": (
        "J'ai vu que vous avez modifié un message déjà envoyé : je ne tiens compte que des "
        "nouveaux messages. Renvoyez votre texte corrigé, s'il vous plaît."
    ),
}

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
TYPING_DELAY = 0.4  # seconds before "typing…" is shown for a slow turn
TYPING_EVERY = 4.5  # Telegram shows a chat action for about 5 s
EDIT_KEYS_KEPT = 20_000  # (chat, edit_key) → message_id remembered in memory


def file_url_for(base_url: str) -> str:
    """Derive the file base URL from the API base URL (`…/bot` → `…/file/bot`)."""
    if base_url.endswith("/bot"):
        return base_url[: -len("/bot")] + "/file/bot"
    return base_url.rstrip("/") + "/file/bot"


@dataclass
class TelegramFrontend:
    """The adapter's state: engine, per-user lanes, edit keys, blocked users.

    It is the runtime's `Deliverer` (bot/runtime.py): `deliver_notices` and
    `deliver_messages` hand users what was produced outside their turns."""

    app: App
    gate: UserGate
    executor: ThreadPoolExecutor
    notices_every: float = 3.0
    bot_username: str = ""
    blocked: set[int] = field(default_factory=set)
    edit_keys: OrderedDict[tuple[int, str], int] = field(default_factory=OrderedDict)
    last_message: OrderedDict[int, int] = field(default_factory=OrderedDict)  # 0: the user's
    turns: int = 0
    # Webhook mode: update_id → future resolved once that update's turn has run, so that the
    # HTTP answer (and with it the next update of the chat) waits for the turn.
    completions: dict[int, asyncio.Future[None]] = field(default_factory=dict)
    _application: Application | None = None  # type: ignore[type-arg]
    runtime: Runtime | None = None  # the background jobs, while `serve` runs

    # ------------------------------------------------------------------ helpers
    def text(self, key: str, **values: Any) -> str:
        """An engine text (menu.yaml), else the adapter's default."""
        template = self.app.engine.texts.get(key) or DEFAULT_TEXTS.get(key, "")
        return template.format(**values) if values else template

    async def run_turn(self, incoming: Incoming) -> list[Reply]:
        """Run one engine turn in a worker thread (the engine is synchronous and uses the DB)."""
        loop = asyncio.get_running_loop()
        self.turns += 1
        replies = await loop.run_in_executor(
            self.executor,
            functools.partial(self.app.engine.handle, render_documents=False),
            incoming,
        )
        for i, reply in enumerate(replies):
            if reply.document is not None and reply.document.render is not None:
                # the PDF fiche: rendered by the renderer process, waited for outside the turn
                # threads, so a burst of submissions never holds the other users' turns
                replies[i] = await loop.run_in_executor(
                    None, self.app.engine.render_document, reply
                )
        return replies

    @property
    def bot_link(self) -> str:
        return f"https://t.me/{self.bot_username}" if self.bot_username else "https://t.me/"

    # ------------------------------------------------------------------ lifecycle
    async def post_init(self, application: Application) -> None:  # type: ignore[type-arg]
        """Remember the bot's username, set the French command menu, warm the PDF renderer."""
        self._application = application
        self.bot_username = application.bot.username or ""
        try:
            await application.bot.set_my_commands([BotCommand(n, d) for n, d in COMMANDS])
        except TelegramError:
            log.exception("could not set the command menu")
        from bot.mail.pdfproc import warm

        warm()  # the PDF renderer process starts now, not on the first response

    async def post_shutdown(self, application: Application) -> None:  # type: ignore[type-arg]
        """Stop the thread pool and the PDF renderer (the background jobs are stopped by then)."""
        self.executor.shutdown(wait=True)
        from bot.mail.pdfproc import shutdown

        shutdown()

    # ------------------------------------------------------------------ notices
    async def deliver_notices(self) -> int:
        """One pass: claim each pending notice (safe across instances), then send it; then
        forget the idle users' lanes."""
        application = self._application
        if application is None:
            return 0
        try:
            return await self._deliver_notices(application)
        finally:
            self.gate.sweep()

    async def _deliver_notices(self, application: Application) -> int:  # type: ignore[type-arg]
        loop = asyncio.get_running_loop()
        store = self.app.store
        notices = await loop.run_in_executor(self.executor, store.pending_notices)
        sent = 0
        for notice in notices:
            if notice.id is None:
                continue
            claimed = await loop.run_in_executor(
                self.executor, store.mark_notice_delivered, notice.id
            )
            if not claimed:
                continue
            if notice.user_id in self.blocked:
                log.info("notice %s skipped: user %s blocked the bot", notice.id, notice.user_id)
                continue
            async with self.gate.lock(notice.user_id):
                try:
                    await self.send_replies(application, notice.user_id, [Reply(notice.text)])
                    sent += 1
                except Forbidden:
                    self.blocked.add(notice.user_id)
                    log.info(
                        "notice %s not delivered: user %s blocked the bot",
                        notice.id,
                        notice.user_id,
                    )
                except (NetworkError, RetryAfter) as exc:  # passing trouble: try again later
                    log.warning("notice %s not delivered, will retry: %s", notice.id, exc)
                    await loop.run_in_executor(self.executor, store.release_notice, notice.id)
                except TelegramError as exc:
                    log.warning("notice %s not delivered: %s", notice.id, exc)
        return sent

    async def deliver_messages(self) -> int:
        """One pass over the back office's messages to respondents (bot/exchange.py): each
        pending message is claimed (safe across instances), sent, and its delivery recorded:
        a refusal (the user blocked the bot) is stored as undelivered with Telegram's reason,
        shown in the back office. (The runtime's `exchange-reminders` job queues reminders.)"""
        application = self._application
        if application is None:
            return 0
        loop = asyncio.get_running_loop()
        store = self.app.store
        messages = await loop.run_in_executor(self.executor, exchange.claim_messages, store)
        sent = 0
        for message in messages:
            assert message.id is not None
            reply = Reply(
                message.text,
                [[Button(label, data) for label, data in row] for row in message.buttons],
            )
            attachment = message.attachment or {}
            replies = [reply]
            if attachment.get("content"):
                replies.append(
                    Reply(
                        "",
                        document=Document(
                            filename=str(attachment.get("filename", "piece-jointe")),
                            content=str(attachment["content"]).encode("utf-8"),
                            mime_type=str(attachment.get("mime", "application/octet-stream")),
                        ),
                    )
                )
            state, error = MessageState.DELIVERED, None
            async with self.gate.lock(message.user_id):
                try:
                    await self.send_replies(application, message.user_id, replies)
                    sent += 1
                except Forbidden as exc:
                    self.blocked.add(message.user_id)
                    state, error = MessageState.UNDELIVERED, str(exc)
                    log.info("message %s not delivered: %s", message.id, exc)
                except (NetworkError, RetryAfter) as exc:  # passing trouble: try again later
                    state, error = MessageState.PENDING, str(exc)
                    log.warning("message %s not delivered, will retry: %s", message.id, exc)
                except TelegramError as exc:
                    state, error = MessageState.UNDELIVERED, str(exc)
                    log.warning("message %s not delivered: %s", message.id, exc)
            await loop.run_in_executor(
                self.executor, exchange.finish_message, store, message.id, state, error
            )
        return sent

    # ------------------------------------------------------------------ updates
    def after(self, update: object) -> None:
        """Runs when an update has been handled: release the webhook request waiting for it."""
        if isinstance(update, Update):
            future = self.completions.pop(update.update_id, None)
            if future is not None and not future.done():
                future.set_result(None)

    def before(self, update: object) -> None:
        """Runs at arrival, outside the user's lane: answer callback queries at once."""
        if isinstance(update, Update) and update.callback_query is not None:
            self.gate.spawn(_answer_quietly(update.callback_query))

    async def on_flood(self, user_id: int) -> None:
        """The one polite notice a flooding user gets per window."""
        if self._application is None or user_id in self.blocked:
            return
        with contextlib.suppress(TelegramError):
            await self._application.bot.send_message(
                user_id, escape(self.text("flood")), parse_mode=ParseMode.HTML
            )

    async def on_update(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The single handler: dispatch by kind of update."""
        if not isinstance(update, Update):
            return
        application = context.application
        if update.my_chat_member is not None:
            self._member_changed(update.my_chat_member)
            return
        if update.callback_query is not None:
            await self._callback(application, update)
            return
        if update.edited_message is not None:
            await self._edited(application, update.edited_message)
            return
        message = update.message
        if message is None:
            log.debug("update %s ignored on purpose (%s)", update.update_id, _kind_of(update))
            return  # channel posts, polls' state, reactions, inline queries…: not for this bot
        if message.chat.type != ChatType.PRIVATE:
            await self._group_message(application, message)
            return
        user = message.from_user
        if user is None or user.is_bot:
            return
        incoming = to_incoming(message, user.id, self.bot_username)
        if incoming is None:
            return
        self.blocked.discard(user.id)
        self._note_last(message.chat_id, 0)  # the user spoke last: edits above would go unseen
        await self._turn(
            application, message.chat_id, replace(incoming, update_id=update.update_id)
        )

    async def _turn(
        self,
        application: Application,  # type: ignore[type-arg]
        chat_id: int,
        incoming: Incoming,
        pressed: Message | None = None,
        data: str = "",
    ) -> None:
        """Run a turn with "typing…" if it is slow, then render its replies."""
        # a timer, not a task per turn: most turns end before TYPING_DELAY
        typing: list[asyncio.Task[None]] = []
        timer = asyncio.get_running_loop().call_later(
            TYPING_DELAY, lambda: typing.append(asyncio.create_task(_typing(application, chat_id)))
        )
        try:
            replies = await self.run_turn(incoming)
        finally:
            timer.cancel()
            for task in typing:
                task.cancel()
        pressed_id = pressed.message_id if pressed is not None else None
        if pressed is None:
            await self.send_replies(application, chat_id, replies)
            return
        # the "✔ choice" edit of the pressed message and the new replies go out together
        await asyncio.gather(
            self._mark_pressed(application, chat_id, pressed, data, replies),
            self.send_replies(application, chat_id, replies, pressed_id),
        )

    async def _callback(self, application: Application, update: Update) -> None:  # type: ignore[type-arg]
        query = update.callback_query
        assert query is not None
        data = query.data
        if data is None:  # game buttons: not used by this bot
            return
        message = query.message if isinstance(query.message, Message) else None
        chat_id = message.chat_id if message is not None else query.from_user.id
        if message is not None and message.chat.type != ChatType.PRIVATE:
            await self._invite(application, message)
            return
        self.blocked.discard(query.from_user.id)
        incoming = Incoming(
            query.from_user.id,
            Kind.CHOICE,
            data,
            "",
            query.from_user.first_name,
            update_id=update.update_id,
        )
        await self._turn(application, chat_id, incoming, pressed=message, data=data)

    async def _mark_pressed(
        self,
        application: Application,  # type: ignore[type-arg]
        chat_id: int,
        message: Message,
        data: str,
        replies: list[Reply],
    ) -> None:
        """Drop the pressed message's keyboard and show the choice, unless a reply edits it."""
        if any(self._editable(chat_id, r, message.message_id) is not None for r in replies):
            return
        stale = bool(replies) and replies[0].text == self.app.engine.texts.get("stale_button")
        label = pressed_label(message, data)
        try:
            if message.text and label and not stale:
                text = escape(message.text) + "\n\n✔ " + escape(label)
                if len(text) <= MESSAGE_LIMIT:
                    await application.bot.edit_message_text(
                        text,
                        chat_id,
                        message.message_id,
                        parse_mode=ParseMode.HTML,
                        link_preview_options=NO_PREVIEW,
                    )
                    return
            if message.reply_markup is not None:
                await application.bot.edit_message_reply_markup(chat_id, message.message_id)
        except TelegramError as exc:  # too old, already edited, deleted…: harmless
            log.debug("pressed message %s not updated: %s", message.message_id, exc)

    async def _edited(self, application: Application, message: Message) -> None:  # type: ignore[type-arg]
        if message.chat.type != ChatType.PRIVATE:
            return
        await self.send_replies(application, message.chat_id, [Reply(self.text("edited_message"))])

    def _member_changed(self, change: ChatMemberUpdated) -> None:
        """Track users blocking / unblocking the bot (private chats) and group membership."""
        status = change.new_chat_member.status
        who = change.from_user.id
        if change.chat.type == ChatType.PRIVATE:
            if status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
                self.blocked.add(change.chat.id)
                log.info("user %s blocked the bot", who)
            else:
                self.blocked.discard(change.chat.id)
                log.info("user %s (un)blocked → %s", who, status)
            return
        log.info("bot is now %s in %s %s", status, change.chat.type, change.chat.id)

    async def _group_message(self, application: Application, message: Message) -> None:  # type: ignore[type-arg]
        """In groups, answer only what is addressed to the bot, with an invitation to a private chat."""
        if message.chat.type == ChatType.CHANNEL or message.from_user is None:
            return
        if self._addressed_to_me(message):
            await self._invite(application, message)

    def _addressed_to_me(self, message: Message) -> bool:
        me = self.bot_username.lower()
        command = command_of(message, self.bot_username)
        if command is not None:
            name, _arg, other = command
            return not other and ("@" in (message.text or "").split()[0] or name in COMMAND_NAMES)
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None:  # noqa: SIM102
            if (replied.from_user.username or "").lower() == me:
                return True
        text = message.text or message.caption or ""
        entities = message.entities or message.caption_entities or ()
        for entity in entities:
            if entity.type == MessageEntity.MENTION:
                mention = text[entity.offset + 1 : entity.offset + entity.length]
                if mention.lower() == me:
                    return True
        return bool(me) and f"@{me}" in text.lower().split()

    async def _invite(self, application: Application, message: Message) -> None:  # type: ignore[type-arg]
        link = self.bot_link
        command = command_of(message, self.bot_username)
        if command is not None and command[0] == "start" and command[1] in ("ami", "orientation"):
            link += f"?start={command[1]}"
        text = self.text("group_invitation", link=link)
        await application.bot.send_message(
            message.chat_id,
            escape(text),
            parse_mode=ParseMode.HTML,
            link_preview_options=NO_PREVIEW,
            reply_to_message_id=message.message_id,
        )

    # ------------------------------------------------------------------ rendering
    async def send_replies(
        self,
        application: Application,  # type: ignore[type-arg]
        chat_id: int,
        replies: list[Reply],
        pressed_id: int | None = None,
    ) -> None:
        """Render the engine's replies: edits in place, long texts split, documents."""
        bot = application.bot
        for reply in replies:
            markup = keyboard(reply.buttons)
            if reply.document is not None:
                await self._send_document(application, chat_id, reply, markup)
                continue
            target = self._editable(chat_id, reply, pressed_id)
            if target is not None and await self._edit(application, chat_id, reply, target, markup):
                continue
            parts = split_text(reply.text)
            sent: Message | None = None
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                sent = await bot.send_message(
                    chat_id,
                    escape(part) or "…",
                    parse_mode=ParseMode.HTML,
                    link_preview_options=NO_PREVIEW,
                    reply_markup=markup if last else None,
                )
                self._note_last(chat_id, sent.message_id)
            if reply.edit_key and sent is not None:
                self._remember(chat_id, reply.edit_key, sent.message_id)

    def _editable(self, chat_id: int, reply: Reply, pressed_id: int | None) -> int | None:
        """The message to edit for `reply`: the one carrying its edit_key, if the user is
        looking at it (its button was just pressed, or it is still the chat's last message)."""
        if not reply.edit_key:
            return None
        message_id = self.edit_keys.get((chat_id, reply.edit_key))
        if message_id is None:
            return None
        if message_id == pressed_id or message_id == self.last_message.get(chat_id):
            return message_id
        return None

    def _note_last(self, chat_id: int, message_id: int) -> None:
        self.last_message[chat_id] = message_id
        self.last_message.move_to_end(chat_id)
        while len(self.last_message) > EDIT_KEYS_KEPT:
            self.last_message.popitem(last=False)

    async def _edit(
        self,
        application: Application,  # type: ignore[type-arg]
        chat_id: int,
        reply: Reply,
        message_id: int,
        markup: Any,
    ) -> bool:
        """Edit the message carrying `reply.edit_key` in place; False to send a new one."""
        assert reply.edit_key is not None
        parts = split_text(reply.text)
        if len(parts) != 1:
            return False
        try:
            await application.bot.edit_message_text(
                escape(parts[0]),
                chat_id,
                message_id,
                parse_mode=ParseMode.HTML,
                link_preview_options=NO_PREVIEW,
                reply_markup=markup,
            )
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return True
            log.info("edit of message %s failed (%s): sending a new one", message_id, exc)
            self.edit_keys.pop((chat_id, reply.edit_key), None)
            return False
        self.edit_keys.move_to_end((chat_id, reply.edit_key))
        return True

    def _remember(self, chat_id: int, key: str, message_id: int) -> None:
        self.edit_keys[(chat_id, key)] = message_id
        self.edit_keys.move_to_end((chat_id, key))
        while len(self.edit_keys) > EDIT_KEYS_KEPT:
            self.edit_keys.popitem(last=False)

    async def _send_document(
        self,
        application: Application,  # type: ignore[type-arg]
        chat_id: int,
        reply: Reply,
        markup: Any,
    ) -> None:
        doc = reply.document
        assert doc is not None
        if reply.text.strip():
            await self.send_replies(application, chat_id, [Reply(reply.text)])
        await application.bot.send_chat_action(chat_id, ChatAction.UPLOAD_DOCUMENT)
        caption = doc.caption[: CAPTION_LIMIT // 2]
        sent = await application.bot.send_document(
            chat_id,
            InputFile(doc.content, filename=doc.filename),
            caption=escape(caption) or None,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
        )
        self._note_last(chat_id, sent.message_id)

    # ------------------------------------------------------------------ errors
    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log, and apologise to the user with the engine's text (never raises)."""
        error = context.error
        if isinstance(error, Forbidden):
            key = update_user_id(update)
            if key is not None:
                self.blocked.add(key)
            log.info("user %s cannot be reached (%s)", key, error)
            return
        log.error("error while handling an update", exc_info=error)
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        if update.effective_chat.type != ChatType.PRIVATE or isinstance(error, RetryAfter):
            return
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(
                update.effective_chat.id, escape(self.text("error")), parse_mode=ParseMode.HTML
            )


async def _answer_quietly(query: Any) -> None:
    """Answer a callback query; an old or already answered query is not an error."""
    try:
        await query.answer()
    except TelegramError as exc:
        log.debug("callback query not answered: %s", exc)


async def _typing(application: Application, chat_id: int) -> None:  # type: ignore[type-arg]
    """Show "typing…" (started once a turn has taken TYPING_DELAY) until cancelled."""
    with contextlib.suppress(TelegramError):
        while True:
            await application.bot.send_chat_action(chat_id, ChatAction.TYPING)
            await asyncio.sleep(TYPING_EVERY)


def _kind_of(update: Update) -> str:
    for name in ("channel_post", "edited_channel_post", "inline_query", "poll", "poll_answer"):
        if getattr(update, name, None) is not None:
            return name
    return "other"


# ---------------------------------------------------------------------------- building


def build_application(
    app: App,
    *,
    token: str | None = None,
    base_url: str | None = None,
    rate_limit: bool = True,
    notices_every: float = 3.0,
    threads: int = 8,
    max_concurrent_updates: int = 4096,
) -> Application:  # type: ignore[type-arg]
    """Build the PTB Application wired to the engine (used by `bot.runtime.run_telegram` and the tests)."""
    settings = app.settings
    frontend_ref: list[TelegramFrontend] = []

    async def flood(user_id: int) -> None:
        await frontend_ref[0].on_flood(user_id)

    async def dropped(update: Any) -> None:
        if isinstance(update, Update) and update.callback_query is not None:
            await _answer_quietly(update.callback_query)

    gate = UserGate(
        settings.flood_messages, settings.flood_seconds, on_flood=flood, on_drop=dropped
    )
    frontend = TelegramFrontend(
        app=app,
        gate=gate,
        executor=ThreadPoolExecutor(max_workers=threads, thread_name_prefix="turn"),
        notices_every=notices_every,
    )
    frontend_ref.append(frontend)
    builder = (
        Application.builder()
        .token(token or settings.telegram_bot_token)
        .concurrent_updates(
            PerUserUpdateProcessor(
                gate, max_concurrent_updates, before=frontend.before, after=frontend.after
            )
        )
        .post_init(frontend.post_init)
        .post_shutdown(frontend.post_shutdown)
        # aiohttp instead of PTB's default httpx: a third of the CPU per update (see
        # docs/telegram.md); long polling gets its own session so it never waits for the pool
        .request(AiohttpRequest(connection_pool_size=64))
        .get_updates_request(AiohttpRequest(connection_pool_size=1))
    )
    base = base_url or settings.telegram_api_base_url
    if base:
        builder = builder.base_url(base).base_file_url(file_url_for(base))
    if rate_limit:
        # PTB types the builder's limiter by its request data; AIORateLimiter takes the default
        builder = builder.rate_limiter(AIORateLimiter(max_retries=3))  # type: ignore[arg-type]
    application = builder.build()
    application.bot_data["frontend"] = frontend
    application.add_handler(TypeHandler(Update, frontend.on_update))
    application.add_error_handler(frontend.on_error)
    return application


def frontend_of(application: Application) -> TelegramFrontend:  # type: ignore[type-arg]
    """The adapter object behind an application built by `build_application`."""
    return application.bot_data["frontend"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- serving


async def serve(
    application: Application,  # type: ignore[type-arg]
    *,
    webhook: bool = False,
    stop: asyncio.Event | None = None,
    poll_timeout: float = 10.0,
    handle_signals: bool = True,
    runtime: Runtime | None = None,
) -> int:
    """Run until SIGINT/SIGTERM (or `stop`), then finish pending turns and stop cleanly.

    `runtime` (bot/runtime.py, made by `bot.runtime.serve_telegram` with this adapter as the
    deliverer of notices and messages) runs the background jobs while the bot serves; it is
    stopped once the pending turns are finished."""
    frontend = frontend_of(application)
    settings = frontend.app.settings
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    server = None
    started = False
    try:
        await application.initialize()
    except TelegramError as exc:
        log.error("cannot reach the Bot API (%s): check TELEGRAM_BOT_TOKEN and the network", exc)
        return 1
    try:
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        if runtime is not None:
            frontend.runtime = runtime
            await runtime.start()
            started = True
        if webhook:
            server = await _start_webhook(application, settings)
            if server is None:
                return 2
        else:
            assert application.updater is not None
            await application.updater.start_polling(
                poll_interval=0.0,
                timeout=int(poll_timeout),
                allowed_updates=Update.ALL_TYPES,
            )
        log.info(
            "bot @%s running (%s)", frontend.bot_username, "webhook" if webhook else "long polling"
        )
        await stop.wait()
        log.info("stopping: finishing pending turns")
    finally:
        frontend.gate.stop_throttling()
        if server is not None:
            server.stop()
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        if runtime is not None and started:  # after the last turns, which may queue e-mails
            await runtime.stop()
        if server is not None:
            await server.close_all_connections()
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
    log.info("stopped cleanly")
    return 0


async def _start_webhook(application: Application, settings: Settings) -> Any:  # type: ignore[type-arg]
    """Serve the webhook path and /healthz on one tornado server; register the webhook."""
    import tornado.httpserver
    import tornado.web

    if not settings.webhook_url:
        log.error("webhook mode needs WEBHOOK_URL (the public https address Telegram posts to)")
        return None
    secret = settings.webhook_secret
    if not secret:
        secret = secrets.token_urlsafe(32)
        log.warning("no WEBHOOK_SECRET: using a random one (fine for a single instance only)")
    path = urlsplit(settings.webhook_url).path or "/"
    frontend = frontend_of(application)
    web_app = tornado.web.Application(
        [
            (r"/healthz", _HealthHandler, {"frontend": frontend}),
            (
                _tornado_path(path),
                _WebhookHandler,
                {
                    "bot_application": application,
                    "secret": secret,
                    "frontend": frontend,
                    "trusted_proxies": frozenset(settings.webhook_trusted_proxies),
                },
            ),
        ]
    )
    # Telegram's updates are a few KiB: a larger body is refused by tornado from its
    # Content-Length (or as it streams), before it is read and before the secret is checked.
    # xheaders off: the client address is the socket's unless the peer is a trusted proxy.
    server = tornado.httpserver.HTTPServer(
        web_app, xheaders=False, max_body_size=MAX_WEBHOOK_BODY, max_buffer_size=MAX_WEBHOOK_BODY
    )
    server.listen(settings.webhook_port, settings.webhook_listen)
    await application.bot.set_webhook(
        settings.webhook_url,
        secret_token=secret,
        allowed_updates=Update.ALL_TYPES,
        max_connections=40,
    )
    log.info(
        "webhook listening on %s:%s%s (public %s)",
        settings.webhook_listen,
        settings.webhook_port,
        path,
        settings.webhook_url,
    )
    return server


def _tornado_path(path: str) -> str:
    import re

    return re.escape(path.rstrip("/") or "/") + "/?"


def _health(frontend: TelegramFrontend) -> tuple[bool, str]:
    """A committed database write and the age of the oldest pending e-mail (see Store.health)."""
    from datetime import timedelta

    settings = frontend.app.settings
    ok, status = frontend.app.store.health(
        timedelta(minutes=settings.healthz_outbox_max_minutes),
        probe=f"healthz:{settings.webhook_port}",
    )
    if not ok:
        log.error("health check failed: %s", status)
    return ok, status


MAX_WEBHOOK_BODY = 1024 * 1024  # 1 MiB
WEBHOOK_ANSWER_WITHIN = 45.0  # seconds a webhook request waits for its turn before answering


def _handlers() -> tuple[type, type]:
    import tornado.web

    class WebhookHandler(tornado.web.RequestHandler):
        """Telegram's POSTs: secret token checked, update queued for the application."""

        def initialize(
            self,
            bot_application: Application,  # type: ignore[type-arg]
            secret: str,
            frontend: TelegramFrontend | None = None,
            trusted_proxies: frozenset[str] = frozenset(),
        ) -> None:
            self.application_ = bot_application
            self.secret = secret
            self.frontend = frontend
            self.trusted_proxies = trusted_proxies

        def client_ip(self) -> str:
            """The socket's peer; a proxy's X-Real-IP / X-Forwarded-For only from a trusted one."""
            peer = str(self.request.remote_ip)
            if peer not in self.trusted_proxies:
                return peer
            real = self.request.headers.get("X-Real-IP", "").strip()
            forwarded = self.request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
            return real or forwarded or peer

        async def post(self) -> None:
            given = self.request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
            if not hmac.compare_digest(given.encode(), self.secret.encode()):
                log.warning("webhook call with a wrong secret token from %s", self.client_ip())
                self.set_status(403)
                self.finish("forbidden")
                return
            try:
                data = json.loads(self.request.body)
                update = Update.de_json(data, self.application_.bot)
            except Exception:
                self.set_status(400)
                self.finish("bad update")
                return
            done: asyncio.Future[None] | None = None
            if self.frontend is not None:
                # Answer only once the turn has run: Telegram (or the load balancer) sends a
                # chat's next update after this answer, so two instances apply one user's
                # updates in order. Telegram gives up after ~60 s; we answer before that.
                done = asyncio.get_running_loop().create_future()
                self.frontend.completions[update.update_id] = done
            await self.application_.update_queue.put(update)
            if done is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(done), WEBHOOK_ANSWER_WITHIN)
                self.frontend.completions.pop(update.update_id, None)  # type: ignore[union-attr]
            self.set_status(200)
            self.finish()

    class HealthHandler(tornado.web.RequestHandler):
        """GET /healthz: 200 "ok" when the database takes a write and no e-mail is stuck."""

        def initialize(self, frontend: TelegramFrontend) -> None:
            self.frontend = frontend

        async def get(self) -> None:
            loop = asyncio.get_running_loop()
            ok, status = await loop.run_in_executor(None, _health, self.frontend)
            self.set_status(200 if ok else 503)
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(status)

    return WebhookHandler, HealthHandler


_WebhookHandler, _HealthHandler = _handlers()


__all__ = [
    "COMMANDS",
    "MESSAGE_LIMIT",
    "TelegramFrontend",
    "build_application",
    "file_url_for",
    "frontend_of",
    "media_kind",
    "serve",
]
