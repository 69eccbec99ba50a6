"""Moved to `bot.mail.trust` (address verification is part of the hand-off by e-mail).

Kept only for the lazy imports of `bot/engine/forms.py`, which is being replaced by
`bot/forms/` with ports; delete this module once nothing imports `bot.trust`.
"""

from bot.mail.trust import (  # noqa: F401
    Check,
    Refused,
    check_code,
    is_verified,
    start_verification,
    submissions_today,
)
