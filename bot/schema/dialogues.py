"""Which model reads which file of `dialogues/`, and the validated reads the engine uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bot.schema.base import load, plain
from bot.schema.form import FormFile
from bot.schema.length import expand_length
from bot.schema.menu import MenuTexts

MENU_FILE = "menu.yaml"


def dialogue_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.is_file())


def model_for(path: Path) -> tuple[type[BaseModel], str]:
    """`menu.yaml` holds the menu texts; every other dialogue file is a flow."""
    if path.name == MENU_FILE:
        return MenuTexts, "menu"
    return FormFile, "form"


def read_form(path: Path) -> dict[str, Any]:
    """A flow file's data once validated (`SchemaError` otherwise), with the form's length
    written in its prompts (`{length.…}`, bot/schema/length.py)."""
    form = load(FormFile, path, empty={})
    return expand_length(form, plain(form))


def read_menu(path: Path) -> dict[str, Any]:
    """`menu.yaml`'s texts once validated (`SchemaError` otherwise)."""
    return plain(load(MenuTexts, path, empty={}))


def read_dialogue(path: Path) -> dict[str, Any]:
    model, _ = model_for(path)
    data = load(model, path, empty={})
    return expand_length(data, plain(data)) if isinstance(data, FormFile) else plain(data)
