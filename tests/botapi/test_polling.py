"""The emulator against the real, unmodified PTB in long-polling mode."""

from __future__ import annotations

import asyncio

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.support.botapi import BotApiServer, run_polling


def echo_app(server: BotApiServer) -> Application:
    """An application that echoes text and offers a keyboard on /start."""
    app = server.application_builder().build()

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keyboard = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton("Valider", callback_data="ok")],
                [InlineKeyboardButton("Annuler", callback_data="cancel")],
            ]
        )
        args = " ".join(context.args or [])
        await update.effective_message.reply_text(
            f"<b>Bienvenue</b> {args}".strip(), parse_mode=ParseMode.HTML, reply_markup=keyboard
        )

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        await query.answer(f"choisi : {query.data}")
        await query.edit_message_text(f"Choix : {query.data}")

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(update.effective_message.text)

    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    return app


async def test_echo_text(server: BotApiServer) -> None:
    async with run_polling(echo_app(server)):
        user = server.user(1001, "Claire", "Morvan", "cmorvan", "fr")
        sent = await user.send_text("Bonjour <à> & co")
        [reply] = await user.wait_for_messages(1)
    assert reply.plain == "Bonjour <à> & co"
    assert reply.raw["chat"]["id"] == 1001
    assert reply.raw["from"]["is_bot"] is True
    assert sent["from"]["username"] == "cmorvan"
    assert [c.method for c in server.calls()][:2] == ["getMe", "deleteWebhook"]
    assert server.calls("sendMessage")[0].params["chat_id"] == 1001


async def test_start_buttons_callback_and_edit(server: BotApiServer) -> None:
    async with run_polling(echo_app(server)):
        user = server.user(1002, "Yann")
        await user.send_command("start", "ami")
        [welcome] = await user.wait_for_messages(1)
        assert welcome.text == "<b>Bienvenue</b> ami"
        assert welcome.plain == "Bienvenue ami"
        assert welcome.entities == [{"type": "bold", "offset": 0, "length": 9}]
        assert welcome.keyboard == [[("Valider", "ok")], [("Annuler", "cancel")]]

        query_id = await user.press("Valider")
        answer = await user.wait_for_callback_answer(query_id)
        edited = await user.wait_for_edit(welcome.message_id)
    assert answer["text"] == "choisi : ok"
    assert edited.plain == "Choix : ok"
    assert edited.history == ["Bienvenue ami"]
    assert edited.keyboard == []  # editMessageText without reply_markup removes the keyboard
    assert user.unread() == []
    assert server.callback(query_id).answered


async def test_stale_button_and_double_answer(server: BotApiServer) -> None:
    """A second answer to the same query is refused like Telegram does."""
    app = echo_app(server)
    async with run_polling(app):
        user = server.user(1003, "Anne")
        await user.send_command("start")
        await user.wait_for_messages(1)
        query_id = await user.press(data="cancel")
        await user.wait_for_callback_answer(query_id)
        with pytest.raises(BadRequest, match=r"(?i)query is too old"):
            await app.bot.answer_callback_query(query_id, text="again")
        with pytest.raises(BadRequest, match=r"(?i)query is too old"):
            await app.bot.answer_callback_query("999", text="unknown")
        with pytest.raises(AssertionError, match=r"(?i)no inline button"):
            await user.press("Valider")  # the keyboard was removed by the edit


async def test_edit_errors(server: BotApiServer) -> None:
    app = server.application_builder().build()
    user = server.user(1004, "Paul")
    async with app:
        message = await app.bot.send_message(1004, "Un")
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await app.bot.edit_message_text("Un", chat_id=1004, message_id=message.message_id)
        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await app.bot.edit_message_text("Deux", chat_id=1004, message_id=999)
        edited = await app.bot.edit_message_text(
            "<i>Deux</i>", chat_id=1004, message_id=message.message_id, parse_mode="HTML"
        )
        assert edited.text == "Deux"
        assert edited.edit_date is not None
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="x")]])
        await app.bot.edit_message_reply_markup(1004, message.message_id, reply_markup=markup)
        assert await app.bot.delete_message(1004, message.message_id) is True
        with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
            await app.bot.delete_message(1004, message.message_id)
    [seen] = user.read()
    assert seen.plain == "Deux"
    assert seen.history == ["Un"]
    assert seen.buttons == ["x"]
    assert seen.deleted


async def test_document_round_trip(server: BotApiServer) -> None:
    payload = bytes(range(256)) * 40
    app = server.application_builder().build()
    user = server.user(1005, "Lena")
    async with app:
        sent = await app.bot.send_document(
            1005,
            document=payload,
            filename="synthese.pdf",
            caption="<b>Votre</b> synthèse",
            parse_mode="HTML",
        )
        assert sent.document.file_name == "synthese.pdf"
        assert sent.document.file_size == len(payload)
        assert sent.caption == "Votre synthèse"
        # the bot can download what it sent, and what a user sent
        downloaded = await (await app.bot.get_file(sent.document.file_id)).download_as_bytearray()
        assert bytes(downloaded) == payload
        incoming = await user.send_document("piece.txt", b"hello", "text/plain")
        got = await app.bot.get_file(incoming["document"]["file_id"])
        assert bytes(await got.download_as_bytearray()) == b"hello"
    [record] = user.documents()
    assert record.data == payload
    assert record.file_name == "synthese.pdf"
    assert record.mime_type == "application/pdf"
    call = server.calls("sendDocument")[0]
    assert call.files["document"].file_name == "synthese.pdf"


async def test_commands_menu_and_chat(server: BotApiServer) -> None:
    from telegram import BotCommand, BotCommandScopeAllPrivateChats, MenuButtonCommands

    app = server.application_builder().build()
    server.user(1006, "Marc")
    async with app:
        commands = [BotCommand("start", "Démarrer"), BotCommand("aide", "Aide")]
        assert await app.bot.set_my_commands(commands)
        assert await app.bot.set_my_commands(
            [BotCommand("fr", "Français")],
            scope=BotCommandScopeAllPrivateChats(),
            language_code="fr",
        )
        got = await app.bot.get_my_commands()
        assert [(c.command, c.description) for c in got] == [
            ("start", "Démarrer"),
            ("aide", "Aide"),
        ]
        scoped = await app.bot.get_my_commands(BotCommandScopeAllPrivateChats(), "fr")
        assert [c.command for c in scoped] == ["fr"]
        with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
            await app.bot.set_my_commands([BotCommand("Bad-Name", "x")])
        assert await app.bot.delete_my_commands()
        assert await app.bot.get_my_commands() == ()
        assert await app.bot.set_chat_menu_button(1006, MenuButtonCommands())
        chat = await app.bot.get_chat(1006)
        assert chat.first_name == "Marc"
        assert await app.bot.send_chat_action(1006, "typing")
        me = await app.bot.get_me()
        assert me.username == "esp_test_bot"
    assert server.menu_button(1006) == {"type": "commands"}
    assert server.user(1006).chat_actions() == ["typing"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a < b", 'unsupported start tag ""'),
        ("<div>x</div>", 'unsupported start tag "div"'),
        ("<b>gras", "can't find end tag"),
        ("<b><i>x</b></i>", "unmatched end tag"),
        ("Tom & Jerry", "unsupported HTML entity"),
        ('<span class="x">s</span>', "tg-spoiler"),
    ],
)
async def test_html_errors_surface_as_bad_request(
    server: BotApiServer, text: str, match: str
) -> None:
    app = server.application_builder().build()
    server.user(1007, "Eve")
    async with app:
        with pytest.raises(BadRequest, match=r"(?i)parse entities") as info:
            await app.bot.send_message(1007, text, parse_mode="HTML")
    assert match.lower() in str(info.value).lower()
    assert server.calls("sendMessage")[0].status == 400


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_length_empty_markup_and_throttle(server: BotApiServer) -> None:
    app = server.application_builder().build()
    user = server.user(1008, "Zoé")
    async with app:
        assert (await app.bot.send_message(1008, "a" * 4096)).text == "a" * 4096
        with pytest.raises(BadRequest, match=r"(?i)message is too long"):
            await app.bot.send_message(1008, "a" * 4097)
        # the limit applies after entity parsing
        await app.bot.send_message(1008, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
        with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
            await app.bot.send_message(1008, "<b> </b>", parse_mode="HTML")
        with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
            await app.bot.send_message(
                1008,
                "x",
                reply_markup=InlineKeyboardMarkup(
                    [[InlineKeyboardButton("b", callback_data="d" * 65)]]
                ),
            )
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await app.bot.send_message(4242, "x")
        server.throttle(3)
        with pytest.raises(RetryAfter) as info:
            await app.bot.send_message(1008, "x")
        assert "Retry in 3 seconds" in str(info.value)
        assert (await app.bot.send_message(1008, "after")).text == "after"
    assert [m.plain[:1] for m in user.read()] == ["a", "a", "a"]


async def test_blocked_user_is_forbidden(server: BotApiServer) -> None:
    received: list[str] = []
    app = server.application_builder().build()

    async def on_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        received.append(update.my_chat_member.new_chat_member.status)

    from telegram.ext import ChatMemberHandler

    app.add_handler(ChatMemberHandler(on_member, ChatMemberHandler.MY_CHAT_MEMBER))
    async with run_polling(app):
        user = server.user(1009, "Bob")
        await user.block()
        await server.wait_for(lambda: received == ["kicked"], 3)
        with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
            await app.bot.send_message(1009, "hello?")
        await user.unblock()
        await server.wait_for(lambda: received == ["kicked", "member"], 3)
        assert (await app.bot.send_message(1009, "re")).text == "re"


async def test_burst_of_twenty_in_order(server: BotApiServer) -> None:
    async with run_polling(echo_app(server)):
        user = server.user(1010, "Rapide")
        for index in range(20):
            await user.send_text(f"message {index}")
        replies = await user.wait_for_messages(20, timeout=10)
    assert [r.plain for r in replies] == [f"message {i}" for i in range(20)]
    assert server.latency_stats()["count"] == 20
    assert 0 < server.latency_stats()["p50"] < 5


async def test_group_command_with_mention(server: BotApiServer) -> None:
    async with run_polling(echo_app(server)):
        user = server.user(1011, "Gaëlle")
        group = server.group(-100123, "MSP")
        await group.send_command(user, "start", "ami")
        [welcome] = await group.wait_for_messages(1)
        assert welcome.plain == "Bienvenue ami"
        await group.press(user, "Annuler")
        edited = await group.wait_for_edit(welcome.message_id)
    assert edited.plain == "Choix : cancel"
    assert user.all_messages() == []


async def test_media_and_misc_updates_reach_ptb(server: BotApiServer) -> None:
    seen: list[str] = []
    app = server.application_builder().build()

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if update.edited_message:
            seen.append(f"edited:{message.text}")
        elif message.forward_origin:
            seen.append(f"forward:{message.forward_origin.sender_user_name}")
        else:
            kinds = (
                "text",
                "photo",
                "voice",
                "video_note",
                "sticker",
                "location",
                "contact",
                "document",
            )
            seen.append(next(k for k in kinds if getattr(message, k)))

    app.add_handler(MessageHandler(filters.ALL, record))
    async with run_polling(app):
        user = server.user(1012, "Nina")
        await user.send_text("v1")
        await user.edit_last("v2")
        await user.send_photo()
        await user.send_voice()
        await user.send_video_note()
        await user.send_sticker()
        await user.send_location(48.11, -1.68)
        await user.send_contact("+33600000000", "Nina", user_id=1012)
        await user.send_document("a.pdf", b"%PDF")
        await user.forward_text("transféré", "Dr X")
        await server.wait_for(lambda: len(seen) == 10, 5, lambda: str(seen))
    assert seen == [
        "text",
        "edited:v2",
        "photo",
        "voice",
        "video_note",
        "sticker",
        "location",
        "contact",
        "document",
        "forward:Dr X",
    ]


async def test_reply_keyboard_and_tap(server: BotApiServer) -> None:
    from telegram import ReplyKeyboardMarkup, ReplyKeyboardRemove

    app = server.application_builder().build()

    async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_message.text == "Oui":
            await update.effective_message.reply_text("ok", reply_markup=ReplyKeyboardRemove())
        else:
            await update.effective_message.reply_text(
                "Oui ou non ?", reply_markup=ReplyKeyboardMarkup([["Oui", "Non"]])
            )

    app.add_handler(MessageHandler(filters.TEXT, ask))
    async with run_polling(app):
        user = server.user(1013, "Iris")
        await user.send_text("question")
        [question] = await user.wait_for_messages(1)
        assert question.reply_keyboard == [["Oui", "Non"]]
        assert user.reply_keyboard == [["Oui", "Non"]]
        await user.tap("Oui")
        await user.wait_for_messages(1)
    assert user.reply_keyboard is None
    with pytest.raises(AssertionError):
        await user.tap("Non")


async def test_wait_until_idle(server: BotApiServer) -> None:
    app = server.application_builder().build()

    async def chatty(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        for index in range(3):
            await update.effective_message.reply_text(f"part {index}")
            await asyncio.sleep(0.05)

    app.add_handler(MessageHandler(filters.TEXT, chatty))
    async with run_polling(app):
        user = server.user(1014, "Lou")
        await user.send_text("go")
        messages = await user.wait_until_idle(quiet=0.3, timeout=5)
    assert [m.plain for m in messages] == ["part 0", "part 1", "part 2"]
