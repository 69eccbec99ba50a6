"""Nothing sent where it should not go: proven addresses for copies, limits, alerts, Message-IDs."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import build_app
from bot.config import Settings
from bot.storage.models import OutboxStatus, Submission
from bot.worker import OutboxWorker
from tests.conftest import STAFF_ID, Chat, FakeClock, make_settings
from tests.forms.walk import fill_to_review
from tests.mail.conftest import SmtpServer
from tests.mail.factories import submit

ARS = "ars-bretagne-secretariat-daspf@ars.sante.fr"
PERSONAS = Path(__file__).resolve().parents[1] / "forms" / "personas.yaml"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def persona() -> dict[str, Any]:
    with PERSONAS.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)["personas"][0]


def smtp_settings(database_url: str, tmp_path: Path, server: SmtpServer, **kw: Any) -> Settings:
    return make_settings(
        database_url,
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_security="none",
        smtp_timeout=5.0,
        **kw,
    )


@pytest.fixture
def mail_app(
    database_url: str, tmp_path: Path, smtp_server: SmtpServer, clock: FakeClock, qa_service
):  # type: ignore[no-untyped-def]
    settings = smtp_settings(database_url, tmp_path, smtp_server)
    app = build_app(settings, qa=qa_service, clock=clock, create_schema=True)
    yield app
    app.store.engine.dispose()


def drain(app: Any, clock: FakeClock) -> int:
    worker = OutboxWorker(app.store, app.settings, clock=clock, rng=random.Random(3))
    return asyncio.run(worker.run_once())


def code_in(server: SmtpServer, address: str) -> str:
    body = server.handler.to(address)[-1].message.get_body(("plain",)).get_content()
    match = re.search(r"\b(\d{6})\b", body)
    assert match, body
    return match.group(1)


def test_copy_goes_only_after_the_code_emailed_to_the_address_is_typed_back(
    mail_app: Any, smtp_server: SmtpServer, clock: FakeClock, persona: dict[str, Any]
) -> None:
    chat = Chat(mail_app, user_id=501)
    fill_to_review(chat, persona)
    assert "paul.lecam@example.org" in chat.press("Recevoir une copie")
    assert drain(mail_app, clock) == 1  # the code, and nothing else
    [code_mail] = smtp_server.handler.to("paul.lecam@example.org")
    assert "AMI" not in code_mail.message["Subject"] or "Code" in code_mail.message["Subject"]
    assert "Lannion" not in code_mail.raw.decode()  # the code e-mail carries none of the answers
    assert "Adresse vérifiée" in chat.say(code_in(smtp_server, "paul.lecam@example.org"))
    assert "Une copie part à paul.lecam@example.org" in chat.press("Envoyer")
    assert drain(mail_app, clock) == 2
    copies = smtp_server.handler.to("paul.lecam@example.org")
    assert len(copies) == 2 and copies[-1].message["Subject"].startswith("Copie de votre réponse")
    assert len(smtp_server.handler.to(ARS)) == 1
    # the code is not kept once its e-mail has gone
    assert all(j.payload == {} for j in mail_app.store.jobs() if j.kind == "verify")


def test_copy_to_unverified_address_sends_nothing_there(
    mail_app: Any, smtp_server: SmtpServer, clock: FakeClock, persona: dict[str, Any]
) -> None:
    chat = Chat(mail_app, user_id=502)
    fill_to_review(chat, persona)
    chat.press("Recevoir une copie")
    drain(mail_app, clock)
    chat.say(code_in(smtp_server, "paul.lecam@example.org"))
    # the referent's address is changed after it was verified: the new one is not proven
    chat.press("Référent 1")
    chat.press("E-mail")
    chat.say("quelquun.dautre@example.com")
    done = chat.press("Envoyer")
    assert "Aucune copie n'est envoyée" in done
    drain(mail_app, clock)
    assert smtp_server.handler.to("quelquun.dautre@example.com") == []
    assert [j.kind for j in mail_app.store.jobs()] == ["verify", "ars"]


def test_wrong_codes_run_out_and_an_expired_code_is_refused(
    mail_app: Any, smtp_server: SmtpServer, clock: FakeClock, persona: dict[str, Any]
) -> None:
    chat = Chat(mail_app, user_id=503)
    fill_to_review(chat, persona)
    chat.press("Recevoir une copie")
    drain(mail_app, clock)
    good = code_in(smtp_server, "paul.lecam@example.org")
    wrong = f"{(int(good) + 1) % 10**6:06d}"
    for left in (4, 3, 2, 1):
        assert f"Il vous reste {left} essai" in chat.say(wrong)
    assert "Trop d'essais" in chat.say(wrong)
    assert "Adresse vérifiée" not in chat.say(good)  # too late: the code is spent

    chat.press("Recevoir une copie")
    drain(mail_app, clock)
    clock.advance(minutes=16)
    assert "a expiré" in chat.say(code_in(smtp_server, "paul.lecam@example.org"))
    chat.press("Envoyer")
    assert [j.kind for j in mail_app.store.jobs()].count("copy") == 0


def test_ten_submissions_in_seven_seconds_reach_the_ars_only_up_to_the_daily_limit(
    mail_app: Any, smtp_server: SmtpServer, clock: FakeClock, persona: dict[str, Any]
) -> None:
    chat = Chat(mail_app, user_id=504)
    refused = 0
    fill_to_review(chat, persona)
    for _ in range(10):
        done = chat.press("Envoyer")
        refused += "c'est la limite" in done
        if "c'est la limite" not in done:
            fill_to_review(chat, persona)
        clock.advance(seconds=0.7)
    assert mail_app.store.count(Submission) == 3 == mail_app.settings.submissions_per_day
    assert refused == 7
    drain(mail_app, clock)
    assert len(smtp_server.handler.to(ARS)) == 3
    clock.advance(hours=24)
    chat.press("Envoyer")  # the kept draft goes once the window has passed
    assert mail_app.store.count(Submission) == 4


def test_codes_to_one_address_are_limited_whoever_asks(
    mail_app: Any, smtp_server: SmtpServer, clock: FakeClock, persona: dict[str, Any]
) -> None:
    limit = mail_app.settings.copy_codes_per_day
    texts = []
    for user_id in range(600, 600 + limit + 2):
        chat = Chat(mail_app, user_id=user_id)
        fill_to_review(chat, persona)
        texts.append(chat.press("Recevoir une copie"))
    assert sum("Trop de codes" in t for t in texts) == 2
    drain(mail_app, clock)
    assert len(smtp_server.handler.to("paul.lecam@example.org")) == limit


def test_copies_to_one_address_are_limited_per_day(
    database_url: str, tmp_path: Path, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    settings = smtp_settings(database_url, tmp_path, smtp_server, copies_per_day=2)
    from bot.storage.store import Store

    store = Store.from_url(settings.database_url, clock)
    store.create_all()
    kinds = [[j.kind for j in submit(store, settings, user_id=700 + i)[1]] for i in range(3)]
    assert kinds == [["ars", "copy"], ["ars", "copy"], ["ars"]]
    store.engine.dispose()


def test_two_databases_give_different_message_ids_for_their_first_response(
    tmp_path: Path, clock: FakeClock
) -> None:
    from bot.storage.store import Store

    ids = []
    for name in ("a", "b"):
        settings = make_settings(f"sqlite:///{tmp_path / name}.sqlite3", tmp_path / name)
        store = Store.from_url(settings.database_url, clock)
        store.create_all()
        sub, jobs = submit(store, settings, copy_to_referent=False)
        assert sub.reference == "AMI-2026-0001"
        ids.append(jobs[0].message_id)
        store.engine.dispose()
    assert ids[0] != ids[1]
    assert all(i.endswith("@example.org>") and "AMI-2026-0001" in i for i in ids)


async def test_retries_keep_the_message_id(
    database_url: str, tmp_path: Path, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    from bot.storage.store import Store

    settings = smtp_settings(database_url, tmp_path, smtp_server)
    store = Store.from_url(settings.database_url, clock)
    store.create_all()
    _sub, [job] = submit(store, settings, copy_to_referent=False)
    smtp_server.handler.mode = "451"
    worker = OutboxWorker(store, settings, clock=clock, rng=random.Random(1))
    await worker.run_once()
    smtp_server.handler.mode = None
    clock.advance(minutes=5)
    await worker.run_once()
    [received] = smtp_server.handler.to(ARS)
    assert received.message["Message-ID"] == job.message_id == store.jobs()[0].message_id
    store.engine.dispose()


async def test_a_permanent_refusal_emails_the_alert_address_and_tells_staff(
    database_url: str, tmp_path: Path, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    from bot.storage.store import Store

    settings = smtp_settings(
        database_url, tmp_path, smtp_server, alert_email="exploitation@example.org"
    )
    store = Store.from_url(settings.database_url, clock)
    store.create_all()
    sub, _ = submit(store, settings, copy_to_referent=False)
    smtp_server.handler.refuse_rcpt = {ARS}
    worker = OutboxWorker(store, settings, clock=clock, rng=random.Random(1))
    await worker.run_once()
    await worker.run_once()  # the alert job queued by the failure
    [alert] = smtp_server.handler.to("exploitation@example.org")
    body = alert.message.get_body(("plain",)).get_content()
    assert sub.reference in body and "550" in body and "--resend" in body
    by_user = {n.user_id: n.text for n in store.pending_notices()}
    assert "alertées" in by_user[sub.user_id]
    assert sub.reference in by_user[STAFF_ID]
    assert [j.status for j in store.jobs()] == [OutboxStatus.FAILED, OutboxStatus.SENT]
    store.engine.dispose()


async def test_a_permanent_refusal_with_no_one_to_alert_tells_the_user_to_write(
    database_url: str, tmp_path: Path, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    from bot.storage.store import Store

    settings = smtp_settings(database_url, tmp_path, smtp_server, ars_staff_ids=[])
    store = Store.from_url(settings.database_url, clock)
    store.create_all()
    _sub, _ = submit(store, settings, copy_to_referent=False)
    smtp_server.handler.mode = "550"
    await OutboxWorker(store, settings, clock=clock, rng=random.Random(1)).run_once()
    [notice] = store.pending_notices()
    assert "personne n'a pu en être prévenu" in notice.text and "alertées" not in notice.text
    store.engine.dispose()


async def test_a_delayed_ars_email_is_told_to_staff_as_well_as_to_the_user(
    database_url: str, tmp_path: Path, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    from bot.storage.store import Store

    settings = smtp_settings(database_url, tmp_path, smtp_server)
    store = Store.from_url(settings.database_url, clock)
    store.create_all()
    sub, _ = submit(store, settings, copy_to_referent=False)
    smtp_server.handler.mode = "421"
    worker = OutboxWorker(store, settings, clock=clock, rng=random.Random(1))
    for _ in range(3):
        await worker.run_once()
        clock.advance(minutes=10)
    by_user = {n.user_id: n.text for n in store.pending_notices()}
    assert "retardé" in by_user[sub.user_id]
    assert sub.reference in by_user[STAFF_ID] and "421" in by_user[STAFF_ID]
    store.engine.dispose()


def test_digests_of_two_databases_have_different_message_ids_one_database_one_digest(
    tmp_path: Path, clock: FakeClock
) -> None:
    from bot.mail.digest import schedule_digest
    from bot.storage.store import Store

    ids = []
    for name in ("a", "b"):
        settings = make_settings(
            f"sqlite:///{tmp_path / name}.sqlite3", tmp_path / name, digest_every_hours=24
        )
        store = Store.from_url(settings.database_url, clock)
        store.create_all()
        job = schedule_digest(store, settings)
        assert job is not None
        second_instance = Store.from_url(settings.database_url, clock)
        assert schedule_digest(second_instance, settings) is None  # already queued: not twice
        assert second_instance.database_token() == store.database_token()
        ids.append(job.message_id)
        store.engine.dispose()
        second_instance.engine.dispose()
    assert ids[0] != ids[1]
