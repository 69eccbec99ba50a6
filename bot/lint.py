"""`python -m bot lint [DIR …] [--write-schemas]`: schemas first, then the cross-checks.

A directory holding `structure.yaml` or `sources/provenance.yaml` is a knowledge base; any other
is a dialogue directory: every file is checked against its model, then the flows that pass go
through the dialogue linter of `bot/forms/lint.py` (targets, reachability, validators…).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bot.forms.lint import lint_spec
from bot.forms.spec import FormSpec
from bot.schema import SchemaError
from bot.schema import dialogues as dialogue_schema
from bot.schema.base import shown_path
from bot.schema.check import (
    check_dialogues,
    check_knowledge,
    is_knowledge_dir,
    stale_schemas,
    write_schemas,
)


def lint_dialogues(directory: Path, other_flows: set[str] | None = None) -> list[str]:
    """Schema problems, then the dialogue linter's, of every file of `directory`."""
    problems, flows = check_dialogues(directory)
    known = set(other_flows or ()) | {str(data["flow"]) for data in flows.values()}
    for path, data in flows.items():
        spec = FormSpec(data, path)
        problems += [f"{shown_path(path)} : {p}" for p in lint_spec(spec, known)]
    return problems


def lint_directory(directory: Path, other_flows: set[str] | None = None) -> list[str]:
    """Problems in every dialogue file of `directory` (`other_flows` exist elsewhere)."""
    return lint_dialogues(directory, other_flows)


# --------------------------------------------------------------------------- startup
def validate_startup(dialogues_dir: Path, knowledge_dir: Path | None) -> None:
    """What the bot checks before starting: every dialogue file (its schema, then the
    dialogue linter: targets, reachability…) and the knowledge files."""
    problems = lint_dialogues(dialogues_dir)
    menu = dialogues_dir / dialogue_schema.MENU_FILE
    if not menu.exists():
        problems.append(f"{shown_path(menu)} : fichier manquant (les textes du menu)")
    if knowledge_dir is not None:
        problems += check_knowledge(knowledge_dir)
    if problems:
        raise SchemaError(problems)


def lint_paths(directories: Sequence[Path]) -> list[str]:
    problems: list[str] = []
    flows: set[str] = set()
    dialogue_dirs = [d for d in directories if not is_knowledge_dir(d)]
    for directory in dialogue_dirs:  # a flow may switch to one of another directory
        _, found = check_dialogues(directory)
        flows |= {str(data["flow"]) for data in found.values()}
    for directory in directories:
        if not directory.is_dir():
            problems.append(f"{shown_path(directory)} : dossier introuvable")
        elif is_knowledge_dir(directory):
            problems += check_knowledge(directory)
        else:
            problems += lint_dialogues(directory, flows)
    return problems


def run_lint(
    directories: Sequence[str] | None,
    write: bool = False,
    out: TextIO | None = None,
) -> int:
    """The command: 0 when every file is fine, 1 with the problems in French otherwise."""
    from bot.config import DIALOGUES_DIR, ROOT

    out = out or sys.stdout
    if write:
        for path in write_schemas(ROOT):
            print(f"écrit : {shown_path(path)}", file=out)
    paths = [Path(d) for d in directories] if directories else [DIALOGUES_DIR, ROOT / "knowledge"]
    problems = lint_paths(paths)
    if not directories:
        problems += [
            f"{p} : schéma JSON périmé (lancez `python -m bot lint --write-schemas`)"
            for p in stale_schemas(ROOT)
        ]
    for problem in problems:
        print(problem, file=out)
    if problems:
        print(f"\n{len(problems)} problème(s) trouvé(s).", file=out)
        return 1
    print(f"Tout est conforme : {', '.join(shown_path(p) for p in paths)}.", file=out)
    return 0
