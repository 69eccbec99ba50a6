"""First contact: the command menu, /start, a question."""

from __future__ import annotations

from tests.telegram.conftest import Running


async def test_menu_start_and_question(bot: Running) -> None:
    server = bot.server
    commands = server.commands()
    print(commands)
    user = server.user(1001, first_name="Claire")
    await user.send_command("start")
    msgs = await user.wait_until_idle()
    print([str(m) for m in msgs])
    await user.send_text("Quelles sont les missions socles d'une CPTS ?")
    msgs = await user.wait_until_idle()
    print([str(m) for m in msgs])
    assert msgs
