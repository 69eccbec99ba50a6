"""What the user is asked at each step, as replies with their buttons (the runner's views)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bot.engine.messages import Button, Document, Reply, french_format, split_lines
from bot.engine.validators import get_understander
from bot.forms import answers as A
from bot.forms.actions import Action, Verb, numbered, write_payload
from bot.forms.conditions import evaluate
from bot.forms.outcomes import outcome_texts
from bot.forms.review import review_text
from bot.forms.spec import QUESTION_KINDS, REVIEW, Step

if TYPE_CHECKING:
    from bot.forms.handlers import FormTurn
    from bot.forms.ports import Receipt

NOTICE_PLACEHOLDER = re.compile(r"\{notice\.(\w+)\}")  # configured durations and contacts
REVIEW_CHUNK = 3800


def button(turn: FormTurn, label: str, action: Action | Verb) -> Button:
    """A button of the current step (its payload carries the visit)."""
    return Button(label, write_payload(turn.payload_prefix(), action))


def render(turn: FormTurn, reminder: bool = False) -> list[Reply]:
    """The current step, asked (a reminder leaves out « Réponse actuelle »)."""
    step, sub = turn.current()
    state = turn.state
    if step.kind == "consent":
        return [consent(turn, step)]
    if state.endswith(".more"):
        return [more_prompt(turn, step)]
    if state.endswith(".item"):
        return [item_menu(turn, step)]
    if step.kind == "review":
        text = review_text(turn.spec, turn.draft, turn.ctx.settings)
        chunks = split_lines(text, REVIEW_CHUNK)
        return [*(Reply(c) for c in chunks), review_buttons(turn)]
    if step.kind == "outcome":
        return outcome(turn, step)
    pending = turn.draft.pending
    if pending and sub is None and step.understand and pending.field == step.id:
        return [confirmation(turn, step)]
    return [question(turn, step, sub, reminder)]


def buttons(turn: FormTurn) -> list[Button]:
    """The buttons the current step shows (the review's without rendering its text)."""
    step, _ = turn.current()
    if step.kind == "review" and turn.state == REVIEW:
        replies = [review_buttons(turn)]
    else:
        replies = render(turn)
    return [b for reply in replies for row in reply.buttons for b in row]


def consent(turn: FormTurn, step: Step) -> Reply:
    """The privacy notice (configured values filled) with « accept » and « refuse »."""
    notice = turn.ports.notice_values
    values = notice() if notice is not None else {}
    prompt = NOTICE_PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), step.prompt)
    return Reply(
        prompt,
        [
            [button(turn, step.text("accept"), Verb.YES)],
            [button(turn, step.text("refuse"), Verb.NO)],
        ],
    )


def question(turn: FormTurn, step: Step, sub: Step | None, reminder: bool) -> Reply:
    """A question, its choices or boxes, its current answer, back / skip / why."""
    spec, draft = turn.spec, turn.draft
    field_ = sub or step
    index = draft.item
    values: dict[str, Any] = {"n": index + 1}
    current: Any = None
    if sub is not None:
        item = draft.current_item(step.id)
        values.update({k: v for k, v in item.items() if isinstance(v, str)})
        current = item.get(sub.id)
        display_value = item.get(f"{sub.id}_display") if sub.store_display else None
    else:
        current = draft.answers.get(step.id)
        display_value = None
    try:
        text = french_format(field_.prompt, **values)
    except (KeyError, IndexError):
        text = field_.prompt
    if sub is not None and sub is step.fields[0] and step.text("intro") and index == 0:
        text = step.text("intro") + "\n\n" + text
    buttons: list[list[Button]] = []
    edit_key = None
    if field_.kind == "choice":
        prefix = turn.payload_prefix()
        buttons += [
            [Button(c.label, prefix + numbered(Verb.CHOOSE, i))]
            for i, c in enumerate(field_.choices)
        ]
    elif field_.kind == "multi_choice":
        prefix = turn.payload_prefix()
        selected = set(current or [])
        for i, c in enumerate(field_.choices):
            box = "☑" if c.value in selected else "☐"
            buttons.append([Button(f"{box} {c.label}", prefix + numbered(Verb.TICK, i))])
        buttons.append([button(turn, spec.t("validate"), Verb.OK)])
        edit_key = f"{spec.name}:{field_.id}"
    if field_.suggest and current in (None, ""):
        for i, name in enumerate(A.suggestions(draft, field_)):
            label = spec.t("suggest", value=A.short(name, 40))
            buttons.append([button(turn, label, Action(Verb.SUGGESTION, number=i))])
    shown = A.display(field_, display_value or current)
    if shown and field_.kind != "multi_choice" and not reminder:
        text += "\n\n" + spec.t("current", value=A.short(shown, 300))
        label = spec.t("keep", value=A.short(shown, 30))
        buttons.append([button(turn, label, Verb.CURRENT)])
    row = [button(turn, spec.t("back"), Verb.BACK)]
    if field_.optional:
        row.append(button(turn, spec.t("skip"), Verb.SKIP))
    if field_.why:
        row.append(button(turn, spec.t("why_button"), Verb.WHY))
    buttons.append(row)
    return Reply(text, buttons, edit_key=edit_key)


def confirmation(turn: FormTurn, field_: Step) -> Reply:
    """« J'ai reconnu : … — 3 communes, environ 15 300 habitants … » with its buttons."""
    assert field_.understand is not None and turn.draft.pending is not None
    understood = turn.draft.pending.understood
    t = field_.understood_text
    back = button(turn, turn.spec.t("back"), Verb.BACK)
    ambiguities = understood.get("ambiguities") or []
    if ambiguities:
        first = ambiguities[0]
        buttons = [
            [
                button(
                    turn,
                    A.short(
                        t(
                            "candidate",
                            name=c["name"],
                            departement=c["departement"],
                            population=f"{c['population']:,}".replace(",", " "),
                        ),
                        60,
                    ),
                    Action(Verb.CANDIDATE, number=i),
                )
            ]
            for i, c in enumerate(first.get("candidates", [])[:8])
        ]
        buttons.append([button(turn, t("none_of_them"), Action(Verb.CANDIDATE))])
        buttons.append([button(turn, t("fix"), Verb.FIX), back])
        return Reply(t("ambiguous", name=first.get("text", "")), buttons)
    values = get_understander(field_.understand).values(understood)
    lines = [t("prompt", **values)]
    if values.get("unresolved"):
        lines.append(t("unresolved", **values))
    if values.get("small"):
        lines.append(t("small", **values))
    lines.append(t("question", **values))
    buttons = [
        [button(turn, t("confirm"), Verb.CONFIRM)],
        [button(turn, t("fix"), Verb.FIX)],
        [button(turn, t("keep"), Verb.KEEP_TYPED)],
        [back],
    ]
    return Reply("\n\n".join(line for line in lines if line), buttons)


def more_prompt(turn: FormTurn, group: Step) -> Reply:
    """The items given so far, and « add another? »."""
    items = turn.draft.answers.get(group.id) or []
    lines = [f"{i + 1}. {A.item_summary(group, item)}" for i, item in enumerate(items)]
    text = group.text("more_prompt", "").format(count=len(items))
    text = "\n".join(lines) + "\n\n" + text
    buttons = []
    if len(items) < group.max_items:
        buttons.append([button(turn, group.text("add"), Verb.ADD)])
    buttons.append([button(turn, group.text("done"), Verb.DONE)])
    buttons.append([button(turn, turn.spec.t("back"), Verb.BACK)])
    return Reply(text, buttons)


def item_menu(turn: FormTurn, group: Step) -> Reply:
    """One item from the review: change a field, remove it, back to the review."""
    draft = turn.draft
    item = draft.current_item(group.id)
    text = turn.spec.t(
        "item_menu",
        label=group.text("item_label"),
        n=draft.item + 1,
        summary=A.item_summary(group, item),
    )
    buttons = []
    for sub in group.fields:
        if sub.ask_if and not evaluate(sub.ask_if, {**draft.answers, **item}):
            continue
        shown = A.display(sub, item.get(f"{sub.id}_display") or item.get(sub.id))
        label = A.short(f"✏️ {sub.label} : {shown}", 60)
        buttons.append([button(turn, label, Action(Verb.FIELD, target=sub.id))])
    buttons.append([button(turn, group.text("remove"), Verb.DELETE)])
    buttons.append([button(turn, turn.spec.t("to_review"), Verb.REVIEW)])
    return Reply(text, buttons)


def review_buttons(turn: FormTurn) -> Reply:
    """Send, the copy and contact boxes, and an edit button per step and per item."""
    spec, draft = turn.spec, turn.draft
    buttons = [[button(turn, spec.t("send"), Verb.SEND)]]
    box = "☑" if draft.copy_to_referent else "☐"
    buttons.append([button(turn, spec.t("copy", box=box), Verb.COPY)])
    if "contact" in spec.texts:
        box = "☑" if draft.consent_contact else "☐"
        buttons.append([button(turn, spec.t("contact", box=box), Verb.CONTACT)])
    for step in spec.steps:
        if step.kind == "group":
            label = step.text("item_label")
            for i, item in enumerate(draft.answers.get(step.id) or []):
                first = A.display(step.fields[0], item.get(step.fields[0].id))
                text = A.short(f"✏️ {label} {i + 1} : {first}", 60)
                buttons.append([button(turn, text, Action(Verb.ITEM, target=step.id, number=i))])
            buttons.append([button(turn, step.text("add"), Action(Verb.ADD_ITEM, target=step.id))])
        elif step.kind in QUESTION_KINDS:
            buttons.append([button(turn, f"✏️ {step.label}", Action(Verb.EDIT, target=step.id))])
    return Reply(spec.t("review_prompt"), buttons, edit_key=f"{spec.name}:review")


def outcome(turn: FormTurn, step: Step) -> list[Reply]:
    """One reply per part of the text (a list in the YAML); sources and buttons on the last."""
    texts = outcome_texts(turn, step)
    buttons = [
        [button(turn, str(b["label"]), Action(Verb.OUTCOME, number=i))]
        for i, b in enumerate(step.buttons)
    ]
    buttons.append([button(turn, turn.spec.t("back"), Verb.BACK)])
    return [*(Reply(t) for t in texts[:-1]), Reply(texts[-1], buttons)]


def way_on(turn: FormTurn, offer_keep: bool) -> Reply:
    """After repeated failures: keep the answer as typed, skip it, or go back."""
    spec = turn.spec
    step, sub = turn.current()
    field_ = sub or step
    buttons = []
    if offer_keep:
        buttons.append([button(turn, spec.t("keep_as_typed"), Verb.AS_TYPED)])
    if field_.optional:
        buttons.append([button(turn, spec.t("skip"), Verb.SKIP)])
    buttons.append([button(turn, spec.t("back"), Verb.BACK)])
    return Reply(spec.t("way_on"), buttons)


def fiche(receipt: Receipt) -> Reply:
    """The filled fiche as PDF for the respondent, rendered once the submission has committed."""
    document = Document(
        filename=f"{receipt.reference}.pdf",
        content=b"",
        mime_type="application/pdf",
        caption=f"Votre fiche AMI {receipt.reference}",
        render=receipt.render_fiche,  # in the renderer process, after the commit
    )
    return Reply(
        f"Voici votre fiche remplie ({receipt.reference}), au format PDF.", document=document
    )
