"""Mermaid state diagrams of the dialogue flows, written next to each YAML file.

`python -m bot diagram` calls `write_diagrams()`; a test checks the committed `.mmd` files are
identical to a fresh generation, so they never go stale.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.forms.spec import DONE, REVIEW, FormSpec, load_specs


def _node(state: str) -> str:
    return re.sub(r"\W", "_", state)


def render(spec: FormSpec) -> str:
    """The flow as a Mermaid `stateDiagram-v2` (deterministic: same YAML, same text)."""
    lines = ["---", f"title: {spec.name} — {spec.title}", "---", "stateDiagram-v2"]
    lines.append("    direction TB")
    for state in spec.states:
        if state == DONE:
            continue
        step, sub = spec.locate[state]
        if sub is not None:
            label = f"{step.label} · {sub.label}"
        elif state.endswith(".more"):
            label = f"{step.label} · ajouter un autre ?"
        elif state.endswith(".item"):
            label = f"{step.label} · modifier un élément"
        else:
            label = step.label
        lines.append(
            f'    state "{_escape(label)} ({step.kind if sub is None else sub.kind})" as {_node(state)}'
        )
    lines.append(f"    [*] --> {_node(spec.states[0])}")
    seen: set[tuple[str, str, str]] = set()
    for t in spec.transitions:
        source, dest, trigger = t["source"], t["dest"], t["trigger"]
        label = trigger
        conds = [repr(c) for c in t.get("conditions") or []]
        conds += [f"not ({c!r})" for c in t.get("unless") or []]
        if conds:
            label += " [" + " ; ".join(conds) + "]"
        key = (source, dest, label)
        if key in seen:
            continue
        seen.add(key)
        target = "[*]" if dest == DONE else _node(dest)
        lines.append(f"    {_node(source)} --> {target} : {_escape(label)}")
    if REVIEW in spec.locate:
        for step in spec.steps:
            if step.kind == "group":
                lines.append(f"    {REVIEW} --> {_node(step.id + '.item')} : edit_item")
                lines.append(f"    {REVIEW} --> {_node(spec.entry(step))} : add_item")
                for sub in step.fields:
                    lines.append(
                        f"    {_node(step.id + '.item')} --> {_node(step.id + '.' + sub.id)} : edit"
                    )
            elif step.kind not in ("consent", "review", "outcome"):
                lines.append(f"    {REVIEW} --> {_node(step.id)} : edit")
    for step in spec.steps:
        for i, button in enumerate(step.buttons):
            action = button.get("action", "menu")
            if action == "goto":
                dest = _node(spec.entry(spec.by_id[button["goto"]]))
            elif action == "restart":
                dest = _node(spec.states[0])
            else:
                dest = "[*]"
            what = f"{action} {button.get('flow', '')}".strip()
            lines.append(f"    {_node(step.id)} --> {dest} : button {i + 1} ({_escape(what)})")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace('"', "'").replace(":", "").replace(";", ",")


def write_diagrams(directory: Path | None = None) -> list[Path]:
    """Write `<flow file>.mmd` next to every dialogue YAML declaring a flow."""
    from bot.config import DIALOGUES_DIR

    directory = directory or DIALOGUES_DIR
    written = []
    for spec in load_specs(directory).values():
        assert spec.path is not None
        target = spec.path.with_suffix(".mmd")
        text = render(spec)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
