"""The composition root: production defaults, each of which a test may override."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import DIALOGUES_DIR, Settings

if TYPE_CHECKING:
    from bot.engine.engine import DialogueEngine
    from bot.qa import QAService
    from bot.storage.store import Store

log = logging.getLogger(__name__)


@dataclass
class App:
    """Everything a front end needs, wired once."""

    settings: Settings
    store: Store
    qa: QAService
    engine: DialogueEngine
    services: dict[str, Any] = field(default_factory=dict)


def build_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    qa: QAService | None = None,
    clock: Callable[[], datetime] | None = None,
    create_schema: bool = False,
    dialogues_dir: Path | None = None,
) -> App:
    """Wire settings, storage, knowledge, flows and the engine.

    Every dialogue file (and, unless `qa` is given, every knowledge file) is first checked
    against its schema: a broken file raises `bot.schema.SchemaError` with the French problems
    before anything starts, never in front of a user. `create_schema` creates the tables
    directly (tests, throwaway databases); otherwise the database must have been migrated
    (`python -m bot migrate`).
    """
    from bot.engine.engine import DialogueEngine
    from bot.engine.texts import menu_texts
    from bot.lint import validate_startup
    from bot.qa import QAService
    from bot.qa.knowledge import DEFAULT_KNOWLEDGE_DIR
    from bot.respondent import StoredRespondent
    from bot.storage.store import Store

    dialogues_dir = dialogues_dir or DIALOGUES_DIR
    validate_startup(dialogues_dir, None if qa is not None else DEFAULT_KNOWLEDGE_DIR)
    settings = settings or Settings()
    if store is None:
        store = (
            Store.from_url(settings.database_url, clock)
            if clock
            else Store.from_url(settings.database_url)
        )
    if create_schema:
        store.create_all()
    else:
        from bot.storage.migrations import ensure_migrated

        ensure_migrated(store.engine)
    from bot import exchange

    exchange.texts()  # config/exchange.yaml, checked now rather than at the first message
    qa = qa or QAService.load()
    engine = DialogueEngine(
        store=store,
        qa=qa,
        settings=settings,
        clock=clock,
        texts=menu_texts(dialogues_dir),
        respondent=StoredRespondent(store, settings),  # the engine's storage-backed port
    )
    app = App(settings=settings, store=store, qa=qa, engine=engine)
    engine.flows.update(load_flows(app, dialogues_dir))
    if settings.telegram_staff_commands:
        from bot.staff.commands import staff_commands

        engine.staff_commands.update(staff_commands(app))
    return app


def load_flows(app: App, directory: Path | None = None) -> dict[str, Any]:
    """Every flow declared in `dialogues/` (AMI form, orientation guide), with its ports."""
    from bot.forms.ports import FormPorts
    from bot.forms.runner import load_flows as load_form_flows
    from bot.mail.fiche import register_forms
    from bot.mail.submission import MailSubmissions
    from bot.privacy import notice_values

    ports = FormPorts(
        qa=app.qa,
        submissions=MailSubmissions(app.store),
        host=app.engine,
        notice_values=lambda: notice_values(app.settings),
    )
    flows = load_form_flows(directory or DIALOGUES_DIR, ports)
    register_forms(flow.spec for flow in flows.values())  # their responses' fiches
    return flows
