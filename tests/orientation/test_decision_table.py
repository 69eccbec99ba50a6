"""The decision table (decision_table.yaml): each answer set leads to the outcome the texts give."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.orientation.guide import OUTCOMES, VERDICTS, shows, walk

ROWS = yaml.safe_load((Path(__file__).with_name("decision_table.yaml")).read_text("utf-8"))["rows"]


def _id(row: dict) -> str:
    return f"{row['outcome']}:" + ",".join(f"{k}={v}" for k, v in row["answers"].items())


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_answers_lead_to_the_outcome_the_texts_give(chat, row):
    outcome, asked = walk(chat, row["answers"])
    assert outcome == row["outcome"], row["why"]
    assert asked == list(row["answers"]), "the guide asked other questions than the table lists"
    assert shows(chat.text, OUTCOMES[outcome])


def test_the_table_covers_every_outcome():
    assert {row["outcome"] for row in ROWS} == set(VERDICTS)


def test_team_caring_for_its_own_patients_is_oriented_to_an_esp(chat):
    outcome, _ = walk(chat, {"stage": "reflection", "whom": "patientele", "team": "gp"})
    assert outcome == "esp"
    assert "une équipe de soins primaires (ESP)" in chat.text
    assert "D'après vos réponses :\n• Pour qui : Nos patients (patientèle)\n" in chat.text
    assert "• Porteurs : Avec un médecin généraliste" in chat.text  # the reasons, said back


def test_a_territory_of_more_than_20000_inhabitants_is_oriented_to_a_cpts(chat):
    answers = {"stage": "initiative", "whom": "population", "team": "gp_wide",
               "existing": "none", "size": "over_20k", "territory": "Pays de Redon"}  # fmt: skip
    assert walk(chat, answers)[0] == "cpts"
    assert "communauté professionnelle territoriale de santé (CPTS)" in chat.text


def test_an_existing_cpts_on_the_territory_means_joining_it(chat):
    answers = {"stage": "reflection", "whom": "population", "team": "gp", "existing": "cpts",
               "territory": None}  # fmt: skip
    assert walk(chat, answers)[0] == "join_cpts"
    assert "Deux CPTS ne peuvent coexister sur un même territoire." in chat.text


def test_a_small_territory_with_a_general_practitioner_starts_as_an_esp(chat):
    answers = {"stage": "reflection", "whom": "population", "team": "gp", "existing": "none",
               "size": "under_20k", "territory": None}  # fmt: skip
    assert walk(chat, answers)[0] == "esp_then_cpts"
    assert "commencez par une ESP, visez une CPTS" in chat.text


def test_not_knowing_whose_patients_leads_to_information_first(chat):
    assert walk(chat, {"stage": "information", "whom": "unknown"})[0] == "info_target"
    assert "informez-vous d'abord" in chat.text
