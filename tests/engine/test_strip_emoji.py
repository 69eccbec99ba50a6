"""`strip_emoji`'s fast path (plain letters and punctuation) agrees with the per-character one."""

from __future__ import annotations

import sys

from bot.engine.validators import PLAIN_TEXT_RE, SPACES_RE, is_emoji, strip_emoji


def slow(text: str) -> str:
    return SPACES_RE.sub(" ", "".join(ch for ch in text if not is_emoji(ch))).strip()


def test_no_character_the_fast_path_keeps_is_an_emoji():
    kept = (
        chr(c)
        for c in range(sys.maxunicode + 1)
        if not 0xD800 <= c <= 0xDFFF and PLAIN_TEXT_RE.fullmatch(chr(c))
    )
    assert [ch for ch in kept if ch < "\U0001f000" and is_emoji(ch)] == []


def test_both_paths_give_the_same_text():
    for text in [
        "Dr Paul Le Cam",
        "  président   de l'association ",
        "Lannion-Trégor Communauté",
        "a^b `c`",
        "Réseau 🏥 santé",
        "🄀 1",
        "Maison de santé (MSP) « Les Korrigans » — 2 sites",
    ]:
        assert strip_emoji(text) == slow(text), text
