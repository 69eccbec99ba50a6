"""Operator mistakes get a French sentence; exports are private and never overwrite or follow links."""

from __future__ import annotations

import argparse
import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from bot.cli import operator_message
from bot.staff.commands import run_cli
from bot.storage.migrations import upgrade
from bot.storage.store import Store
from tests.conftest import FakeClock, make_settings
from tests.mail.factories import submit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def migrated(tmp_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    settings = make_settings(f"sqlite:///{tmp_path / 'staff.sqlite3'}", tmp_path)
    upgrade(settings.database_url)
    store = Store.from_url(settings.database_url, clock)
    for user_id in range(1, 4):
        submit(store, settings, user_id=user_id, copy_to_referent=False)
    yield settings, store
    store.engine.dispose()


def export(settings, output: Path | str) -> int:  # type: ignore[no-untyped-def]
    return run_cli(settings, argparse.Namespace(command="export", format="csv", output=str(output)))


def test_export_is_created_for_its_owner_only(migrated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, _ = migrated
    out = tmp_path / "exports" / "reponses.csv"
    assert export(settings, out) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700


def test_export_never_overwrites_nor_follows_a_symlink(migrated, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    settings, store = migrated
    victim = tmp_path / "victim.txt"
    victim.write_text("à garder")
    link = tmp_path / "link.csv"
    link.symlink_to(victim)
    assert export(settings, link) == 2
    assert export(settings, victim) == 2
    assert victim.read_text() == "à garder"
    out = capsys.readouterr().out
    assert "lien symbolique" in out and "existe déjà" in out
    assert not [e for e in store.audit_entries() if e.action == "export"]  # nothing was read


def test_export_to_a_directory_writes_a_file_inside_it(migrated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, _ = migrated
    target = tmp_path / "dossier"
    target.mkdir()
    assert export(settings, target) == 0
    [written] = list(target.iterdir())
    assert written.suffix == ".csv" and written.read_bytes().startswith(b"\xef\xbb\xbf")


def test_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'new' / 'bot.sqlite3'}")
    store.create_all()
    assert stat.S_IMODE((tmp_path / "new" / "bot.sqlite3").stat().st_mode) == 0o600
    store.engine.dispose()


def test_an_existing_world_readable_database_is_tightened_to_0600(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    Store.from_url(f"sqlite:///{path}").create_all()
    os.chmod(path, 0o644)
    Store.from_url(f"sqlite:///{path}").engine.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_read_only_database_is_explained_in_french(tmp_path: Path) -> None:
    path = tmp_path / "ro.sqlite3"
    create_engine(f"sqlite:///{path}").connect().execute(text("CREATE TABLE t (x)")).close()
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(OperationalError) as caught, engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    message = operator_message(caught.value)
    assert message is not None and "lecture seule" in message


def test_full_disk_and_missing_rights_are_explained_in_french() -> None:
    full = operator_message(OSError(errno.ENOSPC, "No space left on device", "/var/lib/bot"))
    assert full is not None and "disque est plein" in full and "/var/lib/bot" in full
    denied = operator_message(PermissionError(errno.EACCES, "Permission denied", "/data"))
    assert denied is not None and "Droits insuffisants" in denied
    assert operator_message(ValueError("a bug")) is None  # bugs keep their traceback


def test_staff_read_piped_to_a_closed_reader_audits_first_and_ends_quietly(migrated) -> None:  # type: ignore[no-untyped-def]
    settings, store = migrated
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": settings.database_url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "responses", "AMI-2026-0001"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head -0`: the reader is gone before anything is written
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert [e.action for e in store.audit_entries()] == ["view_response"]
