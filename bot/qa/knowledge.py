"""Loading and checking the knowledge base (knowledge/): sources, passages, curated layer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from bot.qa.segment import Passage, segment
from bot.qa.textnorm import quote_in, quote_pieces, scorer_plain
from bot.schema.knowledge import read_knowledge_yaml

try:  # libyaml is much faster when present
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

DEFAULT_KNOWLEDGE_DIR = Path(__file__).resolve().parents[2] / "knowledge"


@dataclass(frozen=True)
class Document:
    """One of the five source texts and its provenance."""

    id: str
    title: str
    short_title: str
    publisher: str
    date: str | None
    address: str | None
    notes: str
    not_ars_bretagne: bool
    text: str = field(repr=False)
    plain: str = field(repr=False)  # scorer-normalised text, for quote checks


@dataclass(frozen=True)
class CuratedSource:
    passage_id: str
    quote: str

    @property
    def doc_id(self) -> str:
        return self.passage_id.split("#", 1)[0]


@dataclass(frozen=True)
class Topic:
    """A curated answer written from the texts, with the question variants it answers."""

    id: str
    label: str
    questions: tuple[str, ...]
    answer: str
    sources: tuple[CuratedSource, ...]
    related: tuple[str, ...] = ()
    origin: str = ""  # file it comes from
    dimensions: tuple[str, ...] = ()  # declared dimensions (funding, steps…), beside those read


@dataclass(frozen=True)
class GlossaryEntry:
    acronym: str
    expansion: str
    definition: str
    appears_in: tuple[str, ...]
    passage_id: str
    quote: str
    topic: str | None


@dataclass(frozen=True)
class ComparisonRow:
    criterion: str
    esp: str
    cpts: str
    sources: tuple[CuratedSource, ...]


@dataclass
class KnowledgeBase:
    root: Path
    documents: dict[str, Document]
    passages: dict[str, Passage]
    topics: dict[str, Topic]
    glossary: list[GlossaryEntry]
    comparison: list[ComparisonRow]
    lexicon: dict[str, Any]


def _read_yaml(path: Path) -> Any:
    """The file's data, validated by its schema (bot/schema/knowledge.py): `SchemaError`."""
    return read_knowledge_yaml(path)


def _sources(raw: list[dict]) -> tuple[CuratedSource, ...]:
    return tuple(CuratedSource(passage_id=s["passage"], quote=s["quote"]) for s in raw or [])


def load_knowledge(root: Path | None = None) -> KnowledgeBase:
    """Read knowledge/ (sources, structure, curated YAML). Raises on structural errors."""
    root = Path(root) if root is not None else DEFAULT_KNOWLEDGE_DIR
    provenance = _read_yaml(root / "sources" / "provenance.yaml")
    structure = _read_yaml(root / "structure.yaml")
    documents: dict[str, Document] = {}
    passages: dict[str, Passage] = {}
    for doc_id, meta in provenance.items():
        text = (root / "sources" / meta["file"]).read_text(encoding="utf-8")
        documents[doc_id] = Document(
            id=doc_id,
            title=meta["title"],
            short_title=meta.get("short_title") or meta["title"],
            publisher=meta.get("publisher") or "",
            date=meta.get("date"),
            address=meta.get("address"),
            notes=meta.get("notes") or "",
            not_ars_bretagne=bool(meta.get("not_ars_bretagne")),
            text=text,
            plain=scorer_plain(text),
        )
        for p in segment(doc_id, meta["title"], text, structure[doc_id]):
            if p.id in passages:
                raise ValueError(f"duplicate passage id {p.id}")
            passages[p.id] = p

    topics: dict[str, Topic] = {}
    curated = root / "curated"
    for path in sorted((curated / "topics").glob("*.yaml")):
        for item in _read_yaml(path) or []:
            topic = Topic(
                id=item["id"],
                label=item["label"],
                questions=tuple(item.get("questions") or ()),
                answer=" ".join(item["answer"].split()),
                sources=_sources(item.get("sources")),
                related=tuple(item.get("related") or ()),
                origin=path.name,
                dimensions=tuple(item.get("dimensions") or ()),
            )
            if topic.id in topics:
                raise ValueError(f"duplicate topic id {topic.id} in {path.name}")
            topics[topic.id] = topic

    # more ways of asking, per topic, in other registers (lay, SMS, jargon, own situation) and
    # by other authors: every curated/variants_*.yaml
    for extra_path in sorted(curated.glob("variants_*.yaml")):
        extra = _read_yaml(extra_path) or {}
        if not isinstance(extra, dict):
            raise ValueError(f"{extra_path.name}: a mapping topic id -> list of questions")
        for tid, questions in extra.items():
            if tid not in topics:
                raise ValueError(f"{extra_path.name}: unknown topic id {tid}")
            if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
                raise ValueError(f"{extra_path.name}: {tid} must list questions (text)")
            t = topics[tid]
            topics[tid] = replace(t, questions=t.questions + tuple(questions))

    glossary: list[GlossaryEntry] = []
    gpath = curated / "glossary.yaml"
    if gpath.exists():
        for item in _read_yaml(gpath) or []:
            glossary.append(
                GlossaryEntry(
                    acronym=item["acronym"],
                    expansion=item["expansion"],
                    definition=" ".join((item.get("definition") or "").split()),
                    appears_in=tuple(item.get("appears_in") or ()),
                    passage_id=item["passage"],
                    quote=item["quote"],
                    topic=item.get("topic"),
                )
            )
    comparison: list[ComparisonRow] = []
    cpath = curated / "comparison.yaml"
    if cpath.exists():
        for item in _read_yaml(cpath) or []:
            comparison.append(
                ComparisonRow(
                    criterion=item["criterion"],
                    esp=" ".join(item["esp"].split()),
                    cpts=" ".join(item["cpts"].split()),
                    sources=_sources(item.get("sources")),
                )
            )
    lpath = curated / "lexicon.yaml"
    lexicon = _read_yaml(lpath) if lpath.exists() else {}
    kb = KnowledgeBase(root, documents, passages, topics, glossary, comparison, lexicon or {})
    _add_glossary_topics(kb)
    return kb


def _add_glossary_topics(kb: KnowledgeBase) -> None:
    """Each acronym becomes answerable ("que veut dire FIR ?") through a generated topic."""
    for g in kb.glossary:
        a = g.acronym
        variants = (
            f"que veut dire {a}",
            f"que signifie {a}",
            f"{a} signification",
            f"définition {a}",
            f"c'est quoi {a}",
            f"{a} veut dire quoi",
            f"sigle {a}",
            g.expansion,
        )
        if g.topic and g.topic in kb.topics:
            t = kb.topics[g.topic]
            kb.topics[g.topic] = Topic(
                t.id, t.label, t.questions + variants, t.answer, t.sources, t.related, t.origin,
                t.dimensions,
            )  # fmt: skip
            continue
        answer = f"{a} : {g.expansion}."
        if g.definition:
            answer += f" {g.definition}"
        tid = "glossaire-" + re.sub(r"[^a-z0-9]+", "-", a.lower()).strip("-")
        kb.topics[tid] = Topic(
            id=tid,
            label=f"Que veut dire {a} ?",
            questions=variants,
            answer=answer,
            sources=(CuratedSource(g.passage_id, g.quote),),
            related=(),
            origin="glossary.yaml",
        )


def check_knowledge(kb: KnowledgeBase) -> list[str]:
    """Every problem of the curated layer: missing passages, quotes not verbatim, bad links."""
    problems: list[str] = []

    def check_source(where: str, src: CuratedSource) -> None:
        passage = kb.passages.get(src.passage_id)
        if passage is None:
            problems.append(f"{where}: unknown passage {src.passage_id}")
            return
        doc = kb.documents[passage.doc_id]
        if not quote_pieces(src.quote):
            problems.append(f"{where}: quote too short {src.quote!r}")
        elif not quote_in(src.quote, doc.plain):
            problems.append(f"{where}: quote not verbatim in {doc.id}: {src.quote!r}")
        elif not any(p in scorer_plain(passage.raw) for p in quote_pieces(src.quote)):
            problems.append(f"{where}: quote not in passage {src.passage_id}: {src.quote!r}")

    for t in kb.topics.values():
        if not t.sources:
            problems.append(f"topic {t.id}: no source")
        for s in t.sources:
            check_source(f"topic {t.id}", s)
        for r in t.related:
            if r not in kb.topics:
                problems.append(f"topic {t.id}: unknown related topic {r}")
    for g in kb.glossary:
        check_source(f"glossary {g.acronym}", CuratedSource(g.passage_id, g.quote))
        for d in g.appears_in:
            if d not in kb.documents:
                problems.append(f"glossary {g.acronym}: unknown document {d}")
    for row in kb.comparison:
        for s in row.sources:
            check_source(f"comparison {row.criterion}", s)
    return problems
