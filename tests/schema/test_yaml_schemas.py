"""Every YAML file is read through its schema: misspellings are caught, in French, before a user
meets them — by `python -m bot lint`, by the loaders and when the bot starts."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import DIALOGUES_DIR, ROOT
from bot.engine.validators import VALIDATORS
from bot.forms.spec import FormSpec
from bot.lint import lint_paths
from bot.schema import SchemaError
from bot.schema.check import stale_schemas
from bot.schema.form import ButtonAction, FormFile, FormTexts, Step, StepKind, ValidatorName
from bot.schema.menu import MenuTexts

KNOWLEDGE_DIR = ROOT / "knowledge"


def run_bot(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def dialogues(tmp_path: Path) -> Path:
    """A copy of dialogues/ to break."""
    return Path(shutil.copytree(DIALOGUES_DIR, tmp_path / "dialogues"))


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    """A copy of knowledge/ to break (without the index cache)."""
    return Path(
        shutil.copytree(
            KNOWLEDGE_DIR, tmp_path / "knowledge", ignore=shutil.ignore_patterns(".cache")
        )
    )


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def problems_of(directory: Path) -> str:
    return "\n".join(lint_paths([directory]))


# --------------------------------------------------------------------------- the command
def test_the_repository_files_pass_the_lint_command():
    result = run_bot("lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Tout est conforme" in result.stdout


def test_lint_names_the_file_and_path_of_a_misspelt_key(dialogues: Path):
    edit(dialogues / "ami_bretagne.yaml", "max_length: 120", "max_lenght: 120")
    result = run_bot("lint", str(dialogues))
    assert result.returncode != 0
    line = next(li for li in result.stdout.splitlines() if "max_lenght" in li)
    assert "ami_bretagne.yaml : steps[" in line
    assert re.search(r"steps\[\d+\]\.fields\[\d+\]\.max_lenght — clé inconnue", line)
    assert "vouliez-vous dire « max_length » ?" in line
    assert "ligne " in line
    assert "Traceback" not in result.stdout + result.stderr


def test_a_yaml_syntax_error_gives_the_file_and_line_without_a_traceback(dialogues: Path):
    edit(dialogues / "menu.yaml", 'menu_prompt: "Que', 'menu_prompt: "Que: [')
    edit(dialogues / "menu.yaml", "buttons:\n", "buttons:\n  question: [\n")
    result = run_bot("lint", str(dialogues))
    assert result.returncode != 0
    assert re.search(r"menu\.yaml : ligne \d+, colonne \d+ — YAML illisible", result.stdout)
    assert "Traceback" not in result.stdout + result.stderr


# --------------------------------------------------------------------------- the messages
def test_an_unknown_step_kind_is_refused_with_the_closest_kind(dialogues: Path):
    edit(dialogues / "orientation.yaml", "kind: choice", "kind: choise")
    problems = problems_of(dialogues)
    assert "orientation.yaml : steps[0].kind — valeur inconnue « choise »" in problems
    assert "vouliez-vous dire « choice » ?" in problems
    assert "(attendu : consent, text, email" in problems


def test_a_missing_menu_prompt_stops_the_lint(dialogues: Path):
    text = (dialogues / "menu.yaml").read_text(encoding="utf-8")
    (dialogues / "menu.yaml").write_text(
        re.sub(r"^menu_prompt:.*\n", "", text, flags=re.M), encoding="utf-8"
    )
    assert "menu.yaml : menu_prompt — clé obligatoire manquante" in problems_of(dialogues)


def test_an_unknown_validator_name_is_refused_with_the_registry(dialogues: Path):
    edit(dialogues / "ami_bretagne.yaml", "validator: name", "validator: nom")
    problems = problems_of(dialogues)
    assert re.search(
        r"ami_bretagne\.yaml : steps\[\d+\]\.fields\[\d+\]\.validator — valeur inconnue « nom »"
        r" \(attendu : text, name, label, email, phone, date_or_period\)",
        problems,
    )


def test_an_unknown_condition_operator_is_named(dialogues: Path):
    edit(dialogues / "orientation.yaml", "when: {", "when: {stage: {egals: x}, ")
    problems = problems_of(dialogues)
    assert "opérateur inconnu « egals »" in problems
    assert "vouliez-vous dire « equals » ?" in problems


def test_the_cross_checks_still_run_after_the_schema(dialogues: Path):
    edit(dialogues / "orientation.yaml", "goto: ", "goto: nulle_part_", 1)
    assert "cible inconnue « nulle_part_" in problems_of(dialogues)


def test_a_topic_without_an_answer_names_its_file_and_topic(knowledge: Path):
    path = knowledge / "curated" / "topics" / "esp.yaml"
    edit(path, "  answer:", "  reponse:")
    problems = problems_of(knowledge)
    assert re.search(r"topics/esp\.yaml : \[0\]\.answer — clé obligatoire manquante", problems)
    assert "[0].reponse — clé inconnue" in problems
    assert "id « " in problems  # the topic is named


def test_an_unknown_dimension_and_an_unknown_topic_in_the_variants(knowledge: Path):
    edit(
        knowledge / "curated" / "topics" / "financement.yaml",
        "dimensions: [",
        "dimensions: [fundng, ",
    )
    with (knowledge / "curated" / "variants_extra.yaml").open("a", encoding="utf-8") as fh:
        fh.write("sujet-fantome:\n  - une question\n")
    problems = problems_of(knowledge)
    assert "valeur inconnue « fundng » ; vouliez-vous dire « funding » ?" in problems
    # the links between files are checked once every file follows its schema
    edit(
        knowledge / "curated" / "topics" / "financement.yaml",
        "dimensions: [fundng, ",
        "dimensions: [",
    )
    assert "variants_extra.yaml : sujet-fantome — sujet inconnu" in problems_of(knowledge)


# --------------------------------------------------------------------------- loaders, start
def test_the_loaders_read_through_the_schemas(dialogues: Path, knowledge: Path):
    from bot.engine.texts import Texts
    from bot.forms.spec import FormSpec, load_specs
    from bot.qa.knowledge import load_knowledge

    edit(dialogues / "ami_bretagne.yaml", "max_length: 120", "max_lenght: 120")
    with pytest.raises(SchemaError, match=r"max_lenght — clé inconnue"):
        FormSpec.load(dialogues / "ami_bretagne.yaml")
    with pytest.raises(SchemaError, match=r"max_lenght"):
        load_specs(dialogues)
    edit(dialogues / "menu.yaml", "menu_prompt:", "menu_promt:")
    with pytest.raises(SchemaError, match=r"menu_prompt — clé obligatoire manquante"):
        Texts.load(dialogues / "menu.yaml")
    edit(knowledge / "curated" / "topics" / "ami.yaml", "  answer:", "  answr:")
    with pytest.raises(SchemaError, match=r"topics/ami\.yaml : \[0\]\.answer"):
        load_knowledge(knowledge)


def test_build_app_refuses_a_broken_dialogue_directory(dialogues: Path, settings, qa_service):
    from bot.app import build_app

    edit(dialogues / "orientation.yaml", "kind: choice", "kind: choise")
    with pytest.raises(SchemaError) as caught:
        build_app(settings, qa=qa_service, create_schema=True, dialogues_dir=dialogues)
    assert "orientation.yaml : steps[0].kind — valeur inconnue « choise »" in str(caught.value)


def test_the_bot_does_not_start_on_a_broken_file_and_says_why(
    dialogues: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from bot import app, cli

    edit(dialogues / "menu.yaml", "menu_prompt:", "menu_promt:")
    monkeypatch.setattr(app, "DIALOGUES_DIR", dialogues)
    assert cli.main(["chat"]) == 2
    err = capsys.readouterr().err
    assert "Le bot ne démarre pas" in err
    assert "menu.yaml : menu_prompt — clé obligatoire manquante" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- keeping in step
def test_json_schemas_beside_the_files_are_up_to_date():
    assert stale_schemas(ROOT) == [], "run `python -m bot lint --write-schemas`"


def test_every_yaml_file_points_editors_to_its_schema():
    files = sorted(DIALOGUES_DIR.glob("*.yaml")) + sorted(KNOWLEDGE_DIR.rglob("*.yaml"))
    for path in files:
        if ".cache" in path.parts:
            continue
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert match, f"{path.relative_to(ROOT)}: first line must name its JSON Schema"
        assert (path.parent / match.group(1)).resolve().is_file(), path


def test_the_closed_sets_are_those_of_the_runner():
    from bot.forms.lint import OUTCOME_ACTIONS
    from bot.forms.spec import STEP_KINDS

    assert {v.value for v in ValidatorName} == set(VALIDATORS)
    assert {k.value for k in StepKind} == STEP_KINDS
    assert {a.value for a in ButtonAction} == OUTCOME_ACTIONS


def test_every_key_the_form_runner_reads_is_in_the_schema():
    modules = sorted((ROOT / "bot" / "forms").glob("*.py"))
    source = "\n".join(p.read_text(encoding="utf-8") for p in modules)
    step_keys = set(re.findall(r'raw(?:\.get\(|\[)"(\w+)"', source))
    step_keys |= set(re.findall(r'\.text\("(\w+)"', source))
    allowed = {f.alias or name for name, f in Step.model_fields.items()}
    assert step_keys - allowed == set()
    top_keys = set(re.findall(r'data\.get\("(\w+)"', inspect.getsource(FormSpec.__init__)))
    top_keys |= set(re.findall(r'data\["(\w+)"\]', inspect.getsource(FormSpec.__init__)))
    assert top_keys and top_keys - set(FormFile.model_fields) == set()
    text_keys = set(re.findall(r'spec\.t\(\s*"(\w+)"', source))
    allowed_texts = {f.alias or name for name, f in FormTexts.model_fields.items()}
    assert text_keys and text_keys - allowed_texts == set()


def test_every_key_the_fiche_reads_is_in_the_schema():
    """bot/mail/fiche.py reads the steps' `section`, `heading`, `hint` and the `fiche:` block."""
    from bot.schema.form import FicheTexts

    source = (ROOT / "bot" / "mail" / "fiche.py").read_text(encoding="utf-8")
    step_keys = set(re.findall(r'raw\.get\("(\w+)"\)', source))
    assert step_keys == {"section", "heading", "hint"}
    assert step_keys <= set(Step.model_fields)
    assert (
        set(re.findall(r'data\.get\("(\w+)"\)', source)) == {"fiche"} <= set(FormFile.model_fields)
    )
    fiche_keys = set(re.findall(r'texts\.get\("(\w+)"\)', source))
    fiche_keys |= set(re.findall(r'fiche_texts\(spec\)\.get\("(\w+)"\)', source))
    render = (ROOT / "bot" / "mail" / "render.py").read_text(encoding="utf-8")
    fiche_keys |= set(re.findall(r'fiche_texts\(spec\)\.get\("(\w+)"\)', render))
    assert {"title", "issuer", "where", "subject", "sender"} <= fiche_keys
    assert fiche_keys <= set(FicheTexts.model_fields)


def test_a_sent_form_names_its_recipient_and_its_fiche_names_real_answers(dialogues: Path):
    text = (dialogues / "ami_bretagne.yaml").read_text(encoding="utf-8")
    text = re.sub(r"^recipient:\n(  .*\n)+", "", text, flags=re.M)
    text = text.replace("where: [territory, actors.commune]", "where: [territoire, actors.ville]")
    (dialogues / "ami_bretagne.yaml").write_text(text, encoding="utf-8")
    problems = problems_of(dialogues)
    assert "un formulaire envoyé (étape « review ») nomme son destinataire" in problems
    assert "fiche.where[0] — « territoire » n'est ni une étape ni le champ d'un groupe" in problems
    assert "fiche.where[1] — « actors.ville »" in problems


def test_a_recipient_reads_the_ars_mailbox_setting_or_an_address_not_both(dialogues: Path):
    edit(dialogues / "ami_bretagne.yaml", "setting: ars_mailbox", "setting: smtp_password")
    assert "seul « ars_mailbox » (ARS_MAILBOX) est lu" in problems_of(dialogues)
    edit(dialogues / "ami_bretagne.yaml", "setting: smtp_password",
         "setting: ars_mailbox\n  address: ars@example.org")  # fmt: skip
    assert "« setting » ou « address », pas les deux" in problems_of(dialogues)


def test_every_menu_text_the_engine_reads_is_required():
    source = (ROOT / "bot" / "engine" / "engine.py").read_text(encoding="utf-8")
    keys = {k.split(".")[0] for k in re.findall(r'texts\(\s*"([\w.]+)"', source)}
    required = {name for name, f in MenuTexts.model_fields.items() if f.is_required()}
    assert keys and keys - required == set()


def test_a_key_the_step_kind_never_reads_is_reported(dialogues: Path):
    edit(dialogues / "orientation.yaml", "    in_summary: false", "    max_length: 10")
    assert re.search(
        r"orientation\.yaml : steps\[0\]\.max_length — clé sans effet pour une étape « choice »",
        problems_of(dialogues),
    )


def test_a_text_the_steps_need_is_required(dialogues: Path):
    text = (dialogues / "orientation.yaml").read_text(encoding="utf-8")
    (dialogues / "orientation.yaml").write_text(
        re.sub(r"^  way_on: .*\n", "", text, flags=re.M), encoding="utf-8"
    )
    assert (
        "orientation.yaml : texts.way_on — texte manquant (l'utilisateur verrait « way_on »)"
        in (problems_of(dialogues))
    )


def test_an_unknown_placeholder_in_a_text_is_refused_before_it_breaks_a_reply(dialogues: Path):
    edit(dialogues / "orientation.yaml", 'noted: "Noté : {value}."', 'noted: "Noté : {valeur}."')
    edit(dialogues / "menu.yaml", "Bonjour{name}", "Bonjour{nom}")
    problems = problems_of(dialogues)
    assert "orientation.yaml : texts.noted — emplacement inconnu {valeur}" in problems
    assert "(possibles : {value})" in problems
    assert "menu.yaml : welcome — emplacement inconnu {nom}" in problems


def test_a_key_written_twice_is_refused_with_its_line(dialogues: Path):
    edit(dialogues / "menu.yaml", "menu_prompt:", 'menu_prompt: "Menu"\nmenu_prompt:')
    assert re.search(
        r"menu\.yaml : ligne \d+, colonne 1 — clé en double « menu_prompt »",
        problems_of(dialogues),
    )


def test_a_misspelt_key_inside_a_union_value_is_named_without_the_other_members(dialogues: Path):
    edit(
        dialogues / "orientation.yaml", "objectives: {answer: stage}", "objectives: {answr: stage}"
    )
    problems = problems_of(dialogues)
    assert ".prefill.objectives.answr — clé inconnue ; vouliez-vous dire « answer » ?" in problems
    assert "AnswerRef" not in problems and ".str —" not in problems


def test_build_app_also_refuses_a_flow_the_dialogue_linter_rejects(
    dialogues: Path, settings, qa_service
):
    from bot.app import build_app

    edit(dialogues / "orientation.yaml", "goto: ", "goto: nulle_part_", 1)
    with pytest.raises(SchemaError, match="cible inconnue « nulle_part_"):
        build_app(settings, qa=qa_service, create_schema=True, dialogues_dir=dialogues)
