"""The Telegram adapter in-process against the Bot API emulator (real PTB, real HTTP)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from bot.adapters.telegram import COMMANDS
from bot.adapters.telegram_render import split_text, utf16_len
from bot.engine.messages import Button, Incoming, Kind, Reply
from tests.telegram.conftest import BOT_USERNAME, Running, StartBot, StubEngine, has_flow


def texts_of(messages: list) -> list[str]:  # type: ignore[type-arg]
    return [m.plain or "" for m in messages]


async def settle(chat, timeout: float = 5.0) -> list:  # type: ignore[no-untyped-def,type-arg]
    """At least one new bot message, then everything sent until the bot is quiet."""
    first = await chat.wait_for_message(timeout=timeout)
    return [first, *await chat.wait_until_idle(timeout=timeout)]


# ------------------------------------------------------------------ start-up, commands, links


async def test_command_menu_set_at_startup_in_french(bot: Running) -> None:
    commands = bot.server.commands()
    assert [c["command"] for c in commands] == [name for name, _ in COMMANDS]
    assert {"start", "aide", "question", "orientation", "ami", "reprendre", "annuler"} <= {
        c["command"] for c in commands
    }
    assert all(c["description"] and c["description"][0].isupper() for c in commands)


async def test_start_welcomes_by_first_name_with_menu_buttons(bot: Running) -> None:
    user = bot.server.user(1001, first_name="Claire")
    await user.send_command("start")
    [welcome] = await settle(user)
    assert welcome.plain and welcome.plain.startswith("Bonjour Claire !")
    assert "❓ Poser une question" in welcome.buttons
    assert welcome.parse_mode == "HTML"
    assert welcome.link_preview_disabled


async def test_deep_link_start_ami_opens_the_form(bot: Running) -> None:
    user = bot.server.user(1002)
    await user.send_command("start", "ami")
    messages = await settle(user)
    assert messages
    text = "\n".join(texts_of(messages))
    assert not text.startswith("Bonjour")  # not the plain welcome
    if not has_flow(bot.app, "ami_bretagne"):
        assert "pas encore disponible" in text
    else:
        assert "AMI" in text or "CPTS" in text


# ------------------------------------------------------------------ buttons


async def test_button_press_answers_query_and_marks_the_choice(bot: Running) -> None:
    user = bot.server.user(1003)
    await user.send_command("start")
    [menu] = await settle(user)
    query = await user.press("❓ Poser une question")
    answer = await user.wait_for_callback_answer(query)
    assert answer == {}  # answered, no alert
    replies = await settle(user)
    assert "Écrivez votre question" in texts_of(replies)[0]
    pressed = user.message(menu.message_id)
    assert pressed.reply_markup is None or not pressed.buttons  # keyboard dropped
    assert pressed.plain and pressed.plain.endswith("✔ ❓ Poser une question")


async def test_stale_button_on_an_old_message_is_answered(bot: Running) -> None:
    if not has_flow(bot.app, "ami_bretagne"):
        pytest.skip("the AMI form (bot/engine/forms.py) is not there yet")
    user = bot.server.user(1004)
    await user.send_command("ami")
    [old] = await settle(user)
    await user.send_command("menu")  # leaves the form: its buttons are now stale
    await settle(user)
    query = await user.press_in(old.message_id, old.buttons[0])
    await user.wait_for_callback_answer(query)
    replies = await settle(user)
    assert "n'est plus actif" in texts_of(replies)[0]
    assert not user.message(old.message_id).buttons  # keyboard dropped…
    assert "✔" not in (user.message(old.message_id).plain or "")  # …without claiming a choice


async def test_every_callback_answered_even_when_the_turn_fails(start_bot: StartBot) -> None:
    def script(incoming: Incoming) -> list[Reply]:
        if incoming.kind == Kind.CHOICE:
            raise RuntimeError("boom")
        return [Reply("Choisissez", [[Button("A", "x:a")]])]

    running = await start_bot(engine=StubEngine(script))
    user = running.server.user(1005)
    await user.send_text("go")
    await settle(user)
    query = await user.press("A")
    await user.wait_for_callback_answer(query)
    replies = await settle(user)
    assert "Désolé, une erreur" in texts_of(replies)[-1]


async def test_objectives_toggles_edit_the_same_message(start_bot: StartBot) -> None:
    chosen: set[str] = set()

    def script(incoming: Incoming) -> list[Reply]:
        if incoming.kind == Kind.CHOICE and incoming.text.startswith("obj:"):
            chosen.symmetric_difference_update({incoming.text})
        rows = [
            [Button(("☑ " if f"obj:{i}" in chosen else "☐ ") + f"Objectif {i}", f"obj:{i}")]
            for i in (1, 2, 3)
        ]
        return [Reply("Objectifs attendus :", rows, edit_key="objectives")]

    running = await start_bot(engine=StubEngine(script))
    user = running.server.user(1006)
    await user.send_text("objectifs")
    [first] = await settle(user)
    await user.press("☐ Objectif 2")
    await user.wait_for_edit(first.message_id)
    await user.press("☐ Objectif 3")
    await user.wait_for_edit(first.message_id)
    assert await user.wait_until_idle() == []  # no new message: edited in place
    message = user.message(first.message_id)
    assert message.edited
    assert message.buttons == ["☐ Objectif 1", "☑ Objectif 2", "☑ Objectif 3"]
    assert "✔" not in (message.plain or "")


async def test_keyed_message_edited_only_while_the_user_looks_at_it(start_bot: StartBot) -> None:
    def script(incoming: Incoming) -> list[Reply]:
        return [Reply(f"Etat {incoming.text}", [[Button("B", "b")]], edit_key="k")]

    running = await start_bot(engine=StubEngine(script))
    user = running.server.user(1007)
    await user.send_text("1")
    [first] = await settle(user)
    await user.send_text("2")  # the user wrote since: a new message, not an edit above
    [second] = await settle(user)
    assert second.message_id != first.message_id and not user.message(first.message_id).edited
    await user.press_in(second.message_id, "B")  # pressed on the keyed message: edited
    await user.wait_for_edit(second.message_id)
    assert user.message(second.message_id).plain == "Etat b"
    running.frontend.edit_keys[(1007, "k")] = 99_999  # a message that no longer exists
    await running.frontend.send_replies(
        running.application, 1007, [Reply("Etat 3", edit_key="k")], pressed_id=99_999
    )
    [third] = await settle(user)
    assert third.plain == "Etat 3"  # the failed edit fell back to a new message


# ------------------------------------------------------------------ text rendering


async def test_user_html_is_escaped(bot: Running) -> None:
    user = bot.server.user(1008)
    await user.send_text("/x<script>alert(1)</script>&co")
    [reply] = await settle(user)
    assert "/x<script>alert(1)</script>&co" in (reply.plain or "")
    assert "&lt;script&gt;" in (reply.text or "")
    assert not [c for c in bot.server.calls() if c.error]


async def test_stub_echo_escapes_every_character(start_bot: StartBot) -> None:
    running = await start_bot(engine=StubEngine(lambda i: [Reply(f"Vous avez écrit : {i.text}")]))
    user = running.server.user(1009)
    nasty = "<b>gras</b> & <a href='x'>lien</a> &amp; 1 < 2 > 0"
    await user.send_text(nasty)
    [reply] = await settle(user)
    assert reply.plain == f"Vous avez écrit : {nasty}"
    assert reply.entities == []


async def test_long_answer_split_under_the_limit_with_buttons_last(start_bot: StartBot) -> None:
    paragraph = "Les CPTS & les ESP <coordonnent> les soins de proximité. " * 10
    long_text = "\n\n".join(f"{i}. {paragraph}" for i in range(11))
    assert 6000 <= len(long_text) <= 7000

    running = await start_bot(
        engine=StubEngine(lambda i: [Reply(long_text, [[Button("🏠 Menu", "menu:home")]])])
    )
    user = running.server.user(1010)
    await user.send_text("longue réponse")
    parts = await settle(user)
    assert len(parts) == 2
    assert all(utf16_len(p.plain or "") <= 4096 for p in parts)
    assert parts[0].buttons == [] and parts[1].buttons == ["🏠 Menu"]
    assert "\n\n".join(p.plain or "" for p in parts) == long_text  # cut between paragraphs


def test_split_text_boundaries() -> None:
    assert split_text("court") == ["court"]
    lines = "\n".join("ligne " + "x" * 90 for _ in range(100))
    parts = split_text(lines)
    assert all(utf16_len(p) <= 4096 for p in parts) and "\n".join(parts) == lines
    word = "&" * 5000  # escaping multiplies its length by five
    parts = split_text(word)
    assert "".join(parts) == word and all(len(p) * 5 <= 4096 for p in parts)
    emoji = "😀" * 3000  # two UTF-16 units each
    assert all(utf16_len(p) <= 4096 for p in split_text(emoji))


async def test_my_data_arrives_as_a_json_document_with_its_filename(start_bot: StartBot) -> None:
    running = await start_bot()
    user = running.server.user(1011)
    await user.send_command("mesdonnees")
    messages = await settle(user)
    readable, received = user.documents()
    assert readable.file_name == "mes-donnees.txt" and received.file_name == "mes-donnees.json"
    assert json.loads(received.data)["telegram_user_id"] == 1011
    assert "Voici toutes les données que je conserve sur vous" in texts_of(messages)[0]


# ------------------------------------------------------------------ everything Telegram can send

MEDIA = [
    ("photo", "les photos"),
    ("document", "les fichiers"),
    ("voice", "les messages vocaux"),
    ("video_note", "les messages vidéo"),
    ("sticker", "les autocollants"),
    ("location", "les positions"),
    ("poll", "les sondages"),
    ("audio", "les fichiers audio"),
    ("video", "les vidéos"),
    ("animation", "les GIF"),
    ("venue", "les lieux"),
    ("dice", "les dés"),
    ("story", "ce type de message"),
]


async def _send_media(user, kind: str) -> None:  # type: ignore[no-untyped-def]
    file = {"file_id": f"f-{kind}", "file_unique_id": f"u-{kind}"}
    raw = {
        "audio": {"audio": {**file, "duration": 3}},
        "video": {"video": {**file, "width": 1, "height": 1, "duration": 1}},
        "animation": {
            "animation": {**file, "width": 1, "height": 1, "duration": 1},
            "document": {**file},
        },
        "venue": {
            "venue": {
                "location": {"latitude": 48.1, "longitude": -1.6},
                "title": "MSP",
                "address": "Rennes",
            },
            "location": {"latitude": 48.1, "longitude": -1.6},
        },
        "dice": {"dice": {"emoji": "🎲", "value": 3}},
        "poll": {
            "poll": {
                "id": "p1",
                "question": "ESP ou CPTS ?",
                "options": [
                    {"text": t, "voter_count": 0, "persistent_id": t} for t in ("ESP", "CPTS")
                ],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,  # required by PTB 22.8 (Bot API 9.6)
                "members_only": False,  # required by PTB 22.8 (Bot API 10.0)
            }
        },
        "story": {"story": {"chat": user.chat, "id": 1}},
    }
    if kind == "photo":
        await user.send_photo(caption="ma carte")
    elif kind == "document":
        await user.send_document()
    elif kind == "voice":
        await user.send_voice()
    elif kind == "video_note":
        await user.send_video_note()
    elif kind == "sticker":
        await user.send_sticker()
    elif kind == "location":
        await user.send_location(48.11, -1.68)
    else:
        user._send(raw[kind])


async def test_each_media_kind_gets_a_polite_reply(bot: Running) -> None:
    for index, (kind, words) in enumerate(MEDIA):
        user = bot.server.user(2000 + index)
        await _send_media(user, kind)
        messages = await settle(user)
        assert messages, kind
        assert words in (messages[0].plain or ""), (kind, messages[0].plain)
    assert not [c for c in bot.server.calls() if c.error]


async def test_shared_contact_becomes_a_contact_event(start_bot: StartBot) -> None:
    engine = StubEngine(lambda i: [Reply(f"{i.kind}:{i.text}")])
    running = await start_bot(engine=engine)
    user = running.server.user(1012)
    await user.send_contact("+33 6 12 34 56 78", "Claire", user_id=1012)
    [reply] = await settle(user)
    assert reply.plain == "contact:+33 6 12 34 56 78"


async def test_group_messages_ignored_commands_get_an_invitation(bot: Running) -> None:
    server = bot.server
    user = server.user(1013)
    group = server.group(-100555, "MSP du Blavet")
    await group.add_bot(user)
    await group.send_text(user, "Bonjour à tous, réunion jeudi")
    await group.send_command(user, "aide", mention=False)
    await group.send_command(user, "start", "ami")
    await group.send_text(user, f"@{BOT_USERNAME} c'est quoi une CPTS ?")
    await group.send_command(user, "start", mention=False)
    await group.wait_for_messages(4)
    await group.wait_until_idle()
    messages = group.all_messages()
    assert len(messages) == 4  # the chatter is ignored, four invitations
    assert all("conversation privée" in (m.plain or "") for m in messages)
    assert f"https://t.me/{BOT_USERNAME}?start=ami" in (messages[1].plain or "")
    assert user.all_messages() == []  # nothing written privately unasked
    assert bot.app.store.get_conversation(1013) is None  # no turn ran


async def test_edited_message_is_explained_not_replayed(bot: Running) -> None:
    user = bot.server.user(1014)
    await user.send_text("Qu'est-ce qu'une ESP ?")
    await settle(user)
    turns = bot.frontend.turns
    await user.edit_last("Qu'est-ce qu'une CPTS ?")
    [reply] = await settle(user)
    assert "modifié un message" in (reply.plain or "")
    assert bot.frontend.turns == turns


async def test_forwarded_text_is_treated_as_a_question(bot: Running) -> None:
    user = bot.server.user(1015)
    await user.forward_text("Quelles sont les missions socles d'une CPTS ?", from_name="Dr X")
    messages = await settle(user)
    assert messages and "Source" in "\n".join(texts_of(messages))


async def test_block_then_unblock(bot: Running) -> None:
    server = bot.server
    user = server.user(1016)
    await user.send_command("start")
    await settle(user)
    await user.block()
    await server.wait_for(lambda: 1016 in bot.frontend.blocked)
    bot.app.store.add_notice(1016, "Votre réponse a été transmise à l'ARS.")
    await server.wait_for(lambda: not bot.app.store.pending_notices())  # skipped, not retried
    assert [m for m in user.all_messages() if "transmise" in (m.plain or "")] == []
    await user.unblock()
    await server.wait_for(lambda: 1016 not in bot.frontend.blocked)
    bot.app.store.add_notice(1016, "Votre e-mail a été accepté par le serveur de l'ARS.")
    message = await user.wait_for_message(timeout=5)
    assert "accepté" in (message.plain or "")


async def test_blocked_user_unknown_to_the_adapter_does_not_crash(bot: Running) -> None:
    server = bot.server
    user = server.user(1017)
    server._users[1017].blocked = True  # blocked before this instance saw the update
    bot.app.store.add_notice(1017, "Avis")
    await server.wait_for(lambda: not bot.app.store.pending_notices())
    await server.wait_for(lambda: 1017 in bot.frontend.blocked)
    server._users[1017].blocked = False
    await user.send_text("Bonjour")
    assert await settle(user)


async def test_notices_are_delivered(bot: Running) -> None:
    user = bot.server.user(1018)
    bot.app.store.add_notice(1018, "Votre réponse <AMI-2026-0001> & copie envoyées.")
    message = await user.wait_for_message(timeout=5)
    assert message.plain == "Votre réponse <AMI-2026-0001> & copie envoyées."
    assert not bot.app.store.pending_notices()


# ------------------------------------------------------------------ order and fairness


async def test_burst_of_20_processed_in_order(bot: Running) -> None:
    user = bot.server.user(1019)
    for i in range(20):
        await user.send_text(f"/x{i:02d}")  # unknown commands: the reply names each one
    messages = await user.wait_for_messages(20, timeout=15)
    names = [m.plain.split("/")[1].split(" ")[0].rstrip(".") for m in messages if m.plain]
    assert names == [f"x{i:02d}" for i in range(20)]


async def test_burst_ordered_even_when_turns_take_variable_time(start_bot: StartBot) -> None:
    import random

    rng = random.Random(7)

    def script(incoming: Incoming) -> list[Reply]:
        time.sleep(rng.random() * 0.02)
        return [Reply(f"réponse à {incoming.text}")]

    running = await start_bot(engine=StubEngine(script))
    users = [running.server.user(3000 + u) for u in range(3)]
    for i in range(20):
        for user in users:
            await user.send_text(f"m{i}")
    for user in users:
        messages = await user.wait_for_messages(20, timeout=15)
        assert texts_of(messages) == [f"réponse à m{i}" for i in range(20)]


async def test_flood_gets_one_notice_and_others_are_not_slowed(start_bot: StartBot) -> None:
    running = await start_bot(flood_messages=20, flood_seconds=2.0)
    server = running.server
    flooder = server.user(1020)
    other = server.user(1021)
    for i in range(50):
        await flooder.send_text(f"/f{i:02d}")
    await asyncio.sleep(0.3)
    sent_at = time.monotonic()
    await other.send_command("aide")
    [reply] = await other.wait_for_messages(1, timeout=5)
    assert time.monotonic() - sent_at < 1.0
    assert "Voici ce que je sais faire" in (reply.plain or "")
    messages = await flooder.wait_for_messages(51, timeout=20)
    flood = [m for m in messages if "beaucoup de messages" in (m.plain or "")]
    assert len(flood) == 1
    answers = [m.plain.split("/")[1].split(" ")[0].rstrip(".") for m in messages if m not in flood]
    assert answers == [f"f{i:02d}" for i in range(50)]  # late, but all and in order
    assert running.frontend.gate.flood_notices == 1


async def test_backlog_beyond_the_cap_is_dropped(start_bot: StartBot) -> None:
    running = await start_bot(flood_messages=5, flood_seconds=5.0)
    running.frontend.gate.max_backlog = 10
    user = running.server.user(1022)
    for i in range(40):
        await user.send_text(f"/d{i:02d}")
    await running.server.wait_for(lambda: running.frontend.gate.dropped > 0, timeout=5)
    running.frontend.gate.stop_throttling()
    messages = [await user.wait_for_message(), *await user.wait_until_idle(0.5, 10)]
    answers = [m.plain for m in messages if "commande" in (m.plain or "")]
    assert len(answers) < 40
    assert answers == sorted(answers)


# ------------------------------------------------------------------ typing, errors, shutdown


async def test_slow_turn_shows_typing_then_stop_finishes_it(start_bot: StartBot) -> None:
    running = await start_bot(engine=StubEngine(lambda i: [Reply("fini")], delay=1.0))
    user = running.server.user(1023)
    await user.send_text("lent")
    await running.server.wait_for(lambda: "typing" in user.chat_actions(), timeout=3)
    code = await running.shutdown()  # while the turn is running
    assert code == 0
    assert texts_of(user.read()) == ["fini"]


async def test_send_failure_apologises(start_bot: StartBot) -> None:
    def script(incoming: Incoming) -> list[Reply]:
        return [Reply("ok", [[Button("trop long", "x" * 80)], [Button("bon", "b")]])]

    running = await start_bot(engine=StubEngine(script))
    user = running.server.user(1024)
    await user.send_text("hello")
    [reply] = await settle(user)
    assert reply.buttons == ["bon"]  # the invalid button is dropped, the message still sent


@pytest.mark.parametrize("secret_ok", [True, False])
async def test_webhook_mode_with_secret_and_healthz(
    start_bot: StartBot, botapi, tg_settings, qa_service, secret_ok: bool
) -> None:  # type: ignore[no-untyped-def]
    import aiohttp

    from tests.telegram.conftest import serving_webhook

    async with serving_webhook(botapi, tg_settings, qa_service) as port:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200 and await response.text() == "ok"
            async with session.post(
                f"http://127.0.0.1:{port}/tg/hook",
                json={"update_id": 1},
                headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
            ) as response:
                assert response.status == 403
        if not secret_ok:
            botapi.webhook_secret_override("wrong")
        user = botapi.user(1025)
        await user.send_command("aide")
        if secret_ok:
            [reply] = await user.wait_for_messages(1, timeout=5)
            assert "Voici ce que je sais faire" in (reply.plain or "")
        else:
            await user.expect_no_message(0.5)
