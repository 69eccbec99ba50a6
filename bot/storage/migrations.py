"""Schema migrations with Alembic: `python -m bot migrate`, and the start-up check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

SCRIPT_LOCATION = Path(__file__).resolve().parent / "alembic"

NOT_MIGRATED = (
    "La base de données n'est pas à jour (schéma {current}, attendu {head}). "
    "Lancez d'abord : python -m bot migrate"
)


class DatabaseNotMigrated(RuntimeError):
    """The database schema is not at the latest migration."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to the latest schema (creates it when empty)."""
    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def ensure_migrated(engine: Engine) -> None:
    """Refuse to start on a database that is not at the latest migration."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise DatabaseNotMigrated(NOT_MIGRATED.format(current=current or "vide", head=head))
