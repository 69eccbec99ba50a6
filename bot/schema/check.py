"""Checking whole directories (`dialogues/`, `knowledge/`) and exporting the JSON Schemas.

`check_dialogues` and `check_knowledge` return French problems (empty when all is well); the
bot refuses to start on any (`bot/app.py`), `python -m bot lint` prints them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bot.schema import dialogues as dialogue_schema
from bot.schema import knowledge as knowledge_schema
from bot.schema.base import SchemaError, load, plain, shown_path
from bot.schema.form import FormFile, kind_problems
from bot.schema.menu import MenuTexts

SCHEMA_DIR = "schema"


def is_knowledge_dir(directory: Path) -> bool:
    return (directory / "sources" / "provenance.yaml").exists() or (
        directory / "structure.yaml"
    ).exists()


# --------------------------------------------------------------------------- dialogues
def check_dialogues(directory: Path) -> tuple[list[str], dict[Path, dict[str, Any]]]:
    """Schema problems of every dialogue file, and the valid flows' data by file."""
    problems: list[str] = []
    flows: dict[Path, dict[str, Any]] = {}
    files = dialogue_schema.dialogue_files(directory)
    if not files:
        return [f"{shown_path(directory)} : aucun fichier .yaml"], {}
    names: dict[str, Path] = {}
    for path in files:
        try:
            data = dialogue_schema.read_dialogue(path)
        except SchemaError as exc:
            problems += exc.problems
            continue
        if path.name == dialogue_schema.MENU_FILE:
            continue
        flows[path] = data
        problems += [f"{shown_path(path)} : {p}" for p in kind_problems(data)]
        if data["flow"] in names:
            problems.append(
                f"{shown_path(path)} : flow — parcours « {data['flow']} » déjà déclaré "
                f"par {names[data['flow']].name}"
            )
        names[data["flow"]] = path
    return problems, flows


# --------------------------------------------------------------------------- knowledge
def check_knowledge(root: Path) -> list[str]:
    """Schema problems of every knowledge file, then the links between them."""
    problems: list[str] = []
    data: dict[Path, Any] = {}
    for required in ("sources/provenance.yaml", "structure.yaml"):
        if not (root / required).exists():
            problems.append(f"{shown_path(root / required)} : fichier manquant")
    for path in knowledge_schema.knowledge_files(root):
        try:
            data[path] = knowledge_schema.read_knowledge_file(path, root)
        except SchemaError as exc:
            problems += exc.problems
    if problems:
        return problems
    return _knowledge_links(root, data)


def _knowledge_links(root: Path, data: dict[Path, Any]) -> list[str]:
    problems: list[str] = []
    provenance_path = root / "sources" / "provenance.yaml"
    structure_path = root / "structure.yaml"
    provenance: dict[str, Any] = data.get(provenance_path, {})
    structure: dict[str, Any] = data.get(structure_path, {})
    for doc_id, meta in provenance.items():
        if not (root / "sources" / meta["file"]).is_file():
            problems.append(
                f"{shown_path(provenance_path)} : {doc_id}.file — fichier introuvable "
                f"« {meta['file']} » dans {shown_path(root / 'sources')}"
            )
        if doc_id not in structure:
            problems.append(
                f"{shown_path(structure_path)} : {doc_id} — document sans découpage "
                "(chaque document de provenance.yaml doit avoir ses titres ici)"
            )
    for doc_id in structure:
        if doc_id not in provenance:
            problems.append(
                f"{shown_path(structure_path)} : {doc_id} — document inconnu de provenance.yaml"
            )
    topics: dict[str, Path] = {}
    related: list[tuple[Path, str, int, str]] = []
    for path in sorted(root.glob("curated/topics/*.yaml")):
        for index, topic in enumerate(data.get(path) or []):
            if topic["id"] in topics:
                problems.append(
                    f"{shown_path(path)} : [{index}].id — sujet « {topic['id']} » déjà défini "
                    f"dans {topics[topic['id']].name}"
                )
            topics.setdefault(topic["id"], path)
            related += [(path, topic["id"], index, r) for r in topic.get("related") or []]
    glossary_path = root / "curated" / "glossary.yaml"
    known = set(topics) | {_glossary_topic(g["acronym"]) for g in data.get(glossary_path) or []}
    for path, tid, index, other in related:
        if other not in known:
            problems.append(
                f"{shown_path(path)} : [{index}].related — sujet inconnu « {other} » "
                f"(dans « {tid} »)"
            )
    for index, entry in enumerate(data.get(glossary_path) or []):
        if entry.get("topic") and entry["topic"] not in topics:
            problems.append(
                f"{shown_path(glossary_path)} : [{index}].topic — sujet inconnu "
                f"« {entry['topic']} »"
            )
        for doc in entry.get("appears_in") or []:
            if doc not in provenance:
                problems.append(
                    f"{shown_path(glossary_path)} : [{index}].appears_in — document inconnu "
                    f"« {doc} »"
                )
    for extra_path in sorted((root / "curated").glob("variants_*.yaml")):
        for tid in data.get(extra_path) or {}:
            if tid not in topics:
                problems.append(f"{shown_path(extra_path)} : {tid} — sujet inconnu")
    return problems


def _glossary_topic(acronym: str) -> str:
    import re

    return "glossaire-" + re.sub(r"[^a-z0-9]+", "-", acronym.lower()).strip("-")


# --------------------------------------------------------------------------- JSON Schema
def json_schemas() -> dict[str, dict[str, Any]]:
    """Relative path (under the repository) → JSON Schema, for every kind of file."""
    out: dict[str, dict[str, Any]] = {
        f"dialogues/{SCHEMA_DIR}/form.schema.json": _schema(FormFile, "form"),
        f"dialogues/{SCHEMA_DIR}/menu.schema.json": _schema(MenuTexts, "menu"),
    }
    for model, name, _ in knowledge_schema.KNOWLEDGE_FILES.values():
        out[f"knowledge/{SCHEMA_DIR}/{name}.schema.json"] = _schema(model, name)
    return out


# What an editor shows for each kind of file (the models' docstrings are for developers).
DESCRIPTIONS = {
    "form": "Parcours du bot (formulaire de l'AMI, guide d'orientation) : étapes, textes, "
    "messages d'erreur. Voir docs/forms.md.",
    "menu": "Textes du menu principal et des réponses générales du bot.",
    "provenance": "Provenance des textes sources : id du document → fichier, titre, éditeur, date.",
    "structure": "Découpage de chaque texte source en passages : ses titres, dans l'ordre.",
    "topics": "Réponses rédigées (sujets) : questions, réponse, sources citées mot pour mot.",
    "glossary": "Sigles des textes : développé, définition, passage qui les cite.",
    "comparison": "Tableau ESP / CPTS de l'annexe de l'instruction, ligne par ligne.",
    "lexicon": "Lexique de la recherche : concepts (synonymes, sigles) et listes de mots.",
    "variants_extra": "Autres façons de poser chaque sujet : id du sujet → liste de questions.",
}


def _schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    schema = _for_editors(model.model_json_schema(by_alias=True))
    schema["description"] = DESCRIPTIONS[name]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _for_editors(schema: dict[str, Any]) -> dict[str, Any]:
    """Without pydantic's English titles and the models' English docstrings (the descriptions
    of `$defs`): only the French descriptions of the fields remain for an editor to show."""

    def strip(node: Any) -> Any:
        if isinstance(node, list):
            return [strip(item) for item in node]
        if isinstance(node, dict):
            return {
                k: (strip(v) if k != "properties" else {n: strip(p) for n, p in v.items()})
                for k, v in node.items()
                if k != "title" or not isinstance(v, str)
            }
        return node

    out = strip(schema)
    for definition in out.get("$defs", {}).values():
        definition.pop("description", None)
    return out


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_schemas(root: Path) -> list[Path]:
    """Write every JSON Schema under `root` (the repository); the files that changed."""
    written: list[Path] = []
    for relative, schema in json_schemas().items():
        path = root / relative
        text = schema_text(schema)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(root: Path) -> list[str]:
    """The committed JSON Schemas that differ from the models (relative paths)."""
    stale = []
    for relative, schema in json_schemas().items():
        path = root / relative
        if not path.exists() or path.read_text(encoding="utf-8") != schema_text(schema):
            stale.append(relative)
    return stale


__all__ = [
    "check_dialogues",
    "check_knowledge",
    "json_schemas",
    "load",
    "plain",
    "stale_schemas",
    "write_schemas",
]
