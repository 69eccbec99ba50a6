"""The length the introduction announces is computed from the form and matches real walks."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.config import DIALOGUES_DIR
from bot.lint import lint_paths
from bot.schema.base import load
from bot.schema.form import FormFile
from bot.schema.length import about, count_messages, form_length, length_values
from tests.forms.walk import fill_to_review

AMI = DIALOGUES_DIR / "ami_bretagne.yaml"
THREE_ACTORS: dict[str, Any] = {
    "actors": [
        {"name": "Dr Anne Le Goff", "profession": "médecin généraliste", "commune": "Lannion"},
        {"name": "Claire Morvan", "profession": "infirmière libérale", "commune": "Lannion"},
        {"name": "Yann Kerrien", "profession": "kinésithérapeute", "commune": "Perros-Guirec"},
    ],
    "referents": [
        {
            "name": "Anne Le Goff",
            "function": "médecin généraliste, coordinatrice du projet",
            "email": "anne.legoff@example.org",
            "phone": "06 12 34 56 78",
        }
    ],
    "objectives": ["reflection"],
    "context": "Nous réfléchissons à une CPTS pour organiser l'accès aux soins non programmés.",
    "territory": "Lannion-Trégor Communauté",
    "calendar": "avant fin février",
}
for actor in THREE_ACTORS["actors"]:
    actor["practice"] = "MSP"


def ami() -> FormFile:
    return load(FormFile, AMI)


def walk(chat: Any, persona: dict[str, Any]) -> int:
    """The messages the user sends from the consent to « Envoyer » (the /ami excluded)."""
    fill_to_review(chat, persona)
    done = chat.press("Envoyer")
    assert "AMI-2026-0001" in done
    return chat.sent - 1


def test_the_introduction_announces_the_length_computed_from_the_form(chat: Any) -> None:
    intro = chat.say("/ami")
    assert (
        "En tout : 6 rubriques, une vingtaine de messages (environ 10 minutes), et 5 messages "
        "de plus par acteur ou référent supplémentaire." in intro
    )
    assert "{length" not in intro and "Environ 6 questions" not in intro


def test_the_typical_path_is_counted_from_the_steps_of_the_form() -> None:
    # consent 1, actor 4 + 1, referent 4 + 1, objectives 1 + 1, context 1,
    # territory 1 + its confirmation 1, calendar 1, « Envoyer » 1
    assert form_length(ami()).__dict__ == {
        "sections": 6,
        "messages": 18,
        "per_item": 5,
        "minutes": 10,
    }


def test_a_three_actor_response_takes_the_messages_counted_from_the_form(chat: Any) -> None:
    sent = walk(chat, THREE_ACTORS)
    assert sent == count_messages(ami(), {"actors": 3}) == 28
    assert sent == form_length(ami()).messages + 2 * form_length(ami()).per_item


def test_two_referents_and_a_conditional_question_add_up_as_counted(
    chat: Any, personas: dict[str, dict[str, Any]]
) -> None:
    sent = walk(chat, personas["redon-structures"])  # 3 actors, one « Autre… », 2 referents
    # the « Autre… » actor is asked one more question, not counted on the usual path
    assert sent == count_messages(ami(), {"actors": 3, "referents": 2}) + 1


@pytest.mark.parametrize(
    ("n", "phrase"),
    [
        (1, "1 message"),
        (8, "8 messages"),
        (11, "une dizaine de messages"),
        (15, "une quinzaine de messages"),
        (18, "une vingtaine de messages"),
        (28, "une trentaine de messages"),
        (40, "une quarantaine de messages"),
        (70, "70 messages"),
    ],
)
def test_counts_read_as_natural_french(n: int, phrase: str) -> None:
    assert about(n, "message") == phrase


def test_one_section_and_one_minute_are_singular() -> None:
    from bot.schema.length import FormLength

    assert length_values(FormLength(sections=1, messages=3, per_item=1, minutes=1)) == {
        "sections": "1 rubrique",
        "messages": "3 messages",
        "per_item": "1 message",
        "minutes": "1 minute",
    }


def test_an_unknown_length_placeholder_is_refused_naming_the_file(tmp_path: Path) -> None:
    for path in DIALOGUES_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    copy = tmp_path / "ami_bretagne.yaml"
    copy.write_text(
        copy.read_text(encoding="utf-8").replace("{length.sections}", "{length.questions}"),
        encoding="utf-8",
    )
    problems = "\n".join(lint_paths([tmp_path]))
    assert "ami_bretagne.yaml" in problems and "{length.questions}" in problems
