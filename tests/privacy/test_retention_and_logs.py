"""Drafts are not kept forever, and logs never hold secrets."""

from __future__ import annotations

import logging

import pytest

from bot.config import Settings
from bot.logsetup import RedactingFilter
from bot.privacy import apply_retention
from bot.storage import Store
from bot.storage.migrations import upgrade
from bot.storage.store import make_engine
from tests.conftest import FakeClock, make_settings


@pytest.fixture
def store(database_url: str, clock: FakeClock) -> Store:
    upgrade(database_url)
    return Store(make_engine(database_url), clock)


def _draft(store: Store, user_id: int) -> None:
    with store.turn(user_id) as turn:
        turn.conversation.flow = "ami_bretagne"
        turn.conversation.data["ami_bretagne"] = {"answers": {"context": "Projet à Vannes"}}


def test_an_idle_draft_gets_one_reminder_then_is_erased(
    store: Store, clock: FakeClock, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings("sqlite://", tmp_path)
    _draft(store, 11)
    clock.advance(days=22)
    assert apply_retention(store, settings).reminded == 0
    clock.advance(days=2)  # 24 days idle: 7 days before erasure at 30 → reminder due
    assert apply_retention(store, settings).reminded == 1
    assert apply_retention(store, settings).reminded == 0  # once only, even after a restart
    (notice,) = store.pending_notices()
    assert "sera effacé le" in notice.text
    clock.advance(days=7)
    report = apply_retention(store, settings)
    assert report.erased == 1
    conv = store.get_conversation(11)
    assert conv is not None and conv.data == {} and conv.flow is None


def test_an_active_draft_is_kept(store: Store, clock: FakeClock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings("sqlite://", tmp_path)
    _draft(store, 12)
    clock.advance(days=25)
    _draft(store, 12)  # the user came back
    clock.advance(days=10)
    assert apply_retention(store, settings).erased == 0
    assert store.get_conversation(12).data  # type: ignore[union-attr]


def test_a_guide_left_half_way_gets_no_ami_reminder_and_is_erased_silently(
    store: Store, clock: FakeClock, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings("sqlite://", tmp_path)
    with store.turn(13) as turn:
        turn.conversation.flow = "orientation"
        turn.conversation.data["orientation"] = {"answers": {"whom": "population"}}
    clock.advance(days=25)
    assert apply_retention(store, settings).reminded == 0
    clock.advance(days=6)
    assert apply_retention(store, settings).erased == 1
    assert store.pending_notices() == []
    assert store.get_conversation(13).data == {}  # type: ignore[union-attr]


def test_log_records_never_contain_the_bot_token_or_passwords() -> None:
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    redactor = RedactingFilter(["s3cr3t-pass"])
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1,
        "POST https://api.telegram.org/bot%s/getUpdates login %s", (token, "s3cr3t-pass"), None,
    )  # fmt: skip
    redactor.filter(record)
    message = record.getMessage()
    assert token not in message and "s3cr3t-pass" not in message
    assert "[token]" in message and "[secret]" in message


def test_library_records_below_warning_are_dropped_and_addresses_and_phones_redacted() -> None:
    from bot.logsetup import ThirdPartyFilter

    drop = ThirdPartyFilter()
    body = logging.LogRecord(
        "telegram.ext.ExtBot", logging.DEBUG, __file__, 1, "Calling sendMessage %s", ({"text": "x"},), None
    )  # fmt: skip
    own = logging.LogRecord("bot.engine", logging.DEBUG, __file__, 1, "turn of user 4", None, None)
    warn = logging.LogRecord("telegram.ext", logging.WARNING, __file__, 1, "network", None, None)
    assert [drop.filter(r) for r in (body, own, warn)] == [False, True, True]

    redactor = RedactingFilter(allowed=["ars@example.org"])
    record = logging.LogRecord(
        "bot.mail", logging.ERROR, __file__, 1,
        "job 3 to %s (copy of ars@example.org) refused; call %s or %s at 2026-11-29 12:40:17",
        ("paul.lecam@example.org", "06 11 22 33 44", "+33611223344"), None,
    )  # fmt: skip
    redactor.filter(record)
    message = record.getMessage()
    assert "paul.lecam" not in message and "06 11" not in message and "+336" not in message
    assert "ars@example.org" in message and "2026-11-29 12:40:17" in message
