"""Fixtures of the form tests: the app (real Q&A when bot.qa is there), personas, a fresh engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import Settings

HERE = Path(__file__).parent


@dataclass
class FakeAnswer:
    """The shape of `bot.qa.QAAnswer` the engine renders."""

    text: str
    abstained: bool
    more_key: str | None = None
    related: list[tuple[str, str]] = field(default_factory=list)
    sources: list[Any] = field(default_factory=list)
    score: float = 0.0


class FakeQA:
    """Answers « qu'est-ce qu'une CPTS ? »-like questions, abstains on everything else."""

    def answer(self, text: str) -> FakeAnswer:
        if "cpts" in text.lower() or "territoire" in text.lower():
            return FakeAnswer(
                "Une CPTS est une communauté professionnelle territoriale de santé.", False
            )
        return FakeAnswer("Je ne trouve pas la réponse dans les textes.", True)

    def more(self, key: str) -> None:
        return None

    def topic(self, key: str) -> None:
        return None


def real_qa_available() -> bool:
    try:
        from bot.qa import QAService  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="session")
def qa_service():  # type: ignore[no-untyped-def]
    if real_qa_available():
        from bot.qa import QAService

        return QAService.load()
    return FakeQA()


def build_test_app(settings: Settings, qa: Any, clock: Any, dialogues: Path | None = None) -> Any:
    """`bot.app.build_app`, or the same wiring by hand while bot.qa has not landed."""
    from bot.app import App, load_flows
    from bot.engine.engine import DialogueEngine
    from bot.respondent import StoredRespondent
    from bot.storage.store import Store

    if dialogues is None and real_qa_available():
        from bot.app import build_app

        return build_app(settings, qa=qa, clock=clock, create_schema=True)
    from bot.config import DIALOGUES_DIR

    store = Store.from_url(settings.database_url, clock)
    store.create_all()
    engine = DialogueEngine(
        store=store,
        qa=qa,
        settings=settings,
        clock=clock,
        respondent=StoredRespondent(store, settings),
    )
    app = App(settings=settings, store=store, qa=qa, engine=engine)
    engine.flows.update(load_flows(app, dialogues or DIALOGUES_DIR))
    return app


@pytest.fixture
def app(settings: Settings, clock, qa_service):  # type: ignore[no-untyped-def]
    return build_test_app(settings, qa_service, clock)


@pytest.fixture(scope="session")
def personas() -> dict[str, dict[str, Any]]:
    with (HERE / "personas.yaml").open(encoding="utf-8") as fh:
        return {p["id"]: p for p in yaml.safe_load(fh)["personas"]}
