"""The schemas of `knowledge/`: provenance, structure and the curated layer.

Read by `bot/qa/knowledge.py` through `read_knowledge_file`: each file is validated against
its model (unknown keys refused, a topic must have an `answer`…) before the question answering
uses it. The quotes themselves are checked by `python -m bot.qa.kbtool check`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, RootModel

from bot.schema.base import Strict, load, plain


class Dimension(StrEnum):
    """What a question asks about a subject (bot/qa/intent.py)."""

    funding = "funding"
    steps = "steps"
    members = "members"
    territory = "territory"
    delay = "delay"
    count_ = "count"  # "count" would hide str.count
    legal = "legal"
    validation = "validation"
    missions = "missions"
    contact = "contact"
    definition = "definition"
    difference = "difference"


Text = str  # a non-empty French text is checked with min_length where it matters


# --------------------------------------------------------------------------- sources/
class SourceDocument(Strict):
    file: str = Field(description="fichier texte dans knowledge/sources/")
    title: str
    short_title: str | None = Field(None, description="ce que la ligne « Source : » affiche")
    publisher: str | None = None
    date: str | None = None
    address: str | None = None
    not_ars_bretagne: bool = False
    notes: str | None = None


class Provenance(RootModel[dict[str, SourceDocument]]):
    """`knowledge/sources/provenance.yaml`: document id → its provenance."""


# --------------------------------------------------------------------------- structure
class Heading(Strict):
    text: str = Field(min_length=1, description="la ligne du texte qui ouvre la section")
    key: str = Field(min_length=1, description="clé des ids de passages <doc>#<key>.<n>")
    level: int = Field(ge=1)
    title: str = Field(description="titre dans le chemin de section (« » : aucun)")
    starts: bool = False
    keep: bool = False
    hidden: bool = False


class Structure(RootModel[dict[str, list[Heading]]]):
    """`knowledge/structure.yaml`: document id → its headings, in order."""


# --------------------------------------------------------------------------- curated
class QuotedSource(Strict):
    passage: str = Field(min_length=1, description="<doc>#<section>.<n> (ou <doc>#? + kbtool fill)")
    quote: str = Field(min_length=1, description="copie exacte du texte (« … » pour les sauts)")


class Topic(Strict):
    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$", description="stable")
    label: str = Field(min_length=1, description="question courte affichée dans les boutons")
    questions: list[str] = Field(default_factory=list, description="façons de la poser")
    answer: str = Field(min_length=1, description="réponse courte, vouvoiement, < 600 caractères")
    sources: list[QuotedSource] = Field(default_factory=list)
    related: list[str] = Field(default_factory=list, description="ids de sujets voisins")
    dimensions: list[Dimension] = Field(
        default_factory=list, description="ce que le sujet traite, en plus de ce qui est lu"
    )


class TopicsFile(RootModel[list[Topic]]):
    """`knowledge/curated/topics/*.yaml`: a list of curated answers."""


class GlossaryEntry(Strict):
    acronym: str = Field(min_length=1)
    expansion: str = Field(min_length=1)
    definition: str | None = None
    appears_in: list[str] = Field(default_factory=list)
    passage: str = Field(min_length=1)
    quote: str = Field(min_length=1)
    topic: str | None = Field(None, description="le sujet qui explique le sigle, s'il existe")


class Glossary(RootModel[list[GlossaryEntry]]):
    """`knowledge/curated/glossary.yaml`."""


class ComparisonRow(Strict):
    criterion: str
    esp: str
    cpts: str
    sources: list[QuotedSource] = Field(default_factory=list)


class Comparison(RootModel[list[ComparisonRow]]):
    """`knowledge/curated/comparison.yaml`: the ESP / CPTS table, row by row."""


class Concept(Strict):
    weight: float = 1.0
    phrases: list[str] = Field(default_factory=list)


class Lexicon(Strict):
    """`knowledge/curated/lexicon.yaml`."""

    concepts: dict[str, Concept] = Field(default_factory=dict)
    core_terms: list[str] = Field(default_factory=list)
    strong_terms: list[str] = Field(default_factory=list)
    generic_terms: list[str] = Field(default_factory=list)
    off_domain_terms: list[str] = Field(default_factory=list)
    light_words: list[str] = Field(default_factory=list)
    role_nouns: list[str] = Field(default_factory=list)
    money_nouns: list[str] = Field(default_factory=list)
    outside_entities: list[str] = Field(default_factory=list)


class VariantsExtra(RootModel[dict[str, list[str]]]):
    """`knowledge/curated/variants_*.yaml`: topic id → more ways of asking it."""


# --------------------------------------------------------------------------- files
# relative path (or pattern) → (model, schema name, what an empty file stands for)
KNOWLEDGE_FILES: dict[str, tuple[type[BaseModel], str, Any]] = {
    "sources/provenance.yaml": (Provenance, "provenance", None),
    "structure.yaml": (Structure, "structure", None),
    "curated/topics/*.yaml": (TopicsFile, "topics", []),
    "curated/glossary.yaml": (Glossary, "glossary", []),
    "curated/comparison.yaml": (Comparison, "comparison", []),
    "curated/lexicon.yaml": (Lexicon, "lexicon", {}),
    "curated/variants_*.yaml": (VariantsExtra, "variants_extra", {}),
}


def model_for(path: Path, root: Path) -> tuple[type[BaseModel], str, Any] | None:
    """The model of a file of `root` (knowledge/), by its place; None for an unknown file."""
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    for pattern, entry in KNOWLEDGE_FILES.items():
        if relative.match(pattern) and len(relative.parts) == len(Path(pattern).parts):
            return entry
    return None


def knowledge_files(root: Path) -> list[Path]:
    """Every YAML file of `root` that has a schema, in a stable order."""
    found: list[Path] = []
    for pattern in KNOWLEDGE_FILES:
        found += sorted(p for p in root.glob(pattern) if p.is_file())
    return found


def read_knowledge_file(path: Path, root: Path) -> Any:
    """The file's data once validated by its model (`SchemaError` otherwise)."""
    entry = model_for(path, root)
    if entry is None:
        raise ValueError(f"{path}: no schema for this file")  # a programming error
    model, _name, empty = entry
    return plain(load(model, path, empty))


def read_knowledge_yaml(path: Path) -> Any:
    """Like `read_knowledge_file`, the kind of file told by the end of its path
    (`…/sources/provenance.yaml`, `…/curated/topics/x.yaml`…)."""
    parts = path.parts
    for pattern, (model, _name, empty) in sorted(
        KNOWLEDGE_FILES.items(), key=lambda item: -len(Path(item[0]).parts)
    ):
        wanted = Path(pattern).parts
        if len(parts) >= len(wanted) and Path(*parts[-len(wanted) :]).match(pattern):
            return plain(load(model, path, empty))
    raise ValueError(f"{path}: no schema for this file")  # a programming error
