"""The forms run on the `transitions` Machine: one per spec, fired on the stored state.

The oracle below is the hand-written table that ran the forms before (first transition whose
conditions hold and whose `unless` do not): the Machine must pick the same state for every
state, trigger and set of choice answers, so that drafts stored before the change go on.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bot.config import DIALOGUES_DIR
from bot.forms.machine import FormMachine, machine_for
from bot.forms.runner import FormFlow
from bot.forms.spec import DONE, FormSpec, load_specs

SPECS = load_specs(DIALOGUES_DIR)


def scopes(spec: FormSpec) -> list[dict[str, Any]]:
    """Answer sets over the choice questions (every combination, capped) plus an empty one."""
    choices = [s for s in spec.steps if s.kind == "choice"]
    values = [[c.value for c in s.choices] + [None] for s in choices]
    combos = itertools.islice(itertools.product(*values), 400)
    return [{}] + [{s.id: v for s, v in zip(choices, combo, strict=True)} for combo in combos]


def table_fire(spec: FormSpec, state: str, trigger: str, answers: dict[str, Any]) -> str:
    """The former hand-written semantics, kept as the oracle."""
    for t in spec.transitions:
        if t["source"] != state or t["trigger"] != trigger:
            continue
        conditions, unless = t.get("conditions") or [], t.get("unless") or []
        if all(c.is_met(answers) for c in conditions) and not any(
            c.is_met(answers) for c in unless
        ):
            return t["dest"]
    return state


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_machine_fires_like_the_former_table_on_every_state_and_trigger(name):
    spec = SPECS[name]
    fresh, cached = FormMachine(spec), machine_for(spec)
    triggers = sorted({t["trigger"] for t in spec.transitions})
    for answers, state, trigger in itertools.product(scopes(spec), spec.states, triggers):
        expected = table_fire(spec, state, trigger, answers)
        fresh._memo.clear()  # the Machine itself decides
        assert fresh.fire(trigger, state, dict(answers)) == expected, (state, trigger, answers)
        # and its remembered choice (keyed by the answers the conditions read) is the same
        assert cached.fire(trigger, state, dict(answers)) == expected, (state, trigger, answers)


def test_one_machine_per_spec_built_once_and_shared_by_its_flows():
    spec = SPECS["ami_bretagne"]
    assert machine_for(spec) is machine_for(spec)
    assert FormFlow(spec).machine is FormFlow(spec).machine is machine_for(spec)
    assert isinstance(machine_for(spec), FormMachine)
    assert machine_for(spec).machine.models == []  # no conversation lives in the Machine


def test_firing_changes_nothing_but_the_returned_state():
    spec = SPECS["ami_bretagne"]
    answers = {"objectives": ["need"]}
    before = repr(answers)
    machine_for(spec).fire("advance", spec.initial, answers)
    assert repr(answers) == before


def test_an_unknown_state_or_trigger_is_ignored():
    machine = machine_for(SPECS["orientation"])
    assert machine.fire("advance", "a-step-since-removed", {}) == "a-step-since-removed"
    assert machine.fire("no_such_trigger", SPECS["orientation"].initial, {}) == (
        SPECS["orientation"].initial
    )
    assert machine.fire("advance", DONE, {}) == DONE


def test_states_are_nouns_and_triggers_verbs():
    for spec in SPECS.values():
        triggers = {t["trigger"] for t in spec.transitions}
        assert triggers <= {"advance", "add_item", "refuse", "submit"}
