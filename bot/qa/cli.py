"""`ask --json`: one question in, one JSON object out."""

from __future__ import annotations

import json
from typing import IO, Any

from bot.qa.service import QAService


def ask_json(service: QAService, question: str) -> dict[str, Any]:
    """The `ask --json` object for one question."""
    a = service.answer(question)
    return {
        "answer": a.text,
        "sources": [
            {"id": s.id, "title": s.title, "quote": s.quote, "section": s.section}
            for s in a.sources
        ],
        "abstained": a.abstained,
        "score": a.score,
        "kind": a.kind,
    }


def run_ask(argv_question: str | None, stdin: IO[str], stdout: IO[str]) -> int:
    """Answer `argv_question`, or every line of `stdin` (one JSON object per line, flushed)."""
    service = QAService.load()
    if argv_question is not None:
        stdout.write(json.dumps(ask_json(service, argv_question), ensure_ascii=False) + "\n")
        stdout.flush()
        return 0
    for line in stdin:
        question = line.rstrip("\r\n")
        stdout.write(json.dumps(ask_json(service, question), ensure_ascii=False) + "\n")
        stdout.flush()
    return 0
