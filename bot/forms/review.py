"""The review: every answer as it will be sent, its edit buttons, the copy, the submission."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.engine.validators import get_understander
from bot.forms import answers as A
from bot.forms.actions import Action, Verb
from bot.forms.draft import Draft
from bot.forms.ports import CodeCheck, Submissions
from bot.forms.report import Report, Then, say
from bot.forms.spec import QUESTION_KINDS, REVIEW, FormSpec, Step

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.forms.handlers import FormTurn

log = logging.getLogger(__name__)

ARS_CONTACT_TEXT = "Ronan Derieux, 02 22 06 73 54, ronan.derieux@ars.sante.fr"


def recipient(spec: FormSpec, settings: Settings) -> str:
    """The address the form's responses go to (a setting, or the YAML's address)."""
    setting = spec.recipient.get("setting")
    if setting:
        return str(getattr(settings, setting))
    return str(spec.recipient.get("address", ""))


def review_text(spec: FormSpec, draft: Draft, settings: Settings) -> str:
    """Every answer, numbered, as it will be sent."""
    answers = draft.answers
    lines = [spec.t("review_title"), ""]
    number = 0
    for step in spec.steps:
        if step.kind not in QUESTION_KINDS and step.kind != "group":
            continue
        number += 1
        lines.append(f"{number}. {step.label}")
        if step.kind == "group":
            for i, item in enumerate(answers.get(step.id) or []):
                lines.append(f"   {number}.{i + 1} {A.item_summary(step, item)}")
        elif step.kind == "multi_choice":
            selected = answers.get(step.id) or []
            for choice in step.choices:
                box = "☑" if choice.value in selected else "☐"
                lines.append(f"   {box} {choice.label}")
        else:
            shown = A.display(step, answers.get(step.id))
            lines.append("   " + (shown or spec.t("not_given")))
            understood = answers.get(f"{step.id}_understood") if step.understand else None
            if understood and step.understand:
                values = get_understander(step.understand).values(understood)
                lines.append("   " + step.understood_text("review", **values))
        if step.id in draft.prefilled:
            lines.append("   " + spec.t("prefilled_mark"))
    if draft.flags:
        lines += ["", spec.t("flags_title")]
        lines += [
            f"• {f.label or f.field} : « {A.short(f.value, 60)} » (non vérifié)"
            for f in draft.flags
        ]
    lines += [
        "",
        spec.t(
            "review_recipient",
            recipient=recipient(spec, settings),
            name=spec.recipient.get("name", ""),
        ),
    ]
    return "\n".join(lines)


# =========================================================================== handlers
def review_action(turn: FormTurn, action: Action) -> Report:
    """A button of the review: send, copy, contact, edit a step or an item, add an item."""
    spec, draft = turn.spec, turn.draft
    verb = action.verb
    if verb == Verb.COPY:
        return toggle_copy(turn)
    if verb == Verb.CONTACT:  # consent to a joint « temps d'échange » with neighbours
        draft.consent_contact = not draft.consent_contact
        key = "contact_on" if draft.consent_contact else "contact_off"
        return say(spec.t(key), Then.REVIEW_BUTTONS)
    if verb == Verb.SEND:
        return submit(turn)
    if verb == Verb.EDIT and action.target in spec.by_id:
        draft.return_to = REVIEW
        turn.jump(spec.entry(spec.by_id[action.target]), 0)
        return Report()
    if verb in (Verb.ITEM, Verb.ADD_ITEM):
        group = spec.by_id.get(action.target)
        if group is None or group.kind != "group":
            return turn.stale()
        items = draft.answers.get(group.id) or []
        draft.return_to = REVIEW
        if verb == Verb.ADD_ITEM:
            if len(items) >= group.max_items:
                return say(spec.t("too_many"))
            draft.adding = True
            turn.jump(spec.entry(group), len(items))
            return Report()
        if action.number is not None and action.number < len(items):
            turn.jump(f"{group.id}.item", action.number)
            return Report()
    return turn.stale()


def item_menu_action(turn: FormTurn, group: Step, action: Action) -> Report:
    """From an item's menu: change one of its fields, remove it, or return to the review."""
    draft = turn.draft
    items = draft.answers.get(group.id) or []
    index = draft.item
    if action.verb == Verb.REVIEW:
        return turn.to_review()
    if action.verb == Verb.DELETE:
        if len(items) <= group.min_items:
            return say(group.text("cannot_remove"))
        if index < len(items):
            items.pop(index)
            A.renumber_flags(draft, group.id, index)
        return turn.to_review().noted(group.text("removed"))
    if action.verb == Verb.FIELD and index < len(items):
        for sub in group.fields:
            if sub.id == action.target:
                turn.enter_group_field(group, sub, index)
                return Report()
    return turn.stale()


# =========================================================================== copy to a proven address
def _submissions(turn: FormTurn) -> Submissions:
    submissions = turn.ports.submissions
    assert submissions is not None, "a form with a review needs the submission port"
    return submissions


def toggle_copy(turn: FormTurn) -> Report:
    """Ask for a copy: only to an address the user proves they hold (a code e-mailed to it)."""
    spec, draft, ctx = turn.spec, turn.draft, turn.ctx
    port = _submissions(turn)
    if draft.copy_to_referent or draft.verifying:
        draft.copy_to_referent = False
        draft.verifying = None
        return say(spec.t("copy_off"), Then.REVIEW_BUTTONS)
    address = port.copy_address(draft.answers)
    if address is None:
        return say(spec.t("copy_no_address"), Then.REVIEW_BUTTONS)
    session = ctx.turn.session
    if port.is_verified(session, ctx.user_id, address):
        draft.copy_to_referent = True
        return say(spec.t("copy_on", address=address), Then.REVIEW_BUTTONS)
    if not port.send_code(session, ctx.settings, ctx.user_id, address, ctx.now):
        return say(spec.t("copy_code_limit"), Then.REVIEW_BUTTONS)
    draft.verifying = address
    text = spec.t("copy_code_sent", address=address, minutes=ctx.settings.copy_code_minutes)
    return say(text, Then.REVIEW_BUTTONS)


def check_code(turn: FormTurn, typed: str) -> Report:
    """A code typed at the review: the copy is confirmed, or why not."""
    spec, draft, ctx = turn.spec, turn.draft, turn.ctx
    assert draft.verifying is not None
    address = draft.verifying
    outcome, left = _submissions(turn).check_code(
        ctx.turn.session, ctx.settings, ctx.user_id, address, typed, ctx.now
    )
    if outcome == CodeCheck.WRONG:
        return say(spec.t("copy_code_wrong", left=left), Then.NOTHING)
    draft.verifying = None
    if outcome == CodeCheck.OK:
        draft.copy_to_referent = True
        text = spec.t("copy_verified", address=address)
    elif outcome == CodeCheck.EXPIRED:
        text = spec.t("copy_code_expired")
    else:
        text = spec.t("copy_code_exhausted")
    return say(text, Then.REVIEW_BUTTONS)


# =========================================================================== submission
def submit(turn: FormTurn) -> Report:
    """Store the submission and its e-mail job in the turn's transaction; clear the draft."""
    spec, draft, ctx = turn.spec, turn.draft, turn.ctx
    port = _submissions(turn)
    A.prune(spec, draft)
    lacking = A.missing(spec, draft)
    if lacking:
        return say(spec.t("missing", fields=", ".join(lacking)))
    session = ctx.turn.session
    limit = ctx.settings.submissions_per_day
    if port.submitted_today(session, ctx.user_id, ctx.now) >= limit:
        text = spec.t("submission_limit", limit=limit, contact=ARS_CONTACT_TEXT)
        return say(text, Then.REVIEW_BUTTONS)
    copy_wanted = bool(draft.verifying or draft.copy_to_referent)
    draft.verifying = None
    answers = A.final_answers(spec, draft, ctx.user_id, ctx.now)
    for step in spec.steps:
        if step.understand:
            try:
                get_understander(step.understand).annotate(answers)
            except Exception:  # never lose a response over its annotation
                log.exception("understander %s could not annotate", step.understand)
    to = recipient(spec, ctx.settings)
    receipt = port.submit(
        session,
        ctx.settings,
        user_id=ctx.user_id,
        form_id=spec.name,
        recipient=to,
        answers=answers,
        prefix=spec.reference_prefix,
    )
    turn.discard()
    ctx.finish()
    key = "submitted" if ctx.settings.smtp_host else "submitted_no_mail"
    text = spec.t(key, reference=receipt.reference, recipient=to)
    if copy_wanted:
        if receipt.copies_to:
            text += "\n\n" + spec.t("copy_queued", address=receipt.copies_to[0])
        else:
            text += "\n\n" + spec.t("copy_not_sent")
    return Report(said=[text], then=Then.MENU, receipt=receipt)
