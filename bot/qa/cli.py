"""`ask --json`: one question in, one JSON object out."""

from __future__ import annotations

import json
from typing import IO, Any

from bot.qa.intent import QAContext
from bot.qa.service import QAAnswer, QAService

MAX_THREADS = 10_000  # conversations remembered by one `ask --json` process


def ask_json(service: QAService, question: str) -> dict[str, Any]:
    """The `ask --json` object for one question."""
    return answer_json(service.answer(question))


def answer_json(a: QAAnswer) -> dict[str, Any]:
    """The `ask --json` object for one answer."""
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
    threads: dict[str, QAContext] = {}
    for line in stdin:
        question, thread = parse_line(line.rstrip("\r\n"))
        if thread is None:
            reply = service.answer(question)
        else:
            reply, threads[thread] = service.reply(question, threads.pop(thread, None))
            while len(threads) > MAX_THREADS:
                threads.pop(next(iter(threads)))
        stdout.write(json.dumps(answer_json(reply), ensure_ascii=False) + "\n")
        stdout.flush()
    return 0


def parse_line(line: str) -> tuple[str, str | None]:
    """A plain question, or a JSON object `{"q": "...", "thread": "<id>"}` (the lines of one
    thread are one conversation). Anything else, malformed JSON included, is plain text."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return line, None
    try:
        data = json.loads(stripped)
    except ValueError:
        return line, None
    if not isinstance(data, dict) or not isinstance(data.get("q"), str):
        return line, None
    thread = data.get("thread")
    if thread is None or isinstance(thread, bool) or not isinstance(thread, str | int):
        return data["q"], None
    return data["q"], str(thread)
