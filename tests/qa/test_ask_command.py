"""The `ask --json` contract: one JSON object per question, one per line on standard input."""

from __future__ import annotations

import io
import json

from bot.qa import QAService, ask_json, run_ask


class _CountingOut(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_ask_json_has_the_contract_fields(service: QAService) -> None:
    obj = ask_json(service, "Qu'est-ce qu'une PTA ?")
    assert set(obj) >= {"answer", "sources", "abstained", "score"}
    assert isinstance(obj["answer"], str) and isinstance(obj["abstained"], bool)
    assert isinstance(obj["score"], float) and 0.0 <= obj["score"] <= 1.0
    for src in obj["sources"]:
        assert set(src) >= {"id", "title", "quote"}
    json.dumps(obj)


def test_run_ask_answers_one_line_per_question_and_flushes_each_time() -> None:
    stdin = io.StringIO("Qu'est-ce qu'une ESP ?\n\nbonjour\nmétéo à Brest ?\n")
    out = _CountingOut()
    assert run_ask(None, stdin, out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and out.flushes >= 4
    replies = [json.loads(line) for line in lines]
    assert not replies[0]["abstained"] and replies[0]["sources"][0]["id"]
    assert all(r["abstained"] for r in replies[1:])


def test_run_ask_with_a_question_argument() -> None:
    out = io.StringIO()
    assert run_ask("Que signifie FIR ?", io.StringIO(""), out) == 0
    reply = json.loads(out.getvalue())
    assert "fonds d'intervention" in reply["answer"]
