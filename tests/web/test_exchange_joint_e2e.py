"""A joint « temps d'échange », end to end: the back office in headless Chromium, the real bot
(`python -m bot run`) against the Bot API emulator, e-mails caught by aiosmtpd, one SQLite file.

Three responses on the Lannion territory: two respondents agreed to be put in touch, the third
answered before the question existed. The agent invites the two to one meeting (the third is
shown, not offered) → both accept it in Telegram, neither told who the other is → each gets
their own .ics, and the agent one per acceptance → the page shows who takes part → one cancels
from Telegram: a METHOD:CANCEL with the same UID and SEQUENCE + 1 on both sides.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from bot.storage.store import Store
from tests.conftest import FakeClock, make_settings
from tests.mail.factories import submit
from tests.support.botapi import BotApiServer
from tests.telegram import conftest as telegram_conftest
from tests.telegram import test_e2e
from tests.telegram.test_e2e import Sink, bot_process
from tests.web import test_exchange_e2e as exchange_e2e
from tests.web.browser import chromium
from tests.web.conftest import PASSWORD, SECRETARIAT, add_accounts, start_server
from tests.web.test_browser import wait_for
from tests.web.test_exchange_e2e import ics_of, mails_to, until, wait_messages

pytestmark = pytest.mark.slow

ARS = "secretariat-ars@example.org"
VISIO = "https://webconf.numerique.gouv.fr/cpts-tregor"
HOST, GUEST, OLDER = 5101, 5102, 5103
GUEST_REFERENT = {
    "name": "Morgane Le Du",
    "function": "coordinatrice",
    "email": "morgane.ledu@example.org",
    "phone": "+33611223355",
    "phone_display": "06 11 22 33 55",
}


# the SMTP sink and Bot API emulator fixtures of the Telegram end-to-end tests
smtp = test_e2e.smtp
botapi = telegram_conftest.botapi


def event_of(ics: bytes, method: str) -> Any:
    """The .ics's one event, of the joint meeting's slot."""
    event = exchange_e2e.event_of(ics, method)
    assert event.decoded("dtstart") == datetime(2027, 3, 1, 9, 0, tzinfo=UTC)  # 10:00 in Paris
    return event


async def test_two_neighbours_who_agreed_share_a_meeting_and_one_cancels_it_from_telegram(
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
        host, _ = submit(store, settings, user_id=HOST, consent_contact=True)
        guest, _ = submit(
            store, settings, user_id=GUEST, consent_contact=True, referents=[GUEST_REFERENT]
        )
        older, _ = submit(store, settings, user_id=OLDER)  # before the consent question
        web = start_server(settings, store, FakeClock())
        users = {uid: botapi.user(uid, first_name=f"Pro {uid}") for uid in (HOST, GUEST, OLDER)}
        try:
            for user in users.values():  # « votre réponse a bien été transmise »
                await wait_messages(user)
                user.read()

            def invite() -> None:
                with chromium(tmp_path / "profile", tmp_path / "downloads") as driver:
                    driver.get(web.url + f"/reponses/{host.id}")
                    driver.find_element(By.ID, "email").send_keys(SECRETARIAT)
                    driver.find_element(By.ID, "password").send_keys(PASSWORD)
                    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
                    wait_for(lambda: driver.title.startswith(f"Réponse {host.reference}"))
                    offered = driver.find_element(By.ID, "invitations-communes")
                    assert offered.find_elements(By.ID, f"inviter-{guest.id}")
                    assert not offered.find_elements(By.ID, f"inviter-{older.id}")
                    assert (
                        f"{older.reference} — Lannion-Trégor Communauté : ne peut pas être "
                        "invité, n'a pas accepté la mise en relation" in offered.text
                    )
                    # one slot: the first suggested row, set explicitly; the others emptied
                    driver.execute_script(
                        "for (const i of [2, 3, 4, 5]) {"
                        " document.getElementById('date-' + i).value = '';"
                        " document.getElementById('heure-' + i).value = ''; }"
                        "document.getElementById('date-1').value = '2027-03-01';"
                        "document.getElementById('heure-1').value = '10:00';"
                    )
                    driver.find_element(By.ID, "lieu-1").send_keys(VISIO)
                    driver.find_element(By.CSS_SELECTOR, f"label[for=inviter-{guest.id}]").click()
                    assert driver.find_element(By.ID, f"inviter-{guest.id}").is_selected()
                    driver.find_element(
                        By.CSS_SELECTOR, "#form-creneaux button[type=submit]"
                    ).click()
                    wait_for(lambda: "commun proposé à 2 répondants" in driver.page_source)
                    [meeting] = driver.find_elements(By.CSS_SELECTOR, ".bo-meeting[data-joint]")
                    assert "temps d'échange commun" in meeting.text.casefold()
                    rows = meeting.find_elements(By.CSS_SELECTOR, ".bo-participants li")
                    assert [r.get_attribute("data-status") for r in rows] == ["proposed"] * 2
                    assert all(
                        r.text.casefold().endswith("invitation envoyée, sans réponse") for r in rows
                    )

            await asyncio.to_thread(invite)

            # each is invited without being told who else is; the older response is not
            invitations: dict[int, Any] = {}
            for uid, sub, other in ((HOST, host, guest), (GUEST, guest, host)):
                user = users[uid]
                text = await wait_messages(user)
                assert "un temps d'échange commun avec d'autres porteurs de projets" in text
                assert "lundi 1 mars 2027, 10 h 00 – 11 h 00 — en visioconférence" in text
                assert other.reference not in text and "Morgane" not in text
                assert "Paul Le Cam" not in text
                proposal = user.all_messages()[-1]
                assert proposal.buttons == [
                    "1. lun. 01/03 à 10:00",
                    "Je ne pourrai pas participer",
                    "↩️ Répondre à l'ARS",
                ]
                query = await user.press_in(proposal.message_id, "1. lun. 01/03 à 10:00")
                await user.wait_for_callback_answer(query)
                text = await wait_messages(user, 2)
                assert "Temps d'échange planifié : lundi 1 mars 2027, 10 h 00 – 11 h 00" in text
                [document] = user.documents()
                assert document.file_name == f"temps-echange-{sub.reference}.ics"
                event = event_of(document.data, "REQUEST")
                attendees = [str(a) for a in event["attendee"]]
                own = "mailto:morgane.ledu@example.org" if uid == GUEST else (
                    "mailto:paul.lecam@example.org"
                )  # fmt: skip
                assert attendees == [f"mailto:{ARS}", own]  # nobody else's address
                assert int(event["sequence"]) == 1 and str(event["url"]) == VISIO
                invitations[uid] = event
            assert str(invitations[HOST]["uid"]) != str(invitations[GUEST]["uid"])
            assert not [m for m in users[OLDER].all_messages() if "temps d" in (m.plain or "")]

            # the agent gets each acceptance with that respondent's invitation
            subject = "Temps d'échange commun : participation confirmée"
            await until(lambda: len(mails_to(sink, ARS, subject)) == 2, bot.output)
            uids = sorted(
                str(event_of(ics_of(m), "REQUEST")["uid"]) for m in mails_to(sink, ARS, subject)
            )
            assert uids == sorted(str(e["uid"]) for e in invitations.values())

            def who_takes_part() -> None:
                with chromium(tmp_path / "profile2", tmp_path / "downloads") as driver:
                    driver.get(web.url + f"/reponses/{host.id}")
                    driver.find_element(By.ID, "email").send_keys(SECRETARIAT)
                    driver.find_element(By.ID, "password").send_keys(PASSWORD)
                    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
                    wait_for(lambda: driver.title.startswith(f"Réponse {host.reference}"))
                    rows = driver.find_elements(By.CSS_SELECTOR, ".bo-participants li")
                    assert [
                        (r.get_attribute("data-reference"), r.get_attribute("data-status"))
                        for r in rows
                    ] == [(host.reference, "scheduled"), (guest.reference, "scheduled")]
                    assert all(r.text.casefold().endswith("participe") for r in rows)

            await asyncio.to_thread(who_takes_part)

            # the guest cancels from Telegram: a CANCEL for their calendar and the agent's
            guest_user = users[GUEST]
            query = await guest_user.press("Annuler ce temps d'échange")
            await guest_user.wait_for_callback_answer(query)
            text = await wait_messages(guest_user, 2)
            assert "Votre participation au temps d'échange commun du lundi 1 mars 2027" in text
            cancelled = guest_user.documents()[-1]
            assert cancelled.file_name == f"annulation-{guest.reference}.ics"
            event = event_of(cancelled.data, "CANCEL")
            assert str(event["uid"]) == str(invitations[GUEST]["uid"])
            assert int(event["sequence"]) == int(invitations[GUEST]["sequence"]) + 1
            assert str(event["status"]) == "CANCELLED"
            subject = "Participation au temps d'échange commun annulée"
            await until(lambda: mails_to(sink, ARS, subject), bot.output)
            [mail] = mails_to(sink, ARS, subject)
            agent_event = event_of(ics_of(mail), "CANCEL")
            assert str(agent_event["uid"]) == str(event["uid"])
            assert int(agent_event["sequence"]) == int(event["sequence"])
            page = web.client()
            page.login(SECRETARIAT)
            html = page.get(f"/reponses/{host.id}").text
            assert "Participation annulée" in html and "Participe</span>" in html
            assert await bot.terminate() == 0
            assert "Traceback" not in bot.output(), bot.output()
        finally:
            web.stop()
            store.engine.dispose()
