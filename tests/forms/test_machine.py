"""The per-spec transition table fires exactly like the `transitions` Machine it replaces."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bot.config import DIALOGUES_DIR
from bot.engine.forms import FormModel, load_specs

SPECS = load_specs(DIALOGUES_DIR)


def scopes(spec: Any) -> list[dict[str, Any]]:
    """Answer sets over the choice questions (every combination, capped) plus an empty one."""
    choices = [s for s in spec.steps if s.kind == "choice"]
    values = [[c.value for c in s.choices] + [None] for s in choices]
    combos = itertools.islice(itertools.product(*values), 400)
    return [{}] + [{s.id: v for s, v in zip(choices, combo, strict=True)} for combo in combos]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_table_and_the_machine_agree_on_every_state_and_trigger(name):
    spec = SPECS[name]
    machine = spec.machine()
    triggers = sorted({t["trigger"] for t in spec.transitions})
    for answers, state, trigger in itertools.product(scopes(spec), spec.states, triggers):
        data = {"answers": dict(answers), "step": state}
        model = FormModel(data, spec)
        machine.events[trigger].trigger(model)
        expected = model.state
        got = spec.fire(state, trigger, FormModel(data, spec).scope)
        assert got == expected, (state, trigger, answers)
