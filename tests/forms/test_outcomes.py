"""Outcome texts of a guide: the user's answers said back, only those of the path taken."""

from __future__ import annotations

from typing import Any

from bot.forms import prompts
from bot.forms.answers import fill, path_answers
from bot.forms.draft import Draft
from bot.forms.handlers import FormTurn
from bot.forms.runner import FormFlow
from bot.forms.spec import FormSpec

GUIDE: dict[str, Any] = {
    "flow": "demo",
    "texts": {"summary_item": "• {label} : {value}"},
    "steps": [
        {
            "id": "whom",
            "kind": "choice",
            "label": "Pour qui",
            "prompt": "Pour qui ?",
            "choices": [
                {"value": "patients", "label": "A. Nos patients"},
                {"value": "population", "label": "B. Un territoire"},
            ],
            "next": [{"when": {"whom": "patients"}, "goto": "verdict"}],
        },
        {
            "id": "territory",
            "kind": "text",
            "label": "Territoire",
            "prompt": "Lequel ?",
            "example": "Pays de Redon",
            "optional": True,
        },
        {
            "id": "stage",
            "kind": "choice",
            "label": "Démarche",
            "prompt": "Où en êtes-vous ?",
            "in_summary": False,
            "choices": [{"value": "reflection", "label": "Nous y réfléchissons"}],
        },
        {
            "id": "verdict",
            "kind": "outcome",
            "prompt": "Vous visez : {answers.whom} ({answers.territory}).\n{summary}",
        },
    ],
}


def test_placeholders_show_the_chosen_label_without_its_letter_and_a_summary_of_the_path():
    spec = FormSpec(GUIDE)
    draft = Draft.from_dict(
        {
            "answers": {"whom": "population", "territory": "Pays de Redon", "stage": "reflection"},
            "history": [["whom", 0], ["territory", 0], ["stage", 0]],
            "step": "verdict",
        }
    )
    assert fill(spec, draft, GUIDE["steps"][-1]["prompt"]) == (
        "Vous visez : Un territoire (Pays de Redon).\n"
        "• Pour qui : Un territoire\n"
        "• Territoire : Pays de Redon"  # « Démarche » is `in_summary: false`
    )


def test_answers_of_a_branch_left_by_going_back_are_not_shown():
    spec = FormSpec(GUIDE)
    # territory was typed on the « territoire » branch, then the user went back to « patients »
    draft = Draft.from_dict(
        {
            "answers": {"whom": "patients", "territory": "Pays de Redon"},
            "history": [["whom", 0]],
            "step": "verdict",
        }
    )
    assert path_answers(spec, draft) == {"whom": "patients"}
    assert fill(spec, draft, "{answers.whom}|{answers.territory}|{summary}") == (
        "Nos patients||• Pour qui : Nos patients"
    )


def test_an_outcome_written_as_a_list_is_several_replies_buttons_on_the_last():
    guide = {
        **GUIDE,
        "steps": [
            *GUIDE["steps"][:-1],
            {
                "id": "verdict",
                "kind": "outcome",
                "prompt": ["Verdict : {answers.whom}.", "Les étapes : 1, 2, 3."],
                "buttons": [{"label": "🔄 Recommencer", "action": "restart"}],
            },
        ],
    }
    flow = FormFlow(FormSpec(guide))
    data = {"answers": {"whom": "patients"}, "history": [["whom", 0]], "step": "verdict"}
    turn = FormTurn(
        flow.spec,
        flow.machine,
        flow.ports,
        flow.citations,
        None,  # type: ignore[arg-type]  # no turn: the outcome cites nothing
        Draft.from_dict(data),
    )
    first, last = prompts.outcome(turn, flow.spec.by_id["verdict"])
    assert (first.text, first.buttons) == ("Verdict : Nos patients.", [])
    assert last.text == "Les étapes : 1, 2, 3."
    assert [b.label for row in last.buttons for b in row] == [
        "🔄 Recommencer",
        "back",
    ]  # no texts: the key
