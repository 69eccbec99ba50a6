"""The load benchmark, reduced: 12 users complete the AMI at once; correctness only, no timing."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.load_bench import run_load

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def test_concurrent_users_each_get_one_email_with_their_own_answers(
    any_db_url: str, tmp_path: Path
) -> None:
    report = await run_load(12, any_db_url, tmp_path, timeout=120, ramp_seconds=0.5)
    assert not report.errors, report.errors
    assert report.completed == 12
    assert report.emails == report.distinct_message_ids == 12
    assert not report.missing and not report.mismatched
