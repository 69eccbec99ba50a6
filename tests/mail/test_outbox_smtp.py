"""The hand-off through a real SMTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import random
import re
from datetime import timedelta

import pypdf
import pytest

from bot.config import Settings
from bot.storage.models import OutboxStatus, UserNotice
from bot.storage.store import Store
from bot.worker import OutboxWorker, backoff
from tests.conftest import STAFF_ID, FakeClock
from tests.mail.conftest import SmtpServer
from tests.mail.factories import answers, submit

ARS = "ars-bretagne-secretariat-daspf@ars.sante.fr"


def worker(store: Store, settings: Settings, clock: FakeClock) -> OutboxWorker:
    return OutboxWorker(store, settings, clock=clock, rng=random.Random(7))


def notices(store: Store) -> list[str]:
    with store.session() as session:
        from sqlmodel import select

        return [n.text for n in session.exec(select(UserNotice).order_by(UserNotice.id))]  # type: ignore[arg-type]


def user_notices(store: Store, user_id: int) -> list[str]:
    with store.session() as session:
        from sqlmodel import select

        stmt = select(UserNotice).where(UserNotice.user_id == user_id).order_by(UserNotice.id)  # type: ignore[arg-type]
        return [n.text for n in session.exec(stmt)]


def pdf_text(data: bytes) -> str:
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)
    return " ".join(text.split())


async def test_ars_mail_arrives_complete_and_parses_back(
    mail_store: Store, mail_settings: Settings, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    sub, jobs = submit(mail_store, mail_settings)
    assert [j.kind for j in jobs] == ["ars", "copy"]
    assert re.fullmatch(rf"<{sub.reference}\.ars\.[0-9a-f]{{16}}@example\.org>", jobs[0].message_id)

    assert await worker(mail_store, mail_settings, clock).run_once() == 2
    [received] = smtp_server.handler.to(ARS)
    assert received.mail_from == "bot-cpts@example.org"
    msg = received.message
    assert (
        msg["Subject"]
        == f"[AMI CPTS] [22] {sub.reference} — Lannion-Trégor Communauté — Dr Paul Le Cam"
    )
    assert msg["To"].addresses[0].addr_spec == ARS
    assert [a.addr_spec for a in msg["Reply-To"].addresses] == [
        "paul.lecam@example.org",
        "claire.morvan@example.net",
    ]
    assert msg["Message-ID"] == jobs[0].message_id
    assert msg["Date"]

    text = msg.get_body(("plain",)).get_content()
    for expected in [
        "Professionnels/Structures",
        "Dr Paul Le Cam — médecin généraliste — Lannion — MSP",
        "Claire Morvan — infirmière libérale — Lannion — cabinet de groupe",
        "paul.lecam@example.org",
        "06 11 22 33 44",
        "☒ Besoin d'informations sur ce qu'est une CPTS",
        "☒ Réflexion en cours autour d'un projet de CPTS",
        "☐ Initiative engagée pour monter un projet de CPTS",
        "sans médecin traitant",
        "Lannion-Trégor Communauté",
        "avant fin février (compris : 28 février 2027)",
        "referents[1].phone",
    ]:
        assert expected in text

    attachments = {p.get_filename(): p for p in msg.iter_attachments()}
    assert set(attachments) == {
        f"fiche-{sub.reference}-Lannion-Tregor-Communaute.pdf",
        f"{sub.reference}.json",
        f"{sub.reference}.csv",
    }
    pdf = pdf_text(
        attachments[f"fiche-{sub.reference}-Lannion-Tregor-Communaute.pdf"].get_content()
    )
    for expected in [
        "APPEL À MANIFESTATION D'INTÉRÊT",
        "Communauté Professionnelle Territoriale de Santé (CPTS)",
        "ARS Bretagne",
        sub.reference,
        "23 novembre 2026",
        "Dr Paul Le Cam",
        "médecin généraliste",
        "Lannion",
        "MSP",
        "Claire Morvan",
        "infirmière libérale",
        "cabinet de groupe",
        "président de l'association de la MSP",
        "paul.lecam@example.org",
        "claire.morvan@example.net",
        "06 11 22 33 44",
        "02 99 00 00 01",
        "Besoin d'informations sur ce qu'est une CPTS",
        "Initiative engagée pour monter un projet de CPTS",
        "sans médecin traitant venant des communes voisines",
        "Lannion-Trégor Communauté",
        "avant fin février",
        "numéro à vérifier",
    ]:
        assert expected in pdf, expected
    data = json.loads(attachments[f"{sub.reference}.json"].get_content())
    assert data["answers"] == sub.answers
    assert data["reference"] == sub.reference
    csv_part = attachments[f"{sub.reference}.csv"]
    csv_bytes = csv_part.get_payload(decode=True)
    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    assert "Lannion-Trégor Communauté" in csv_bytes.decode("utf-8-sig")

    [copy] = smtp_server.handler.to("paul.lecam@example.org")
    assert copy.message["Subject"].startswith("Copie de votre réponse")
    assert copy.message["Reply-To"].addresses[0].addr_spec == ARS

    assert notices(mail_store) == [
        f"Votre réponse {sub.reference} a bien été transmise au secrétariat de l'ARS Bretagne ({ARS})."
    ]
    assert {j.status for j in mail_store.jobs()} == {OutboxStatus.SENT}
    assert await worker(mail_store, mail_settings, clock).run_once() == 0
    assert len(smtp_server.messages) == 2


async def test_html_escapes_user_input(
    mail_store: Store, mail_settings: Settings, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    actors = answers()["actors"]
    actors[0]["name"] = "<script>alert('x')</script> Dr Le Cam"
    submit(mail_store, mail_settings, actors=actors, context="a < b & <b>gras</b>")
    await worker(mail_store, mail_settings, clock).run_once()
    html = smtp_server.handler.to(ARS)[0].message.get_body(("html",)).get_content()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Dr Le Cam" in html
    assert "a &lt; b &amp; &lt;b&gt;gras&lt;/b&gt;" in html


async def test_refused_referent_address_does_not_block_the_ars_mail(
    mail_store: Store, mail_settings: Settings, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    smtp_server.handler.refuse_rcpt = {"paul.lecam@example.org"}
    _sub, _ = submit(mail_store, mail_settings)
    assert await worker(mail_store, mail_settings, clock).run_once() == 1
    assert len(smtp_server.handler.to(ARS)) == 1
    by_kind = {j.kind: j for j in mail_store.jobs()}
    assert by_kind["ars"].status == OutboxStatus.SENT
    assert by_kind["copy"].status == OutboxStatus.FAILED
    assert "550" in (by_kind["copy"].last_error or "")
    texts = notices(mail_store)
    assert any("a bien été transmise" in t for t in texts)
    assert any("n'a pas pu être remise à paul.lecam@example.org" in t for t in texts)


async def test_malformed_referent_address_is_skipped_from_reply_to(
    mail_store: Store, mail_settings: Settings, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    referents = answers()["referents"]
    referents[0]["email"] = "paul lecam@@example,org\r\nBcc: x@example.org"
    submit(mail_store, mail_settings, referents=referents)
    await worker(mail_store, mail_settings, clock).run_once()
    msg = smtp_server.handler.to(ARS)[0].message
    assert [a.addr_spec for a in msg["Reply-To"].addresses] == ["claire.morvan@example.net"]
    assert "Bcc" not in msg
    assert "non reprise(s) dans « Répondre à »" in msg.get_body(("plain",)).get_content()
    # the copy goes to the first usable referent address
    assert len(smtp_server.handler.to("claire.morvan@example.net")) == 1


async def test_extreme_content_still_goes_out_well_formed(
    mail_store: Store, mail_settings: Settings, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    actors = answers()["actors"]
    actors[0]["name"] = "Dr 🩺 Paul ‮Le Cam‬ / שרה כהן / د. أحمد"
    actors[0]["commune"] = "../../etc/passwd 🏥 \u200f"
    context = ("Contexte très long, accentué : éèàç œ « » — " * 100)[:4000]
    _sub, _ = submit(
        mail_store, mail_settings, actors=actors, context=context, territory="Redon/Vannes\\..\n"
    )
    assert len(context) == 4000
    assert await worker(mail_store, mail_settings, clock).run_once() == 2
    msg = smtp_server.handler.to(ARS)[0].message
    assert "\n" not in msg["Subject"]
    assert context.strip() in msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    names = [p.get_filename() for p in msg.iter_attachments()]
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name
        assert "/" not in name and ".." not in name
    pdf_part = next(p for p in msg.iter_attachments() if p.get_content_type() == "application/pdf")
    text = pdf_text(pdf_part.get_content())
    assert "Paul" in text and "Contexte très long" in text
    data = json.loads(
        next(p for p in msg.iter_attachments() if p.get_filename().endswith(".json")).get_content()
    )
    assert data["answers"]["actors"][0]["name"] == actors[0]["name"]


async def test_smtp_down_at_submission_then_up_two_minutes_later(
    mail_store: Store, mail_settings: Settings, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    smtp_server.stop()
    _sub, _ = submit(mail_store, mail_settings, copy_to_referent=False)
    w = worker(mail_store, mail_settings, clock)
    assert await w.run_once() == 0
    [job] = mail_store.jobs()
    assert job.status == OutboxStatus.PENDING and job.attempts == 1
    assert job.next_attempt_at > clock()
    assert notices(mail_store) == []  # one failed attempt: no alarm yet

    clock.advance(minutes=2)
    smtp_server.start()
    assert await w.run_once() == 1
    assert await w.run_once() == 0
    clock.advance(hours=2)
    assert await w.run_once() == 0
    assert len(smtp_server.messages) == 1
    assert mail_store.jobs()[0].status == OutboxStatus.SENT
    assert len(notices(mail_store)) == 1


async def test_restart_with_a_pending_job_sends_exactly_once(
    mail_store: Store, mail_settings: Settings, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    submit(mail_store, mail_settings, copy_to_referent=False)
    # A worker claims the job and dies before sending: its lease keeps others away…
    assert len(mail_store.claim_jobs()) == 1
    restarted = Store.from_url(mail_settings.database_url, clock)
    w2 = worker(restarted, mail_settings, clock)
    assert await w2.run_once() == 0
    # …until it expires; then the new instance sends it, once.
    clock.advance(minutes=6)
    assert await w2.run_once() == 1
    assert await worker(mail_store, mail_settings, clock).run_once() == 0
    clock.advance(hours=1)
    assert await w2.run_once() == 0
    assert len(smtp_server.messages) == 1
    restarted.engine.dispose()


@pytest.mark.parametrize("code", ["421", "451"])
async def test_temporary_refusals_retry_and_notify_the_delay_once(
    mail_store: Store, mail_settings: Settings, smtp_server: SmtpServer, clock: FakeClock, code: str
) -> None:
    smtp_server.handler.mode = code
    sub, _ = submit(mail_store, mail_settings, copy_to_referent=False)
    w = worker(mail_store, mail_settings, clock)
    delays = []
    for _ in range(6):
        before = clock()
        assert await w.run_once() == 0
        job = mail_store.jobs()[0]
        delays.append(job.next_attempt_at - before)
        clock.advance(seconds=(job.next_attempt_at - clock()).total_seconds() + 1)
    assert mail_store.jobs()[0].attempts == 6
    assert delays[1] > delays[0] and delays[4] > delays[2]
    delayed = [t for t in user_notices(mail_store, 4242) if "retardé" in t]
    assert len(delayed) == 1 and sub.reference in delayed[0] and "enregistrée" in delayed[0]
    smtp_server.handler.mode = None
    assert await w.run_once() == 1
    assert mail_store.jobs()[0].status == OutboxStatus.SENT
    assert len(smtp_server.messages) == 1
    assert "a bien été transmise" in notices(mail_store)[-1]


async def test_delay_notice_after_fifteen_minutes_even_with_few_attempts(
    mail_store: Store, mail_settings: Settings, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    smtp_server.stop()
    submit(mail_store, mail_settings, copy_to_referent=False)
    w = worker(mail_store, mail_settings, clock)
    await w.run_once()
    clock.advance(minutes=16)
    await w.run_once()
    assert mail_store.jobs()[0].attempts == 2
    assert len([t for t in user_notices(mail_store, 4242) if "retardé" in t]) == 1


async def test_permanent_refusal_fails_the_job_and_staff_can_resend(
    mail_store: Store, mail_settings: Settings, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    smtp_server.handler.mode = "550"
    _sub, _ = submit(mail_store, mail_settings, copy_to_referent=False)
    w = worker(mail_store, mail_settings, clock)
    assert await w.run_once() == 0
    [job] = mail_store.jobs()
    assert job.status == OutboxStatus.FAILED and "550" in (job.last_error or "")
    [notice] = user_notices(mail_store, 4242)
    assert "alertées" in notice and "ronan.derieux@ars.sante.fr" in notice
    [alert] = user_notices(mail_store, STAFF_ID)  # ARS_STAFF_IDS are told in Telegram
    assert f"/renvoyer {job.id}" in alert and "550" in alert
    clock.advance(hours=3)
    assert await w.run_once() == 0  # a failed job is never retried on its own
    assert smtp_server.handler.attempts == 1

    smtp_server.handler.mode = None
    assert job.id is not None and mail_store.requeue_job(job.id)
    assert await w.run_once() == 1
    assert mail_store.jobs()[0].status == OutboxStatus.SENT
    assert len(smtp_server.messages) == 1
    assert "a bien été transmise" in notices(mail_store)[-1]


def test_backoff_grows_is_capped_and_jittered() -> None:
    rng = random.Random(1)
    first = [backoff(0, rng) for _ in range(50)]
    assert all(timedelta(seconds=24) <= d <= timedelta(seconds=36) for d in first)
    assert len(set(first)) > 40
    assert timedelta(seconds=96) <= backoff(2, rng) <= timedelta(seconds=144)
    assert all(backoff(n, rng) <= timedelta(minutes=72) for n in range(8, 40))
