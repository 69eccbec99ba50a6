"""At LOG_LEVEL=DEBUG, a whole AMI through the real bot process leaves no answer in the log."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import ROOT
from tests.support.botapi import BotApiServer
from tests.telegram import test_e2e
from tests.telegram.test_e2e import BotProcess, Sink, joined, press, say

smtp = test_e2e.smtp  # the aiosmtpd sink fixture

pytestmark = pytest.mark.slow

SHARED = Path("/work/shared/eval/ami_personas.yaml")
LOCAL = ROOT / "tests" / "forms" / "personas.yaml"
ARS = "ars-test@example.org"


def persona() -> dict[str, Any]:
    """The shared evaluation persona with two referents (a local copy when ../shared is absent)."""
    path = SHARED if SHARED.exists() else LOCAL
    with path.open(encoding="utf-8") as fh:
        people = yaml.safe_load(fh)["personas"]
    return next(p for p in people if p["id"] == "redon-structures")


def personal_values(p: dict[str, Any]) -> list[str]:
    values = [p["context"], p["territory"]]
    for actor in p["actors"]:
        values += [actor["name"], actor["profession"]]
    for referent in p["referents"]:
        values += [referent["name"], referent["function"], referent["email"], referent["phone"]]
        values += [referent["phone_e164"]]
    # every distinctive word of the free texts too (a partial quote is still a leak)
    words = {w for w in re.findall(r"[\wÀ-ÿ'-]{9,}", p["context"])}
    return values + sorted(words)


@pytest.fixture
async def debug_bot(
    botapi: BotApiServer, smtp: tuple[Sink, int], tmp_path: Path
) -> AsyncIterator[BotProcess]:
    async with test_e2e.bot_process(
        botapi, smtp, tmp_path, TELEGRAM_RATE_LIMIT="false", LOG_LEVEL="DEBUG"
    ) as proc:
        yield proc


async def test_a_full_ami_at_debug_leaves_none_of_the_personas_values_in_the_log(
    botapi: BotApiServer, debug_bot: BotProcess, smtp: tuple[Sink, int]
) -> None:
    p = persona()
    user = botapi.user(7373, first_name="Julie")
    await say(user, "/ami")
    await press(user, "J'accepte")
    for i, actor in enumerate(p["actors"]):
        if i:
            await press(user, "Ajouter")
        await say(user, actor["name"])
        await say(user, actor["profession"])
        await say(user, actor["commune"])
        await press(user, {"autre": "Autre", "aucun": "Aucun"}.get(actor["practice"], "MSP"))
        if actor["practice"] == "autre":
            await say(user, "établissement de santé")
    await press(user, "Non, continuer")
    for i, referent in enumerate(p["referents"]):
        if i:
            await press(user, "Ajouter un référent")
        await say(user, referent["name"])
        await say(user, referent["function"])
        await say(user, referent["email"])
        await say(user, referent["phone"])
    await press(user, "Non, continuer")
    await press(user, "Initiative engagée", edit=True)
    await press(user, "Valider")
    await say(user, p["context"])
    await say(user, p["territory"])
    await press(user, "Oui, c'est bien cela")  # what was recognised of the territory, confirmed
    review = joined(await say(user, "avant fin juin"))
    assert "Récapitulatif" in review
    await press(user, "Recevoir une copie")  # a code e-mailed to the referent: not in the log
    done = joined(await press(user, "Envoyer"))
    assert "AMI-" in done
    sink, _ = smtp
    await botapi.wait_for(lambda: len(sink.messages) >= 2, timeout=20, describe=debug_bot.output)
    await user.wait_for_message(timeout=20)  # the "accepted" notice
    assert await debug_bot.terminate() == 0

    log = debug_bot.log.read_text(errors="replace")
    assert " DEBUG bot" in log  # DEBUG really was on
    leaked = [value for value in personal_values(p) if value and value in log]
    assert leaked == [], leaked
    for code in re.findall(r"\b\d{6}\b", sink.messages[0][1].as_string()):
        assert code not in log
