"""Texts the user reads, loaded from `dialogues/*.yaml` (never hard-coded in Python)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.config import DIALOGUES_DIR
from bot.schema.dialogues import read_menu


class Texts:
    """Dotted-path access to a YAML file of texts: `texts("buttons.menu")`."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    @classmethod
    def load(cls, path: Path) -> Texts:
        """Read `menu.yaml` through its schema (bot/schema/menu.py): `SchemaError` if broken."""
        return cls(read_menu(path))

    def __call__(self, key: str, **values: Any) -> str:
        node: Any = self._data
        for part in key.split("."):
            node = node[part]
        text = str(node)
        return text.format(**values) if values else text

    def get(self, key: str, default: str = "") -> str:
        try:
            return self(key)
        except (KeyError, TypeError):
            return default


@lru_cache(maxsize=8)
def menu_texts(directory: Path = DIALOGUES_DIR) -> Texts:
    return Texts.load(directory / "menu.yaml")
