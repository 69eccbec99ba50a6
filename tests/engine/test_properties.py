"""Property-based campaign: random texts, commands, buttons and restarts never break a turn."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import build_app
from bot.engine.messages import Incoming, Kind, Reply
from tests.conftest import FakeClock, make_settings

COMMANDS = ["start", "start ami", "start orientation", "aide", "question", "orientation", "ami",
            "reprendre", "annuler", "menu", "mesdonnees", "supprimer", "inconnue"]  # fmt: skip
WORDS = ["oui", "non", "précédent", "passer", "Valider", "1", "2", "3", "Dr Anne Le Goff",
         "anne@example.org", "06 12 34 56 78", "Lannion", "MSP", "fin janvier", "?", "",
         "Qu'est-ce qu'une CPTS ?", "<script>alert(1)</script>", "😀", "x" * 5000]  # fmt: skip

steps = st.one_of(
    st.tuples(st.just("command"), st.sampled_from(COMMANDS)),
    st.tuples(st.just("text"), st.sampled_from(WORDS)),
    st.tuples(st.just("text"), st.text(max_size=80)),
    st.tuples(st.just("button"), st.integers(min_value=0, max_value=12)),
    st.tuples(st.just("media"), st.sampled_from(["photo", "sticker", "voice"])),
    st.tuples(st.just("restart"), st.just("")),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=st.lists(steps, min_size=1, max_size=30))
def test_random_sessions_never_fail_and_always_reply(
    script: list[tuple[str, object]], tmp_path_factory, qa_service
) -> None:  # type: ignore[no-untyped-def]
    tmp: Path = tmp_path_factory.mktemp("prop")
    config = make_settings(f"sqlite:///{tmp / 'bot.sqlite3'}", tmp)
    clock = FakeClock()
    app = build_app(config, qa=qa_service, clock=clock, create_schema=True)
    error_text = app.engine.texts("error")
    replies: list[Reply] = []
    for kind, value in script:
        clock.advance(seconds=5)
        if kind == "restart":
            before = app.store.get_conversation(1)
            app = build_app(config, qa=qa_service, clock=clock, create_schema=True)
            after = app.store.get_conversation(1)
            if before is not None:
                assert after is not None and after.data == before.data and after.flow == before.flow
            continue
        if kind == "command":
            name, _, arg = str(value).partition(" ")
            incoming = Incoming(1, Kind.COMMAND, name, arg)
        elif kind == "text":
            incoming = Incoming.say(1, str(value))
        elif kind == "media":
            incoming = Incoming(1, Kind.UNSUPPORTED, str(value))
        else:
            buttons = [b for r in replies for row in r.buttons for b in row]
            if not buttons:
                continue
            incoming = Incoming.choose(1, buttons[int(value) % len(buttons)].payload)  # type: ignore[call-overload]
        replies = app.engine.handle(incoming)
        assert replies, f"no reply to {incoming}"
        assert all(r.text.strip() and len(r.text) < 4096 for r in replies)
        assert all(error_text not in r.text for r in replies), f"turn failed on {incoming}"
