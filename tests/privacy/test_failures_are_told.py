"""Nothing lost in silence: bad mail settings stop the start, /healthz sees writes and the outbox."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bot.storage.store import Store
from tests.conftest import FakeClock, make_settings
from tests.mail.factories import submit

ROOT = Path(__file__).resolve().parents[2]


def run_bot(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_invalid_mail_settings_stop_the_start_with_a_french_message(tmp_path: Path) -> None:
    assert run_bot(tmp_path, "migrate").returncode == 0
    result = run_bot(
        tmp_path,
        "run",
        TELEGRAM_BOT_TOKEN="123456:TEST-TOKEN-never-used-xxxxxxxx",
        SMTP_HOST="smtp://relay.example.org",
        SMTP_PASSWORD="s3cret",
        MAIL_FROM="pas une adresse",
        ALERT_EMAIL="alerte@",
    )
    assert result.returncode == 2
    assert "Réglages de messagerie invalides" in result.stderr
    for name in ("SMTP_HOST", "SMTP_PASSWORD", "MAIL_FROM", "ALERT_EMAIL"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr


def test_telegram_mode_without_smtp_warns_at_start(tmp_path: Path) -> None:
    assert run_bot(tmp_path, "migrate").returncode == 0
    result = run_bot(
        tmp_path,
        "run",
        TELEGRAM_BOT_TOKEN="123456:TEST-TOKEN-never-used-xxxxxxxx",
        TELEGRAM_API_BASE_URL="http://127.0.0.1:9/bot",  # nothing listens: stops after warning
    )
    assert "aucun serveur de messagerie n'est configuré" in result.stderr
    assert "ne partiront PAS" in result.stderr


def test_health_is_ok_with_a_writable_database_and_a_fresh_outbox(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    store = Store.from_url(database_url, clock)
    store.create_all()
    settings = make_settings(database_url, tmp_path)
    submit(store, settings, copy_to_referent=False)
    assert store.health(timedelta(minutes=60)) == (True, "ok")
    assert store.health(timedelta(minutes=60)) == (True, "ok")  # the probe row is rewritten
    store.engine.dispose()


def test_health_fails_when_the_oldest_pending_email_is_too_old(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    store = Store.from_url(database_url, clock)
    store.create_all()
    submit(store, make_settings(database_url, tmp_path), copy_to_referent=False)
    clock.advance(minutes=61)
    ok, status = store.health(timedelta(minutes=60))
    assert not ok and "61 min" in status
    store.engine.dispose()


def test_health_fails_when_the_database_refuses_writes(tmp_path: Path, clock: FakeClock) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'ro.sqlite3'}", clock)
    store.create_all()
    store.engine.dispose()

    @event.listens_for(store.engine, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA query_only = ON")  # as a read-only or full disk would

    ok, status = store.health(timedelta(minutes=60))
    assert not ok and status.startswith("database write failed")
    store.engine.dispose()


def test_settings_of_the_wrong_type_are_listed_in_french_without_a_traceback(
    tmp_path: Path,
) -> None:
    result = run_bot(
        tmp_path, "worker", "--once", SMTP_SECURITY="ssl", SMTP_PORT="abc", SMTP_PASSWORD="x"
    )
    assert result.returncode == 2
    assert (
        "SMTP_SECURITY = 'ssl' : valeur non reconnue (attendu : 'none', 'starttls' ou 'tls')"
        in (result.stderr)
    )
    assert "SMTP_PORT = 'abc' : un nombre entier est attendu" in result.stderr
    assert "Traceback" not in result.stderr
