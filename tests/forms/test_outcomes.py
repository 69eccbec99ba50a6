"""Outcome texts of a guide: the user's answers said back, only those of the path taken."""

from __future__ import annotations

from typing import Any

from bot.engine.forms import FormFlow, FormSpec

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
    flow = FormFlow(FormSpec(GUIDE))
    data = {
        "answers": {"whom": "population", "territory": "Pays de Redon", "stage": "reflection"},
        "history": [["whom", 0], ["territory", 0], ["stage", 0]],
        "step": "verdict",
    }
    assert flow._fill(data, GUIDE["steps"][-1]["prompt"]) == (
        "Vous visez : Un territoire (Pays de Redon).\n"
        "• Pour qui : Un territoire\n"
        "• Territoire : Pays de Redon"  # « Démarche » is `in_summary: false`
    )


def test_answers_of_a_branch_left_by_going_back_are_not_shown():
    flow = FormFlow(FormSpec(GUIDE))
    # territory was typed on the « territoire » branch, then the user went back to « patients »
    data = {
        "answers": {"whom": "patients", "territory": "Pays de Redon"},
        "history": [["whom", 0]],
        "step": "verdict",
    }
    assert flow.path_answers(data) == {"whom": "patients"}
    assert flow._fill(data, "{answers.whom}|{answers.territory}|{summary}") == (
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
    first, last = flow._outcome(None, data, flow.spec.by_id["verdict"])  # type: ignore[arg-type]
    assert (first.text, first.buttons) == ("Verdict : Nos patients.", [])
    assert last.text == "Les étapes : 1, 2, 3."
    assert [b.label for row in last.buttons for b in row] == [
        "🔄 Recommencer",
        "back",
    ]  # no texts: the key
