"""Maintenance tool for the curated layer.

python -m bot.qa.kbtool check            # every quote verbatim, every passage id known
python -m bot.qa.kbtool passages [TEXT]  # list passage ids (optionally filtered)
python -m bot.qa.kbtool find "QUOTE"     # which passage holds this quote
python -m bot.qa.kbtool fill FILE.yaml   # replace "passage: <doc>#?" by the id found
                                         # from the quote on the next line
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bot.qa.knowledge import KnowledgeBase, check_knowledge, load_knowledge
from bot.qa.textnorm import quote_pieces, scorer_plain


def find_passages(kb: KnowledgeBase, quote: str, doc_id: str | None = None) -> list[str]:
    pieces = quote_pieces(quote)
    if not pieces:
        return []
    out = []
    for p in kb.passages.values():
        if doc_id and p.doc_id != doc_id:
            continue
        if pieces[0] in scorer_plain(p.raw):
            out.append(p.id)
    return out


_FILL_RE = re.compile(
    r"passage: (?P<doc>[a-z0-9-]+)#\?\n(?P<indent>\s*)quote: (?P<q>\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*')"
)


def fill(kb: KnowledgeBase, path: Path) -> int:
    import yaml

    text = path.read_text(encoding="utf-8")
    missing = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal missing
        quote = yaml.safe_load(m.group("q"))
        ids = find_passages(kb, quote, m.group("doc"))
        if len(ids) != 1:
            missing += 1
            print(f"?? {m.group('doc')}: {len(ids)} passages for {quote!r}: {ids}")
            return m.group(0)
        return f"passage: {ids[0]}\n{m.group('indent')}quote: {m.group('q')}"

    path.write_text(_FILL_RE.sub(repl, text), encoding="utf-8")
    return missing


def main(argv: list[str]) -> int:
    kb = load_knowledge()
    cmd = argv[0] if argv else "check"
    if cmd == "check":
        problems = check_knowledge(kb)
        for problem in problems:
            print(problem)
        print(f"{len(kb.passages)} passages, {len(kb.topics)} topics, {len(problems)} problems")
        return 1 if problems else 0
    if cmd == "passages":
        needle = argv[1].lower() if len(argv) > 1 else ""
        for p in kb.passages.values():
            if needle in p.id.lower() or needle in p.text.lower():
                print(f"{p.id}\t{p.section}\t{p.text[:100]}")
        return 0
    if cmd == "find":
        print("\n".join(find_passages(kb, argv[1], argv[2] if len(argv) > 2 else None)))
        return 0
    if cmd == "fill":
        return 1 if sum(fill(kb, Path(f)) for f in argv[1:]) else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
