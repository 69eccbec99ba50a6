"""Transport options, .eml files, the digest schedule, the PDF fallback, the worker command."""

from __future__ import annotations

import email
import io
import random
from email import policy
from pathlib import Path

import pypdf
import pytest
from aiosmtpd.smtp import AuthResult

from bot.config import Settings
from bot.mail.pdf import render_fiche_pdf
from bot.mail.render import safe_filename
from bot.mail.transport import (
    ConfigurationError,
    EmlDirectoryTransport,
    SmtpTransport,
    TemporaryFailure,
    make_transport,
    smtp_options,
)
from bot.runtime import run_worker
from bot.storage.models import OutboxStatus
from bot.storage.store import Store
from bot.worker import OutboxWorker, deliver_pending
from tests.conftest import FakeClock, make_settings
from tests.mail.conftest import SmtpServer
from tests.mail.factories import answers, submit

ARS = "ars-bretagne-secretariat-daspf@ars.sante.fr"


def test_smtp_options_follow_the_security_setting(tmp_path: Path) -> None:
    base = {"smtp_host": "smtp.example.org"}
    tls = smtp_options(make_settings("sqlite://", tmp_path, smtp_security="tls", **base))
    assert (tls["use_tls"], tls["start_tls"], tls["port"]) == (True, False, 465)
    starttls = smtp_options(
        make_settings(
            "sqlite://",
            tmp_path,
            smtp_security="starttls",
            smtp_username="u",
            smtp_password="p",
            **base,
        )
    )
    assert (starttls["use_tls"], starttls["start_tls"], starttls["port"]) == (False, True, 587)
    assert (starttls["username"], starttls["password"]) == ("u", "p")
    plain = smtp_options(make_settings("sqlite://", tmp_path, smtp_security="none", **base))
    assert (plain["use_tls"], plain["start_tls"], plain["port"]) == (False, False, 25)
    assert "username" not in plain
    with pytest.raises(ConfigurationError, match="en clair"):
        smtp_options(
            make_settings("sqlite://", tmp_path, smtp_security="none", smtp_username="u", **base)
        )
    assert isinstance(make_transport(make_settings("sqlite://", tmp_path)), EmlDirectoryTransport)


class Authenticator:
    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:  # type: ignore[no-untyped-def]
        ok = auth_data.login == b"bot" and auth_data.password == b"secret"
        return AuthResult(success=ok, handled=False)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_authentication_on_a_loopback_relay(
    tmp_path: Path, sqlite_url: str, clock: FakeClock
) -> None:
    server = SmtpServer(authenticator=Authenticator(), auth_require_tls=False, auth_required=True)
    server.start()
    try:
        common = {"smtp_host": "127.0.0.1", "smtp_port": server.port, "smtp_security": "none"}
        good = make_settings(
            sqlite_url, tmp_path, smtp_username="bot", smtp_password="secret", **common
        )
        store = Store.from_url(sqlite_url, clock)
        store.create_all()
        submit(store, good, copy_to_referent=False)
        assert await OutboxWorker(store, good, SmtpTransport(good), clock).run_once() == 1
        bad = make_settings(
            sqlite_url, tmp_path, smtp_username="bot", smtp_password="faux", **common
        )
        submit(store, bad, user_id=2, copy_to_referent=False)
        # a refused login is a configuration problem: the e-mail stays queued, not failed
        assert await OutboxWorker(store, bad, SmtpTransport(bad), clock).run_once() == 0
        assert [j.status for j in store.jobs()] == [OutboxStatus.SENT, OutboxStatus.PENDING]
        assert "authentification" in (store.jobs()[1].last_error or "")
        assert len(server.messages) == 1
    finally:
        server.stop()


async def test_unreachable_server_is_temporary(tmp_path: Path) -> None:
    from tests.mail.conftest import free_port

    settings = make_settings(
        "sqlite://",
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        smtp_security="none",
        smtp_timeout=2,
    )
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Message-ID"] = (
        "a@example.org",
        "b@example.org",
        "<x.ars@example.org>",
    )
    msg.set_content("x")
    with pytest.raises(TemporaryFailure):
        await SmtpTransport(settings).send(msg)


async def test_eml_directory_without_smtp_is_idempotent(
    settings: Settings, clock: FakeClock
) -> None:
    store = Store.from_url(settings.database_url, clock)
    store.create_all()
    sub, jobs = submit(store, settings)
    deliver_pending(store, settings)
    outbox = Path(settings.mail_outbox_dir)
    assert sorted(p.name for p in outbox.iterdir()) == [
        f"{sub.reference}-ars.eml",
        f"{sub.reference}-copy.eml",
    ]
    msg = email.message_from_bytes(
        (outbox / f"{sub.reference}-ars.eml").read_bytes(), policy=policy.default
    )
    assert msg["Message-ID"] == jobs[0].message_id and msg["X-Delivered-To"] == ARS
    assert jobs[0].id is not None and store.requeue_job(jobs[0].id)
    deliver_pending(store, settings)
    assert len(list(outbox.iterdir())) == 2


def test_attachment_names_are_sanitised() -> None:
    assert safe_filename("fiche-AMI-2026-0007-../../etc/passwd 🏥 \u200f\u202e.pdf") == (
        "fiche-AMI-2026-0007-etc-passwd.pdf"
    )
    assert safe_filename("Pays de Redon / Vannes.pdf") == "Pays-de-Redon-Vannes.pdf"
    assert safe_filename("🏥🩺.pdf", "fiche") == "fiche.pdf"
    assert safe_filename("x" * 300 + ".json").endswith(".json")


@pytest.mark.parametrize("unicode_font", [True, False])
def test_pdf_survives_emoji_and_right_to_left_text(
    unicode_font: bool, settings: Settings, clock: FakeClock
) -> None:
    store = Store.from_url(settings.database_url, clock)
    store.create_all()
    actors = answers()["actors"]
    actors[0]["name"] = "Dr 🩺 Paul ‮Le Cam‬ שרה כהן د. أحمد Œuvre"
    sub, _ = submit(store, settings, actors=actors, context="x" * 4000)
    data = render_fiche_pdf(sub, unicode_font=unicode_font)
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages)
    assert "Paul" in text and "APPEL À MANIFESTATION" in text


async def test_digest_is_scheduled_in_the_database_and_sent_once(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    settings = make_settings(database_url, tmp_path, digest_every_hours=24)
    store = Store.from_url(database_url, clock)
    store.create_all()
    w = OutboxWorker(store, settings, clock=clock, rng=random.Random(3))
    await w.run_once()
    [digest] = [j for j in store.jobs() if j.kind == "digest"]
    assert (
        digest.status == OutboxStatus.PENDING
        and digest.next_attempt_at == clock.now.replace() + (digest.next_attempt_at - clock.now)
    )
    assert (digest.next_attempt_at - clock.now).total_seconds() == 24 * 3600

    clock.advance(hours=2)
    first, _ = submit(
        store,
        settings,
        user_id=1,
        copy_to_referent=False,
        territory="Pays de Redon (Redon, Allaire)",
    )
    second, _ = submit(store, settings, user_id=2, copy_to_referent=False, territory="Redon")

    # a restart: a new store and worker see the same schedule, nothing doubles
    clock.advance(hours=23)
    store2 = Store.from_url(database_url, clock)
    w2 = OutboxWorker(store2, settings, clock=clock, rng=random.Random(4))
    assert await w2.run_once() == 3  # two ARS e-mails and the digest
    assert await w.run_once() == 0
    digests = [j for j in store.jobs() if j.kind == "digest"]
    assert [j.status for j in digests] == [OutboxStatus.SENT, OutboxStatus.PENDING]
    assert digests[1].payload["since"] == digests[0].payload["until"]
    eml = (
        Path(settings.mail_outbox_dir)
        / f"digest-{digests[0].next_attempt_at:%Y%m%dT%H%M%S}-digest.eml"
    )
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert "2 nouvelle(s) réponse(s)" in msg["Subject"]
    body = msg.get_body(("plain",)).get_content()
    assert first.reference in body and second.reference in body
    assert f"Territoire en commun avec {first.reference}" in body
    store2.engine.dispose()

    settings_off = make_settings(database_url, tmp_path, digest_every_hours=0)
    await OutboxWorker(store, settings_off, clock=clock).run_once()
    assert [j.status for j in store.jobs() if j.kind == "digest"] == [OutboxStatus.SENT]


def test_worker_command_once(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from bot.storage.migrations import upgrade

    settings = make_settings(f"sqlite:///{tmp_path / 'w.sqlite3'}", tmp_path)
    assert run_worker(settings, once=True) == 2  # not migrated: says so
    upgrade(settings.database_url)
    store = Store.from_url(settings.database_url)
    sub, _ = submit(store, settings)
    assert run_worker(settings, once=True) == 0
    out = capsys.readouterr().out
    assert "python -m bot migrate" in out and "2 e-mail(s) envoyé(s)" in out
    assert (Path(settings.mail_outbox_dir) / f"{sub.reference}-ars.eml").exists()


@pytest.fixture(scope="module")
def tls_authority():  # type: ignore[no-untyped-def]
    """A throwaway certificate authority and a certificate for 127.0.0.1 (trustme)."""
    import trustme

    authority = trustme.CA()
    return authority, authority.issue_cert("127.0.0.1", "localhost")


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_mail_goes_out_over_tls_with_authentication(
    security: str, tls_authority, tmp_path: Path, sqlite_url: str, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    import ssl

    authority, certificate = tls_authority
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server_context)
    if security == "starttls":  # STARTTLS required before AUTH, as on a real relay
        server = SmtpServer(
            authenticator=Authenticator(),
            auth_required=True,
            require_starttls=True,
            tls_context=server_context,
        )
    else:  # implicit TLS from the first byte (port 465 style); aiosmtpd cannot tell that
        # the socket is already encrypted, hence auth_require_tls=False
        server = SmtpServer(
            authenticator=Authenticator(),
            auth_required=True,
            auth_require_tls=False,
            ssl_context=server_context,
        )
    server.start()
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    try:
        settings = make_settings(
            sqlite_url,
            tmp_path,
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_security=security,
            smtp_username="bot",
            smtp_password="secret",
            smtp_ca_file=str(ca_file),
            smtp_timeout=5.0,
        )
        store = Store.from_url(sqlite_url, clock)
        store.create_all()
        submit(store, settings, copy_to_referent=False)
        assert await OutboxWorker(store, settings, SmtpTransport(settings), clock).run_once() == 1
        assert len(server.messages) == 1
        # an untrusted certificate is never accepted: the e-mail stays queued
        untrusting = make_settings(
            sqlite_url,
            tmp_path,
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_security=security,
            smtp_username="bot",
            smtp_password="secret",
            smtp_timeout=5.0,
        )
        submit(store, untrusting, user_id=2, copy_to_referent=False)
        worker = OutboxWorker(store, untrusting, SmtpTransport(untrusting), clock)
        assert await worker.run_once() == 0
        assert len(server.messages) == 1
        assert store.jobs()[1].status == OutboxStatus.PENDING
    finally:
        server.stop()
