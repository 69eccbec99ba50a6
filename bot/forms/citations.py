"""The « Sources » line of a text: the documents and sections it cites, phone-sized."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from bot.forms.spec import FormSpec

_NUMBERED = re.compile(r"^([IVXL]+|[A-Z]|\d{1,2})\s*\.\s*[–—-]\s*(.+)$")


class PassageLike(Protocol):
    """A passage of the knowledge base, as a citation reads it."""

    @property
    def doc_id(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def section(self) -> str: ...


def short_section(section: str) -> str:
    """« I. – ESP et CPTS › A. – Les ESP › Objet… » → « I. A. Les ESP »; else the last part."""
    parts = [p.strip() for p in section.split("›") if p.strip()]
    numbered = [m for m in (_NUMBERED.match(p) for p in parts) if m]
    if numbered:
        return " ".join(f"{m.group(1)}." for m in numbered) + " " + numbered[-1].group(2)
    return parts[-1] if parts else ""


def cite(qa: object, sources: Iterable[str], names: dict[str, str]) -> list[tuple[str, list[str]]]:
    """(document name, its cited sections) in order of first citation, deduplicated.

    `qa` is the question answering (its `passage()` and its knowledge base's documents), or
    anything lacking them: the passage ids then name the documents."""
    cited: dict[str, tuple[str, list[str]]] = {}
    documents = getattr(getattr(qa, "kb", None), "documents", None) or {}
    find = getattr(qa, "passage", None)
    for passage_id in sources:
        passage: PassageLike | None = find(passage_id) if callable(find) else None
        doc_id = getattr(passage, "doc_id", None) or passage_id.partition("#")[0]
        if doc_id not in cited:
            document = documents.get(doc_id)
            name = (
                names.get(doc_id)
                or getattr(document, "short_title", "")
                or getattr(passage, "title", "")
                or doc_id
            )
            cited[doc_id] = (name, [])
        section = short_section(getattr(passage, "section", "") or "")
        if section and section not in cited[doc_id][1]:
            cited[doc_id][1].append(section)
    return list(cited.values())


class Citations:
    """A form's « Sources » lines, computed once per list of passages."""

    def __init__(self, spec: FormSpec, qa: object) -> None:
        self.spec = spec
        self.qa = qa
        self._lines: dict[tuple[tuple[str, ...], bool], str] = {}

    def line(self, sources: list[str], detailed: bool = True, qa: object = None) -> str:
        """The « Sources » line of `sources` (passage ids), one entry per document.

        `qa` stands in for the form's question answering when it has none (unit tests)."""
        key = (tuple(sources), detailed)
        line = self._lines.get(key)
        if line is None:
            spec = self.spec
            entries = [
                spec.t("citation", document=name, sections=" ; ".join(sections))
                if sections and detailed
                else spec.t("citation_document", document=name)
                for name, sections in cite(self.qa or qa, sources, spec.documents)
            ]
            line = spec.t("sources", citations="\n".join(entries), ids="; ".join(entries))
            self._lines[key] = line
        return line

    def with_sources(self, text: str, sources: list[str], qa: object = None) -> str:
        """`text` and its « Sources » line: sections if it fits a phone, else documents only."""
        if not sources:
            return text
        cited = text
        for detailed in (True, False):
            cited = text + "\n\n" + self.line(sources, detailed, qa)
            if len(cited) <= self.spec.max_chars:
                return cited
        return cited
