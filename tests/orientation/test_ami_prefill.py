"""From every outcome, « Répondre à l'AMI » opens the AMI with the objective (and territory) filled."""

from __future__ import annotations

import pytest

from tests.orientation.guide import current_step, walk

OBJECTIVES = {
    "information": "Besoin d'informations sur ce qu'est une CPTS",
    "reflection": "Réflexion en cours autour d'un projet de CPTS",
    "initiative": "Initiative engagée pour monter un projet de CPTS",
}
POPULATION = {"whom": "population", "team": "gp", "existing": "none"}
# outcome → (answers, objective ticked in the AMI, territory carried over)
CASES = {
    "esp": ({"stage": "initiative", "whom": "patientele", "team": "gp"}, "information", None),
    "cpts": (
        {"stage": "reflection", **POPULATION, "size": "over_20k", "territory": "Pays de Redon"},
        "reflection",
        "Pays de Redon",
    ),
    "cpts_size_unknown": (
        {"stage": "initiative", **POPULATION, "size": "unknown", "territory": "Pays de Fougères"},
        "initiative",
        "Pays de Fougères",
    ),
    "esp_then_cpts": (
        {"stage": "reflection", **POPULATION, "size": "under_20k", "territory": None},
        "reflection",
        None,
    ),
    "join_cpts": (
        {"stage": "initiative", **POPULATION, "existing": "cpts", "territory": "Pays de Morlaix"},
        "information",
        "Pays de Morlaix",
    ),
    "info_target": ({"stage": "reflection", "whom": "unknown"}, "information", None),
    "info_no_gp": (
        {"stage": "reflection", "whom": "patientele", "team": "no_gp"},
        "information",
        None,
    ),
    "info_alone": (
        {"stage": "information", **POPULATION, "team": "alone", "territory": "Pays de Vitré"},
        "information",
        "Pays de Vitré",
    ),
    "info_small_no_gp": (
        {
            "stage": "reflection",
            **POPULATION,
            "team": "no_gp",
            "size": "under_20k",
            "territory": "Pays de Ploërmel",
        },
        "information",
        "Pays de Ploërmel",
    ),
}


def ami_draft(chat) -> dict:  # type: ignore[no-untyped-def]
    conv = chat.app.store.get_conversation(chat.user_id)
    return conv.data.get("ami_bretagne", {})


@pytest.mark.parametrize("from_steps", [False, True], ids=["verdict", "concrete-steps"])
@pytest.mark.parametrize("outcome", list(CASES))
def test_the_ami_opens_with_the_objective_and_territory_already_filled(chat, outcome, from_steps):
    answers, objective, territory = CASES[outcome]
    assert walk(chat, answers)[0] == outcome
    if from_steps:
        chat.press("Les étapes concrètes")
    text = chat.press("Répondre à l'AMI maintenant")

    assert "J'ai repris ce que vous avez indiqué dans l'orientation" in text
    assert f"Objectifs attendus : {OBJECTIVES[objective]}" in text
    assert "Réponse à l'AMI CPTS de l'ARS Bretagne" in text  # the AMI's first step
    draft = ami_draft(chat)
    assert draft["answers"]["objectives"] == [objective]
    if territory:
        assert f"Territoire de projet : {territory}" in text
        assert draft["answers"]["territory"] == territory
        assert set(draft["prefilled"]) == {"objectives", "territory"}
    else:
        assert "Territoire de projet" not in text
        assert draft["prefilled"] == ["objectives"]
    assert "orientation" not in chat.app.store.get_conversation(chat.user_id).data


def test_the_prefilled_answers_are_skipped_then_shown_in_the_ami_review(chat):
    answers, _, _ = CASES["cpts"]
    walk(chat, answers)
    chat.press("Répondre à l'AMI maintenant")
    chat.press("J'accepte")
    chat.say("Dr Paul Le Cam")
    chat.say("médecin généraliste")
    chat.say("Redon")
    chat.press("MSP")
    chat.press("Non, continuer")
    chat.say("Paul Le Cam")
    chat.say("médecin généraliste")
    chat.say("paul.lecam@example.org")
    text = chat.say("06 11 22 33 44")
    chat.press("Non, continuer")
    text = chat.text
    assert "Objectifs attendus" not in text  # already known: not asked again
    assert "Contexte" in text
    chat.say("Nous voulons organiser l'accès aux soins non programmés sur le Pays de Redon.")
    review = chat.say("fin janvier")  # territory skipped too: straight to the calendar, then review

    assert "Récapitulatif" in review
    assert "☑ Réflexion en cours autour d'un projet de CPTS" in review
    assert "☐ Besoin d'informations sur ce qu'est une CPTS" in review
    assert "Pays de Redon" in review
    assert review.count("(repris de l'orientation)") == 2


def test_a_territory_typed_on_a_branch_left_by_going_back_is_not_carried_to_the_ami(chat):
    answers = {"stage": "reflection", "whom": "population", "team": "alone", "existing": "none",
               "territory": "Pays de Redon"}  # fmt: skip
    assert walk(chat, answers)[0] == "info_alone"
    for _ in range(4):  # territory, existing, team, whom
        chat.press("Précédent")
    assert current_step(chat).id == "whom"
    chat.press("A. Nos patients")
    chat.press("D. Seul(e)")
    assert current_step(chat).id == "info_alone"  # its AMI button carries the territory…
    assert "Pays de Redon" not in chat.text  # …but none was given on this path

    text = chat.press("Répondre à l'AMI maintenant")
    assert "Territoire de projet" not in text
    assert "territory" not in ami_draft(chat)["answers"]
    assert ami_draft(chat)["prefilled"] == ["objectives"]
