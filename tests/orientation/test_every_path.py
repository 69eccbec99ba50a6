"""Every combination of answers ends on an outcome, after at most six questions."""

from __future__ import annotations

import itertools
from typing import Any

from tests.conftest import Chat
from tests.orientation.guide import MAX_QUESTIONS, QUESTIONS, VERDICTS, values_of, walk

_user_ids = itertools.count(1000)
PHONE_SIZED = 900


def explore(app: Any, answers: dict[str, Any], found: list[tuple[dict[str, Any], str, list]]):
    """Depth-first over the answers the guide actually asks for (a fresh user per path)."""
    chat = Chat(app, user_id=next(_user_ids))
    try:
        outcome, asked = walk(chat, answers)
    except KeyError as missing:
        step = QUESTIONS[missing.args[0]]
        for value in values_of(step):
            explore(app, {**answers, step.id: value}, found)
        return
    longest = max(len(r.text) for r in chat.replies)
    assert longest <= PHONE_SIZED, (answers, outcome, chat.text)  # reasons and sources included
    found.append((answers, outcome, asked))


def test_every_answer_combination_ends_on_an_outcome_within_six_questions(app):
    found: list[tuple[dict[str, Any], str, list]] = []
    explore(app, {}, found)

    assert len(found) > 100  # 3 stages × (patientèle, population, « je ne sais pas ») × …
    for answers, outcome, asked in found:
        assert outcome in VERDICTS, (answers, outcome)
        assert len(asked) <= MAX_QUESTIONS, (answers, asked)
        assert set(asked) == set(answers), (answers, asked)  # nothing asked for nothing
    assert {outcome for _, outcome, _ in found} == set(VERDICTS)


def test_the_longest_path_is_exactly_six_questions_and_the_shortest_two(app):
    found: list[tuple[dict[str, Any], str, list]] = []
    explore(app, {"stage": "reflection"}, found)
    lengths = [len(asked) for _, _, asked in found]
    assert max(lengths) == MAX_QUESTIONS
    assert min(lengths) == 2  # « je ne sais pas encore » pour qui : s'informer d'abord
