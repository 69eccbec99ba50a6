"""Talking with respondents, end to end: the back office in headless Chromium, the real bot
(`python -m bot run`, started by `tests.telegram.test_e2e.bot_process`) against the Bot API
emulator, e-mails caught by aiosmtpd, one SQLite file.

An AMI response → the secretariat assigns an agent and takes the response in charge (the
respondent is told) → proposes three slots → the bot restarts → the respondent picks the second
→ both get the invitation (.ics in Telegram, in the agent's e-mail), read back with `icalendar`
→ « Échange planifié » on both sides. Then a message written in the back office, answered
from Telegram, reaches the thread and the agent's mailbox. Last, staff « Reporter » the meeting:
the CANCEL (same UID, SEQUENCE + 1) reaches Telegram and the agent, the new slot is picked.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from bot.storage.models import RespondentMessage
from bot.storage.store import Store
from tests.conftest import FakeClock, make_settings
from tests.mail.factories import submit
from tests.support.botapi import BotApiServer, UserHandle
from tests.telegram import conftest as telegram_conftest
from tests.telegram import test_e2e
from tests.telegram.test_e2e import Sink, bot_process
from tests.web.browser import chromium
from tests.web.conftest import DELEGATION_22, PASSWORD, SECRETARIAT, add_accounts, start_server
from tests.web.test_browser import wait_for

pytestmark = pytest.mark.slow

ARS = "secretariat-ars@example.org"
USER = 4242
VISIO = "https://webconf.numerique.gouv.fr/ami-cpts-lannion"
PLACES = ["ARS Bretagne, 6 place des Colombes, Rennes", VISIO, "Mairie de Lannion"]


# the SMTP sink and Bot API emulator fixtures of the Telegram end-to-end tests
smtp = test_e2e.smtp
botapi = telegram_conftest.botapi


def mails_to(sink: Sink, address: str, subject: str) -> list[Message]:
    return [
        m
        for rcpt, m in sink.messages
        if address in rcpt and subject in str(make_header(decode_header(str(m["Subject"]))))
    ]


def ics_of(mail: Message) -> bytes:
    for part in mail.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    raise AssertionError("no text/calendar part in the e-mail")


def check_invitation(ics: bytes, reference: str) -> None:
    """The second slot: 1 March 2027, 14:00–15:00 in Paris, by video, both people invited."""
    calendar = Calendar.from_ical(ics)
    assert str(calendar["method"]) == "REQUEST"
    [event] = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == datetime(2027, 3, 1, 13, 0, tzinfo=UTC)
    assert event.decoded("dtend") == datetime(2027, 3, 1, 14, 0, tzinfo=UTC)
    assert str(event["summary"]) == f"Temps d'échange ARS Bretagne — AMI CPTS ({reference})"
    assert str(event["url"]) == VISIO
    assert str(event["location"]) == "Visioconférence"
    attendees = event["attendee"]
    attendees = attendees if isinstance(attendees, list) else [attendees]
    assert sorted(str(a) for a in attendees) == [
        f"mailto:{DELEGATION_22}",
        "mailto:paul.lecam@example.org",
    ]
    assert str(event["organizer"]) == f"mailto:{DELEGATION_22}"


def event_of(ics: bytes, method: str = "REQUEST") -> Any:
    calendar = Calendar.from_ical(ics)
    assert str(calendar["method"]) == method
    [event] = calendar.walk("VEVENT")
    return event


async def until(predicate: Any, describe: Any, timeout: float = 20) -> None:
    """Poll (e-mails arrive outside the emulator, whose waits wake on its own events)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"waited in vain: {describe()}")
        await asyncio.sleep(0.1)


async def wait_messages(user: UserHandle, count: int = 1, timeout: float = 20) -> str:
    messages = await user.wait_for_messages(count, timeout=timeout)
    return "\n".join(m.plain or "" for m in messages)


async def test_slots_proposed_in_the_back_office_are_picked_in_telegram_across_a_restart(
    botapi: BotApiServer, smtp: tuple[Sink, int], tmp_path: Path
) -> None:
    sink, _port = smtp
    database_url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    async with bot_process(botapi, smtp, tmp_path, ARS_MAILBOX=ARS) as bot:
        settings = make_settings(
            database_url, tmp_path, ars_mailbox=ARS, web_cookie_secure=False, web_secret_key="k"
        )
        store = Store.from_url(database_url)  # the real clock: the bot process uses it too
        add_accounts(store)
        sub, _ = submit(store, settings, user_id=USER)  # wished: « avant fin février » 2027
        web = start_server(settings, store, FakeClock())
        user = botapi.user(USER, first_name="Paul")
        try:
            await until(lambda: mails_to(sink, ARS, sub.reference), bot.output)
            await wait_messages(user)  # « votre réponse a bien été transmise »
            user.read()

            def take_in_charge_and_propose() -> None:
                with chromium(tmp_path / "profile", tmp_path / "downloads") as driver:
                    driver.get(web.url + f"/reponses/{sub.id}")
                    driver.find_element(By.ID, "email").send_keys(SECRETARIAT)
                    driver.find_element(By.ID, "password").send_keys(PASSWORD)
                    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
                    wait_for(lambda: driver.title.startswith(f"Réponse {sub.reference}"))
                    assert (
                        "avant fin février" in driver.find_element(By.ID, "echeance-souhaitee").text
                    )
                    Select(driver.find_element(By.ID, "status")).select_by_visible_text(
                        "Prise en charge"
                    )
                    Select(driver.find_element(By.ID, "agent")).select_by_visible_text(
                        DELEGATION_22
                    )
                    driver.find_element(By.CSS_SELECTOR, "#form-suivi button[type=submit]").click()
                    wait_for(lambda: "Enregistré : statut : Prise en charge" in driver.page_source)
                    # the three suggested slots follow the wished date (Sunday 28 February 2027)
                    dates = [
                        driver.find_element(By.ID, f"date-{i}").get_attribute("value")
                        for i in (1, 2, 3)
                    ]
                    hours = [
                        driver.find_element(By.ID, f"heure-{i}").get_attribute("value")
                        for i in (1, 2, 3)
                    ]
                    assert dates == ["2027-03-01", "2027-03-01", "2027-03-02"]
                    assert hours == ["10:00", "14:00", "10:00"]
                    for i, place in enumerate(PLACES, start=1):
                        driver.find_element(By.ID, f"lieu-{i}").send_keys(place)
                    driver.find_element(
                        By.CSS_SELECTOR, "#form-creneaux button[type=submit]"
                    ).click()
                    wait_for(lambda: "3 créneaux proposés" in driver.page_source)
                    meetings = driver.find_element(By.ID, "liste-rendez-vous").text
                    assert "Créneaux proposés, en attente de choix" in meetings

            await asyncio.to_thread(take_in_charge_and_propose)

            # the respondent is told the response is taken in charge, then gets the slots
            text = await wait_messages(user, 2)
            assert "est prise en charge par l'ARS Bretagne" in text
            assert "lundi 1 mars 2027, 14 h 00 – 15 h 00 — en visioconférence" in text
            proposal = user.all_messages()[-1]
            assert proposal.buttons[:3] == [
                "1. lun. 01/03 à 10:00",
                "2. lun. 01/03 à 14:00",
                "3. mar. 02/03 à 10:00",
            ]

            # the bot restarts between the proposal and the choice
            assert await bot.terminate() == 0
            await bot.start(botapi)
            user.read()
            query = await user.press_in(proposal.message_id, "2. lun. 01/03 à 14:00")
            await user.wait_for_callback_answer(query)
            text = await wait_messages(user, 2)
            assert "Temps d'échange planifié : lundi 1 mars 2027, 14 h 00 – 15 h 00" in text
            [document] = user.documents()
            assert document.file_name == f"temps-echange-{sub.reference}.ics"
            check_invitation(document.data, sub.reference)

            # the agent's e-mail carries the same invitation
            await until(
                lambda: mails_to(sink, DELEGATION_22, "Temps d'échange confirmé"), bot.output
            )
            [mail] = mails_to(sink, DELEGATION_22, "Temps d'échange confirmé")
            check_invitation(ics_of(mail), sub.reference)

            # a message from the back office, answered in Telegram
            def see_planned_and_write() -> None:
                with chromium(tmp_path / "profile2", tmp_path / "downloads") as driver:
                    driver.get(web.url + f"/reponses/{sub.id}")
                    driver.find_element(By.ID, "email").send_keys(DELEGATION_22)
                    driver.find_element(By.ID, "password").send_keys(PASSWORD)
                    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
                    wait_for(lambda: driver.title.startswith(f"Réponse {sub.reference}"))
                    status = driver.find_element(By.ID, "statut-actuel").get_attribute(
                        "textContent"
                    )
                    assert status == "Échange planifié"
                    assert "(choisi)" in driver.find_element(By.ID, "liste-rendez-vous").text
                    driver.find_element(By.ID, "message-text").send_keys(
                        "Pourriez-vous venir avec la liste des professionnels intéressés ?"
                    )
                    driver.find_element(
                        By.CSS_SELECTOR, "#form-message button[type=submit]"
                    ).click()
                    wait_for(lambda: "Message enregistré" in driver.page_source)

            await asyncio.to_thread(see_planned_and_write)
            text = await wait_messages(user)
            assert "liste des professionnels intéressés" in text
            await user.press("↩️ Répondre à l'ARS")
            assert "Écrivez votre réponse" in await wait_messages(user)
            await user.send_text("Oui, nous serons quatre, dont deux infirmières.")
            assert "bien été transmis à l'ARS Bretagne" in await wait_messages(user)
            await until(lambda: mails_to(sink, DELEGATION_22, "Message du répondant"), bot.output)
            with store.unit() as session:
                from sqlmodel import select

                thread = list(
                    session.exec(select(RespondentMessage).order_by(RespondentMessage.id))
                )  # type: ignore[arg-type]
            assert [(m.direction, m.kind, m.state) for m in thread] == [
                ("out", "status", "delivered"),
                ("out", "proposal", "delivered"),
                ("in", "choice", "delivered"),
                ("out", "message", "delivered"),
                ("in", "message", "delivered"),
            ]
            page = web.client()
            page.login(SECRETARIAT)
            html = page.get(f"/reponses/{sub.id}").text
            assert "Oui, nous serons quatre, dont deux infirmières." in html
            assert "Remis" in html

            # staff move the planned meeting (« Reporter »): the old slot is cancelled on both sides
            # with a CANCEL of the same UID, SEQUENCE + 1, and the new slots reach Telegram
            [confirmed] = mails_to(sink, DELEGATION_22, "Temps d'échange confirmé")
            request_event = event_of(ics_of(confirmed))
            with store.unit() as session:
                from sqlmodel import select

                from bot.storage.models import Meeting

                planned = session.exec(select(Meeting).where(Meeting.status == "scheduled")).one()
            csrf = page.csrf_of(f"/reponses/{sub.id}")
            new_slots = {
                "date-1": "2027-03-08",
                "heure-1": "14:00",
                "duree-1": "60",
                "lieu-1": VISIO,
            }
            moved = page.post(
                f"/reponses/{sub.id}/rendez-vous/{planned.id}/reporter",
                data={"csrf_token": csrf, **new_slots},
            )
            assert moved.is_redirect
            text = await wait_messages(user, 3)
            assert "reporte le temps d'échange du lundi 1 mars 2027, 14 h 00" in text
            assert "est déplacé" in text and "lundi 8 mars 2027, 14 h 00 – 15 h 00" in text
            cancelled = user.documents()[-1]
            assert cancelled.file_name == "annulation.ics"
            event = event_of(cancelled.data, "CANCEL")
            assert str(event["uid"]) == str(request_event["uid"])
            assert int(event["sequence"]) == int(request_event["sequence"]) + 1
            assert event.decoded("dtstart") == datetime(2027, 3, 1, 13, 0, tzinfo=UTC)
            await until(
                lambda: mails_to(sink, DELEGATION_22, "Temps d'échange reporté"), bot.output
            )
            [mail] = mails_to(sink, DELEGATION_22, "Temps d'échange reporté")
            agent_event = event_of(ics_of(mail), "CANCEL")
            assert str(agent_event["uid"]) == str(event["uid"])
            assert int(agent_event["sequence"]) == int(event["sequence"])
            query = await user.press_in(user.all_messages()[-1].message_id, "1. lun. 08/03 à 14:00")
            await user.wait_for_callback_answer(query)
            assert "Temps d'échange planifié : lundi 8 mars 2027" in await wait_messages(user, 2)
            assert event_of(user.documents()[-1].data).decoded("dtstart") == datetime(
                2027, 3, 8, 13, 0, tzinfo=UTC
            )
            assert await bot.terminate() == 0
            assert "Traceback" not in bot.output(), bot.output()
        finally:
            web.stop()
            store.engine.dispose()
