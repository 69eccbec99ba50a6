"""The dialogue linter: every `dialogues/*.yaml` must be runnable before a user meets it.

Each file is first read through its schema (`bot/schema`: unknown keys, kinds, validators,
YAML syntax); `python -m bot lint` runs both. Checks here, across the whole file: known step kinds; unique ids; `next`/`goto` targets exist; every step reachable from
the first (through `next` rules, the sequence and, for forms with a review, the review's edit
buttons); every validator named in the registry; `when`/`ask_if` name known fields; choices
present; outcome buttons valid (switch targets an existing flow); button payloads fit 60 bytes.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

from bot.engine.validators import UNDERSTANDERS, VALIDATORS
from bot.forms.answers import PLACEHOLDER
from bot.forms.outcomes import OUTCOME_ACTIONS
from bot.forms.spec import (
    DONE,
    QUESTION_KINDS,
    REVIEW,
    STEP_KINDS,
    FormSpec,
    Step,
)
from bot.schema import SchemaError
from bot.schema.dialogues import model_for, read_dialogue
from bot.schema.form import FormFile

LONGEST_ACTION = 24  # e.g. "i.referents.19" or "f.practice_other"


def lint_file(path: Path, known_flows: set[str] | None = None) -> list[str]:
    """Problems found in one dialogue file (empty when it is fine): its schema
    (bot/schema), then the checks below for a flow."""
    try:
        data = read_dialogue(path)
    except SchemaError as exc:
        return exc.problems
    if model_for(path)[0] is not FormFile:
        return []  # a file of texts (menu.yaml)
    spec = FormSpec(data, path)
    return [f"{path.name}: {p}" for p in lint_spec(spec, known_flows)]


def lint_spec(spec: FormSpec, known_flows: set[str] | None = None) -> list[str]:
    problems: list[str] = []
    if not spec.steps:
        return ["aucune étape (steps)"]
    ids = [s.id for s in spec.steps]
    problems += [
        f"identifiant en double : {i}" for i in sorted({i for i in ids if ids.count(i) > 1})
    ]
    fields_at_top = set(ids)
    for step in spec.steps:
        problems += _lint_step(spec, step, fields_at_top, known_flows)
        for sub in step.fields:
            item_fields = fields_at_top | {f.id for f in step.fields}
            problems += _lint_step(spec, sub, item_fields, known_flows, group=step)
    problems += _lint_payloads(spec)
    problems += _lint_reachability(spec)
    return problems


def _lint_step(
    spec: FormSpec,
    step: Step,
    known_fields: set[str],
    known_flows: set[str] | None,
    group: Step | None = None,
) -> list[str]:
    where = f"{group.id}.{step.id}" if group else step.id
    problems = []
    if step.kind not in STEP_KINDS or (group and step.kind in ("group", "review", "consent")):
        problems.append(f"{where} : type inconnu ou interdit ici « {step.kind} »")
    if step.kind in ("text", "email", "phone", "date_or_period"):
        if not step.validator:
            problems.append(f"{where} : aucun validateur")
        elif step.validator not in VALIDATORS:
            problems.append(f"{where} : validateur inconnu « {step.validator} »")
        if not step.example:
            problems.append(f"{where} : pas d'exemple (les messages d'erreur en donnent un)")
    if step.understand:
        problems += _lint_understand(where, step, group)
    if step.kind in ("choice", "multi_choice") and not step.choices:
        problems.append(f"{where} : aucun choix")
    if step.kind in QUESTION_KINDS and not step.prompt:
        problems.append(f"{where} : pas de question (prompt)")
    if step.kind == "group" and not step.fields:
        problems.append(f"{where} : groupe sans champ")
    for rule in step.next:
        target = rule.get("goto")
        if target not in spec.by_id and target not in (DONE, "end"):
            problems.append(f"{where} : cible inconnue « {target} »")
        if rule.get("when"):
            problems += _lint_when(where, rule["when"], known_fields)
    if step.ask_if:
        problems += _lint_when(where, step.ask_if, known_fields)
    if step.kind == "outcome":
        for match in PLACEHOLDER.finditer(step.prompt):
            if match.group(1) and match.group(1) not in spec.by_id:
                problems.append(
                    f"{where} : le texte cite une réponse inconnue « {match.group(0)} »"
                )
        for button in step.buttons:
            action = button.get("action", "menu")
            if action not in OUTCOME_ACTIONS:
                problems.append(f"{where} : action de bouton inconnue « {action} »")
            if not button.get("label"):
                problems.append(f"{where} : bouton sans libellé")
            if action == "goto" and button.get("goto") not in spec.by_id:
                problems.append(
                    f"{where} : bouton vers une étape inconnue « {button.get('goto')} »"
                )
            if action == "switch":
                flow = button.get("flow")
                if known_flows is not None and flow not in known_flows:
                    problems.append(f"{where} : bouton vers un parcours inconnu « {flow} »")
    return problems


UNDERSTOOD_TEXTS = (
    "prompt", "question", "confirm", "fix", "keep", "ambiguous", "candidate", "none_of_them",
    "not_recognised", "fix_prompt",
)  # fmt: skip


def _lint_understand(where: str, step: Step, group: Step | None) -> list[str]:
    """`understand:` names a known understander, on a text question, with its texts."""
    problems = []
    if step.understand not in UNDERSTANDERS:
        problems.append(f"{where} : lecture inconnue « {step.understand} »")
    if group is not None or step.kind != "text":
        problems.append(f"{where} : « understand » ne s'applique qu'à une question texte")
    texts = step.raw.get("understood") or {}
    missing = [k for k in UNDERSTOOD_TEXTS if not texts.get(k)]
    if missing:
        problems.append(f"{where} : textes « understood » manquants : {', '.join(missing)}")
    return problems


def _lint_when(where: str, when: Any, known_fields: set[str]) -> list[str]:
    if not isinstance(when, dict):
        return [f"{where} : condition invalide {when!r}"]
    problems = []
    for key, test in when.items():
        if key in ("any", "all"):
            for sub in test:
                problems += _lint_when(where, sub, known_fields)
            continue
        if key not in known_fields:
            problems.append(f"{where} : la condition porte sur un champ inconnu « {key} »")
        if isinstance(test, dict):
            unknown = set(test) - {"equals", "in", "has", "is_set", "not"}
            if unknown:
                problems.append(f"{where} : opérateur inconnu {sorted(unknown)}")
    return problems


def _lint_payloads(spec: FormSpec) -> list[str]:
    longest = len(f"{spec.name}:99999:".encode()) + LONGEST_ACTION
    if longest > 60:
        return [f"nom de parcours trop long pour des boutons de 60 octets : {spec.name}"]
    return []


def _lint_reachability(spec: FormSpec) -> list[str]:
    edges: dict[str, set[str]] = {s: set() for s in spec.states}
    for t in spec.transitions:
        sources = t["source"] if isinstance(t["source"], list) else [t["source"]]
        for source in sources:
            edges.setdefault(source, set()).add(t["dest"])
    for step in spec.steps:
        if step.kind == "outcome":
            for button in step.buttons:
                if button.get("action") == "goto" and button.get("goto") in spec.by_id:
                    edges[step.id].add(spec.entry(spec.by_id[button["goto"]]))
        if step.kind == "group":
            for sub in step.fields:  # an item's menu edits each field
                edges[f"{step.id}.item"].add(f"{step.id}.{sub.id}")
    if REVIEW in spec.locate:
        for step in spec.steps:
            if step.kind == "group":
                edges[REVIEW] |= {f"{step.id}.item", spec.entry(step)}
            elif step.kind not in ("consent", "review", "outcome"):
                edges[REVIEW].add(step.id)
    seen = {spec.states[0]}
    queue = deque([spec.states[0]])
    while queue:
        for nxt in edges.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return [f"étape inatteignable : {s}" for s in spec.states if s not in seen and s != DONE]
