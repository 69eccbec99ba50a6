"""Questions mid-form, prefill from the orientation guide, the calendar, lint and diagrams."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import DIALOGUES_DIR, ROOT
from bot.engine.frdates import understand
from bot.forms.diagram import render
from bot.forms.lint import lint_spec
from bot.forms.spec import FormSpec, objective_labels
from bot.lint import lint_directory
from tests.conftest import Chat
from tests.forms.conftest import HERE, build_test_app
from tests.forms.test_ami_validation import to_calendar, to_context
from tests.forms.walk import answers, draft, start

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- questions
def test_a_question_mid_form_is_answered_and_the_form_resumes(chat):
    start(chat)
    chat.say("Dr Paul Le Cam")
    text = chat.say("Qu'est-ce qu'une CPTS ?")
    assert "communauté professionnelle territoriale de santé" in text.lower()
    assert "Je reprends le formulaire :" in text
    assert "Quelle est la profession de Dr Paul Le Cam" in text
    assert draft(chat)["step"] == "actors.profession"
    assert "profession" not in answers(chat)["actors"][0]
    assert not any(b.payload.startswith("menu:") for b in chat.buttons)
    chat.say("médecin généraliste")
    assert answers(chat)["actors"][0]["profession"] == "médecin généraliste"


def test_an_unanswerable_question_is_not_taken_for_a_name(chat):
    start(chat)
    text = chat.say("Vous êtes qui au juste ?")
    assert "Je reprends le formulaire" in text and "Acteur n°1" in text
    assert "actors" not in answers(chat)


def test_a_context_that_merely_contains_a_question_mark_is_kept_as_context(chat):
    to_context(chat)
    context = (
        "Faut-il une CPTS pour organiser l'accueil des patients sans médecin traitant ? "
        "Nous nous posons la question depuis un an avec les collègues du secteur."
    )
    chat.say(context)
    assert answers(chat)["context"] == context


# --------------------------------------------------------------------------- prefill
@pytest.fixture
def guided_chat(settings, clock, qa_service, tmp_path: Path) -> Chat:
    """The real AMI plus a sample orientation guide written in YAML only."""
    directory = tmp_path / "dialogues"
    directory.mkdir()
    shutil.copy(DIALOGUES_DIR / "ami_bretagne.yaml", directory)
    shutil.copy(DIALOGUES_DIR / "menu.yaml", directory)
    shutil.copy(HERE / "dialogues" / "orientation.yaml", directory)
    return Chat(build_test_app(settings, qa_service, clock, dialogues=directory))


def test_orientation_branches_on_answers_and_prefills_the_ami(guided_chat):
    chat = guided_chat
    chat.say("/orientation")
    assert "Pourquoi cette question" in " ".join(b.label for b in chat.buttons)
    chat.press("Un territoire")
    chat.press("Nous y réfléchissons")
    chat.press("Valider")
    chat.say("Pays de Redon")
    text = chat.text
    assert "Plutôt une CPTS" in text
    assert "📚 Sources :\n• Ameli" in text and "ameli-cpts-mode-emploi" not in text
    text = chat.press("Répondre à l'AMI")
    assert "Finalité" in text  # the privacy notice still comes first
    assert "Territoire de projet : Pays de Redon" in text
    chat.press("J'accepte")
    assert draft(chat)["answers"]["objectives"] == ["reflection"]
    assert draft(chat)["answers"]["territory"] == "Pays de Redon"
    # the prefilled steps are skipped …
    chat.say("Julie Hamon")
    chat.say("pharmacienne")
    chat.say("Allaire")
    chat.press("Aucun")
    chat.press("Non, continuer")
    chat.press("Julie Hamon")
    chat.say("pharmacienne titulaire")
    chat.say("julie.hamon@example.net")
    chat.say("06 55 44 33 22")
    text = chat.press("Non, continuer")
    assert "Contexte" in text
    chat.say("Un groupe ville-hôpital se réunit depuis un an.")
    text = chat.say("dès que possible")
    # … but shown and editable in the review
    assert "(repris de l'orientation)" in text and "Pays de Redon" in text
    chat.press("✏️ Territoire")
    chat.say("Pays de Redon et Allaire")
    text = chat.press("Oui, c'est bien cela")
    assert answers(chat)["territory"] == "Pays de Redon et Allaire"
    chat.press("Envoyer")
    sub = chat.app.store.submissions()[0]
    assert sub.answers["objectives"] == ["reflection"]


def test_orientation_patients_branch_ends_on_the_esp_outcome_and_restarts(guided_chat):
    chat = guided_chat
    chat.say("/orientation")
    text = chat.press("Une patientèle")
    assert "Plutôt une ESP" in text
    text = chat.press("Recommencer")
    assert "patientèle commune" in text


# --------------------------------------------------------------------------- calendar
@pytest.mark.parametrize(
    ("typed", "iso"),
    [
        ("fin janvier", "2027-01-31"),
        ("sous 15 jours", "2026-12-08"),
        ("dans 3 semaines", "2026-12-14"),
        ("15/03", "2027-03-15"),
        ("le 12/04", "2027-04-12"),
        ("avant fin février", "2027-02-28"),
        ("début mars", "2027-03-01"),
        ("mi-avril", "2027-04-15"),
        ("en septembre", "2027-09-01"),
        ("au printemps", "2027-03-20"),
        ("semaine prochaine", "2026-11-30"),
        ("demain", "2026-11-24"),
        ("20/11", "2027-11-20"),
        ("dès que possible", None),
        ("quand vous voulez", None),
    ],
)
def test_calendar_words_are_understood_relative_to_the_turn_clock(typed, iso):
    when = understand(typed, NOW)
    assert (when.date.isoformat() if when.date else None) == iso
    assert not when.is_past


def test_calendar_is_shown_back_as_a_date(chat):
    to_calendar(chat)
    text = chat.say("fin janvier")
    assert "fin janvier 2027 → 31/01/2027" in text
    assert answers(chat)["calendar"] == {
        "text": "fin janvier",
        "date": "2027-01-31",
        "label": "fin janvier 2027 → 31/01/2027",
    }


def test_calendar_never_in_the_past(chat, clock):
    to_calendar(chat)
    text = chat.say("15/03/2025")
    assert "déjà passée (15/03/2025)" in text and "fin janvier" in text
    assert "calendar" not in answers(chat)
    text = chat.say("hier")
    assert "déjà passée" in text


def test_calendar_uses_the_turn_clock_not_the_system_clock(chat, clock):
    clock.now = datetime(2030, 6, 10, 9, 0, tzinfo=UTC)
    to_calendar(chat)
    chat.say("fin janvier")
    assert answers(chat)["calendar"]["date"] == "2031-01-31"


def test_calendar_wording_that_is_not_understood_is_kept_as_written(chat):
    to_calendar(chat)
    chat.say("après les vacances de la Toussaint")
    assert answers(chat)["calendar"] == {
        "text": "après les vacances de la Toussaint",
        "date": None,
        "label": "après les vacances de la Toussaint",
    }


# --------------------------------------------------------------------------- lint, diagrams
@pytest.mark.parametrize("directory", [DIALOGUES_DIR, HERE / "dialogues"], ids=["repo", "sample"])
def test_every_dialogue_file_passes_the_linter(directory):
    assert lint_directory(directory, other_flows={"ami_bretagne", "orientation"}) == []


def test_the_linter_reports_unknown_targets_validators_and_unreachable_steps():
    spec = FormSpec(
        {
            "flow": "broken",
            "steps": [
                {
                    "id": "a",
                    "kind": "text",
                    "validator": "telepathy",
                    "prompt": "?",
                    "example": "x",
                    "next": [{"when": {"nope": 1}, "goto": "nowhere"}, {"goto": "c"}],
                },
                {"id": "b", "kind": "choice", "prompt": "?", "choices": []},
                {
                    "id": "c",
                    "kind": "outcome",
                    "prompt": "fin",
                    "buttons": [{"label": "x", "action": "switch", "flow": "ghost"}],
                },
            ],
        }
    )
    problems = "\n".join(lint_spec(spec, known_flows={"broken"}))
    for expected in [
        "validateur inconnu « telepathy »",
        "cible inconnue « nowhere »",
        "champ inconnu « nope »",
        "aucun choix",
        "inatteignable : b",
        "parcours inconnu « ghost »",
    ]:
        assert expected in problems


def test_mermaid_diagrams_are_up_to_date():
    for path in sorted(DIALOGUES_DIR.glob("*.yaml")):
        spec_path = path
        mmd = spec_path.with_suffix(".mmd")
        data_flow = "flow:" in spec_path.read_text(encoding="utf-8")
        if not data_flow:
            continue
        assert mmd.exists(), f"run `python -m bot diagram` ({mmd.name} is missing)"
        assert mmd.read_text(encoding="utf-8") == render(FormSpec.load(spec_path)), (
            f"{mmd.name} is stale: run `python -m bot diagram`"
        )


def test_objective_labels_carry_the_exact_wording_of_the_fiche():
    assert objective_labels() == {
        "information": "Besoin d'informations sur ce qu'est une CPTS",
        "reflection": "Réflexion en cours autour d'un projet de CPTS",
        "initiative": "Initiative engagée pour monter un projet de CPTS",
    }


# --------------------------------------------------------------------------- console
@pytest.mark.slow
def test_scripted_console_response_with_two_actors_gets_a_reference(tmp_path):
    script = (HERE / "scripts" / "two_actors.txt").read_text(encoding="utf-8")
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'console.sqlite3'}",
        "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        "SMTP_HOST": "",
        "TELEGRAM_BOT_TOKEN": "",
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    migrate = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    done = subprocess.run(
        [sys.executable, "-m", "bot", "chat"],
        input=script,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "référence AMI-" in done.stdout, done.stdout[-3000:]
    messages = [line for line in script.splitlines() if line.strip()]
    assert len(messages) <= 30
