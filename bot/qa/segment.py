"""Cut the source texts into passages along their own structure (see knowledge/structure.yaml)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ITEM_RE = re.compile(r"^\s*(?:[•·✓]|-(?=\s)|\d{1,2}\.(?=\s))\s*")
_NUMBERED_RE = re.compile(r"^\s*(\d{1,2})\.\s")
_TAG_RE = re.compile(r"<[^>]+>")
_SUP_RE = re.compile(r"\s*\^(?:\{([^}]*)\}|(\w+))")
_SLUG_RE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Passage:
    """One paragraph, list item or table row of a source text."""

    id: str  # "<doc_id>#<section key>.<n>"
    doc_id: str
    title: str  # the document title
    section: (
        str  # section path, e.g. "I. – ESP et CPTS › B. – Les CPTS › Objet, initiative et création"
    )
    text: str  # display text (Markdown emphasis, HTML tags and tabs cleaned)
    raw: str = field(repr=False, default="")  # the text exactly as in the source
    context: str = field(repr=False, default="")  # lead paragraph / parent item (for indexing)
    hidden: bool = False  # page furniture: never used to answer


@dataclass
class _Heading:
    text: str
    key: str
    level: int
    title: str
    starts: bool = False
    keep: bool = False
    hidden: bool = False


def _slug(text: str) -> str:
    from bot.qa.textnorm import strip_accents

    return _SLUG_RE.sub("-", strip_accents(text)).strip("-")[:40].strip("-")


def display_text(raw: str) -> str:
    """Human-readable version of a source fragment."""
    text = _SUP_RE.sub(lambda m: m.group(1) or m.group(2), raw)
    text = _TAG_RE.sub(" ", text)
    text = text.replace("\\*", "*").replace("**", "")
    text = re.sub(r"\*([^*\n]+)\*", r"\1", text)
    if "\t" in text:
        cells = [re.sub(r"\s+", " ", c).strip() for c in text.split("\t")]
        text = " | ".join(c for c in cells if c)
    if _ITEM_RE.match(raw):
        text = re.sub(r"^\s*(?:[-•·✓]\s*)+(?:o\s+(?=[a-z]\)))?", "", text)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\s*\n\s*", " ", text)
    text = re.sub(r"\s+([,.])", r"\1", text)
    return text.strip()


def _heading_key(line: str) -> str:
    """Line as compared with the spec: trimmed, one kind of apostrophe, spaces collapsed."""
    return re.sub(r"\s+", " ", line.replace("\u2019", "'").replace("\u00a0", " ")).strip()


def segment(doc_id: str, title: str, text: str, spec: list[dict]) -> list[Passage]:
    """Split `text` into passages following the ordered heading `spec`.

    Raises ValueError when a heading of the spec is not found, so a changed source text is
    noticed at load time (and by the tests) instead of silently producing other ids.
    """
    headings = [_Heading(**h) for h in spec]
    lines = text.split("\n")
    # 1. walk the lines: headings open sections; blank lines close blocks
    sections: list[tuple[list[_Heading], list[list[str]]]] = []
    stack: list[_Heading] = []
    blocks: list[list[str]] = []
    current: list[str] = []
    nxt = 0

    def flush() -> None:
        nonlocal current
        if current:
            blocks.append(current)
            current = []

    for line in lines:
        stripped = _heading_key(line)
        h = headings[nxt] if nxt < len(headings) else None
        wanted = _heading_key(h.text) if h is not None else ""
        if h is not None and (
            (h.starts and stripped.startswith(wanted)) or (not h.starts and stripped == wanted)
        ):
            flush()
            if stack or blocks:
                sections.append((list(stack), blocks))
            blocks = []
            stack = [s for s in stack if s.level < h.level] + [h]
            nxt += 1
            if h.keep:
                current.append(line)
            continue
        if not stripped:
            flush()
            continue
        current.append(line)
    flush()
    sections.append((list(stack), blocks))
    if nxt < len(headings):
        raise ValueError(f"{doc_id}: heading not found in the source: {headings[nxt].text!r}")

    # 2. blocks -> paragraphs and items
    passages: list[Passage] = []
    for stack_, blocks_ in sections:
        if not stack_:
            key, path, hidden = "debut", "", False
        else:
            key = stack_[-1].key
            path = " › ".join(h.title for h in stack_ if h.title)
            hidden = any(h.hidden for h in stack_) or not path
        units = _units(blocks_)
        n = 0
        used: set[str] = set()
        for raw, context in units:
            shown = display_text(raw)
            if not re.search(r"[A-Za-zÀ-ÿ0-9]", shown):
                continue
            m = _NUMBERED_RE.match(raw)
            if "\t" in raw:
                cells = raw.split("\t")
                if not cells[0].strip():
                    suffix = "entete"
                else:
                    suffix = next((_slug(c) for c in cells if _slug(c)), "ligne")
            elif m:
                suffix = f"n{m.group(1)}"
            else:
                n += 1
                suffix = str(n)
            base, k = suffix, 2
            while suffix in used:
                suffix = f"{base}-{k}"
                k += 1
            used.add(suffix)
            passages.append(
                Passage(
                    id=f"{doc_id}#{key}.{suffix}",
                    doc_id=doc_id,
                    title=title,
                    section=path,
                    text=shown,
                    raw=raw,
                    context=display_text(context) if context else "",
                    hidden=hidden,
                )
            )
    return passages


def _units(blocks: list[list[str]]) -> list[tuple[str, str]]:
    """Paragraphs, list items and table rows of a section, each with its lead context."""
    units: list[tuple[str, str]] = []
    lead = ""
    pending_merge = False
    for block in blocks:
        paragraph: list[str] = []
        item: list[str] = []
        parent = ""
        parent_indent = -1

        def close_paragraph() -> None:
            nonlocal paragraph, lead, pending_merge
            if paragraph:
                text = "\n".join(paragraph)
                if pending_merge and units and text.strip()[:1].islower():
                    prev, ctx = units.pop()
                    text = prev + "\n\n" + text
                    units.append((text, ctx))
                else:
                    units.append((text, ""))
                lead = text
                pending_merge = not re.search(r"[.:;?!»)]\s*$", text)
                paragraph = []

        def close_item(parent_text: str) -> None:
            nonlocal item, pending_merge
            if item:
                ctx = "\n".join(x for x in (lead, parent_text) if x)
                units.append(("\n".join(item), ctx))
                item = []
                pending_merge = False

        for line in block:
            if "\t" in line:
                close_paragraph()
                close_item(parent)
                units.append((line, lead))
                continue
            if _ITEM_RE.match(line) and not line.strip().startswith("**"):
                close_paragraph()
                indent = len(line) - len(line.lstrip())
                previous = item[0] if item else ""
                close_item(parent)
                if previous:
                    prev_indent = len(previous) - len(previous.lstrip())
                    if indent > prev_indent:
                        parent, parent_indent = previous, prev_indent
                    elif indent <= parent_indent:
                        parent, parent_indent = "", -1
                item = [line]
            elif item:
                item.append(line)
            else:
                paragraph.append(line)
        close_paragraph()
        close_item(parent)
    return units
