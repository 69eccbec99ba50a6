"""A response laid out from its form's description (`dialogues/<form>.yaml`): the one fiche.

`build_fiche(submission)` walks the form's steps in order and gives, for each question, its
label, where it stands on the paper fiche (`section`, `heading`, `hint`), this response's
answer as people read it, and its cells for the exports. The e-mail (text and HTML), the PDF,
the exports (CSV, XLSX, JSON), the staff texts and the back office all iterate these blocks:
no second copy of the fiche lives in Python, so a second AMI is a second YAML file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.forms.spec import AMI_FORM, QUESTION_KINDS, FormSpec, Step, _spec_of
from bot.schema.base import SchemaError
from bot.storage.models import Submission

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

NOT_GIVEN = "Non renseigné"
MONTHS = [
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
]  # fmt: skip

try:
    PARIS: Any = ZoneInfo("Europe/Paris")
except ZoneInfoNotFoundError:  # no tz database on this machine: stay in UTC
    PARIS = UTC


def french_date(value: date | datetime | None, with_time: bool = True) -> str:
    """ "23 novembre 2026 à 10 h 05" (Paris time)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        local = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(PARIS)
        text = f"{local.day} {MONTHS[local.month - 1]} {local.year}"
        return f"{text} à {local.hour} h {local.minute:02d}" if with_time else text
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


# --------------------------------------------------------------------------- the forms
_forms: dict[str, FormSpec] = {}


def register_forms(specs: Iterable[FormSpec]) -> None:
    """Forms loaded from another directory than `dialogues/` (an app built with its own
    `dialogues_dir`): their responses are laid out from these specs."""
    for spec in specs:
        _forms[spec.name] = spec


def form_spec(form_id: str | None) -> FormSpec:
    """The form a response answered: a registered one, else `dialogues/<form_id>.yaml`; a form
    that no longer exists falls back to the AMI's (its answers keep their keys)."""
    name = form_id or AMI_FORM
    spec = _forms.get(name)
    if spec is not None:
        return spec
    try:
        return _spec_of(name)
    except (OSError, SchemaError, KeyError):
        log.warning("form %r not found: laid out as %s", name, AMI_FORM)
        return _spec_of(AMI_FORM)


def fiche_texts(spec: FormSpec) -> dict[str, Any]:
    return dict(spec.data.get("fiche") or {})


def recipient_address(spec: FormSpec, settings: Settings) -> str:
    """The rule (docs/forms.md): the form's `recipient.address` when it names one; otherwise
    the ARS_MAILBOX setting (`recipient.setting: ars_mailbox`, or no recipient at all)."""
    address = _text(spec.recipient.get("address"))
    return address or settings.ars_mailbox


def recipient_name(spec: FormSpec) -> str:
    return _text(spec.recipient.get("name"))


# --------------------------------------------------------------------------- the layout
@dataclass(frozen=True)
class Cell:
    """One export column of one response: stable key, header, width, text, typed value."""

    key: str
    header: str
    width: int
    text: str
    typed: object = None  # a date or a number in XLSX
    number_format: str = ""


@dataclass
class Block:
    """One question of the fiche with this response's answer, ready for any renderer."""

    id: str
    label: str
    kind: str  # "text", "choices", "group"
    section: str  # the banner it stands under (shared by consecutive steps)
    heading: str = ""  # its title inside a shared section
    hint: str = ""  # what the paper fiche prints under the title
    text: str = ""
    details: list[str] = field(default_factory=list)  # « Reconnu : … »
    choices: list[tuple[bool, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    whole: set[int] = field(default_factory=set)  # columns never broken across lines (phones)
    cells: list[Cell] = field(default_factory=list)

    @staticmethod
    def row_line(row: Iterable[str]) -> str:
        return " — ".join(v for v in row if v)

    def lines(self, not_given: str = NOT_GIVEN) -> list[str]:
        """The answer as plain lines (numbered items, ☒/☐ choices, text and its details)."""
        if self.kind == "group":
            return [f"{i}. {self.row_line(r)}" for i, r in enumerate(self.rows, 1)] or [not_given]
        if self.kind == "choices":
            return [f"{'☒' if on else '☐'} {label}" for on, label in self.choices]
        return [self.text or not_given, *self.details]


@dataclass
class Part:
    """A section banner of the fiche and the questions under it."""

    title: str
    blocks: list[Block]


@dataclass
class Fiche:
    """A submission laid out like its form's fiche."""

    reference: str
    form_id: str
    form_title: str
    title: str
    subtitle: str
    issuer: str
    issuer_unit: str
    contact: str
    recipient: str  # the address the response was sent to
    recipient_name: str
    submitted: str
    submitted_at: datetime
    not_given: str
    blocks: list[Block]
    flags: list[dict[str, str]]
    where: str  # the response's place (its territory, else its first commune)
    who: str  # who answered (the first actor)
    departements: list[str] = field(default_factory=list)  # « 56 »: the délégation

    @property
    def parts(self) -> list[Part]:
        parts: list[Part] = []
        for block in self.blocks:
            if parts and parts[-1].title == block.section:
                parts[-1].blocks.append(block)
            else:
                parts.append(Part(block.section, [block]))
        return parts

    def checked(self) -> list[str]:
        """The labels of every ticked box."""
        return [label for b in self.blocks for on, label in b.choices if on]

    def lines(self, indent: str = "  ") -> list[str]:
        """The answers as plain text: « Label : » then the answer, indented."""
        out: list[str] = []
        for block in self.blocks:
            out.append(f"{block.label} :")
            out += [indent + line for line in block.lines(self.not_given)]
        if self.flags:
            out.append("Points à vérifier :")
            out += [f"{indent}• {flag_line(f)}" for f in self.flags]
        return out


def flag_line(flag: dict[str, str]) -> str:
    """ "Référent 2 — Téléphone : « 02 99 » (non vérifié) — numéro à vérifier"."""
    reason = f" — {flag['reason']}" if flag.get("reason") else ""
    return f"{flag['field']} : « {flag['value']} » (non vérifié){reason}"


def submitted_at(submission: Submission) -> datetime:
    raw = (submission.answers or {}).get("submitted_at")
    if raw:
        try:
            parsed = datetime.fromisoformat(str(raw))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    created = submission.created_at
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def departements_of(submission: Submission) -> list[str]:
    """The response's départements (its territory's, else its actors' communes'), for routing."""
    stored = getattr(submission, "departements", "") or ""
    if stored:
        return [d for d in stored.split(",") if d]
    value = (submission.answers or {}).get("departements") or []
    return [str(d) for d in value] if isinstance(value, list) else []


def understood_cell(understood: Any) -> str:
    """ "CC Ploërmel Communauté — 30 communes, 43 228 habitants (INSEE 2023)"."""
    if not isinstance(understood, dict) or not understood.get("communes"):
        return ""
    places = ", ".join(
        dict.fromkeys(str(m.get("name") or "") for m in understood.get("matches") or [])
    )
    n = len(understood["communes"])
    people = f"{int(understood.get('population') or 0):,}".replace(",", " ")
    year = understood.get("population_year")
    source = f" (INSEE {year})" if year else ""
    return f"{places} — {n} commune{'s' if n > 1 else ''}, {people} habitants{source}"


def _understood_date(value: dict[str, Any]) -> date | None:
    try:
        return date.fromisoformat(str(value.get("date"))) if value.get("date") else None
    except ValueError:
        return None


def display(step: Step, value: Any, item: dict[str, Any] | None = None) -> str:
    """An answer as people read it: a choice's label, a phone as typed, a period and the date
    understood (« avant fin février (compris : 28 février 2027) »)."""
    if step.store_display:
        shown = (item or {}).get(f"{step.id}_display")
        if shown:
            return _text(shown)
    if value in (None, "", []):
        return ""
    if step.kind == "choice":
        return step.choice_label(value)
    if step.kind == "multi_choice" and isinstance(value, list):
        return ", ".join(step.choice_label(v) for v in value)
    if isinstance(value, dict):
        text = _text(value.get("text")) or _text(value.get("label"))
        day = _understood_date(value)
        detail = french_date(day) if day else _text(value.get("label")) or _text(value.get("date"))
        return f"{text} (compris : {detail})" if detail and detail != text else text
    return _text(value)


def _follow_ups(step: Step) -> dict[str, Step]:
    """Group fields asked only after a sibling's answer (« Autre… » → which): sibling id → field.
    Such a field has no column of its own: when given, it replaces the sibling's value."""
    ids = [f.id for f in step.fields]
    out: dict[str, Step] = {}
    for sub in step.fields:
        keys = [k for k in (sub.ask_if or {}) if k in ids and k != sub.id]
        if keys and keys[0] not in out:
            out[keys[0]] = sub
    return out


def _width(step: Step) -> int:
    return 60 if step.max_length > 500 else 32 if step.max_length > 100 else 22


def _group_block(step: Step, value: Any, base: Block) -> Block:
    follow = _follow_ups(step)
    detail_ids = {f.id for f in follow.values()}
    fields = [f for f in step.fields if f.id not in detail_ids]
    items = [i for i in value or [] if isinstance(i, dict)] if isinstance(value, list) else []
    rows = []
    for item in items:
        row = []
        for f in fields:
            extra = follow.get(f.id)
            detail = display(extra, item.get(extra.id), item) if extra else ""
            row.append(detail or display(f, item.get(f.id), item))
        rows.append(row)
    base.kind = "group"
    base.columns = [f.label for f in fields]
    base.rows = rows
    base.whole = {i for i, f in enumerate(fields) if f.kind == "phone"}
    base.cells = [
        Cell(f"{step.id}.count", f"{step.label} (nombre)", 10, str(len(items)), len(items)),
        *(
            Cell(f"{step.id}.{f.id}", f"{step.label} — {f.label}", _width(f), "\n".join(col))
            for i, f in enumerate(fields)
            for col in [[r[i] for r in rows]]
        ),
    ]
    return base


def _block(step: Step, answers: dict[str, Any]) -> Block:
    section = _text(step.raw.get("section")) or step.label
    # under a banner of its own label a question needs no title; under another, it has one
    heading = _text(step.raw.get("heading")) or (step.label if section != step.label else "")
    base = Block(
        id=step.id,
        label=step.label,
        kind="text",
        section=section,
        heading=heading,
        hint=_text(step.raw.get("hint")),
    )
    value = answers.get(step.id)
    if step.kind == "group":
        return _group_block(step, value, base)
    if step.kind == "multi_choice":
        chosen = set(value) if isinstance(value, list) else set()
        base.kind = "choices"
        base.choices = [(c.value in chosen, c.label) for c in step.choices]
        base.cells = [
            Cell(f"{step.id}.{c.value}", c.label, 18, "Oui" if on else "Non")
            for c, (on, _) in zip(step.choices, base.choices, strict=True)
        ]
        return base
    base.text = display(step, value, answers)
    base.cells = [Cell(step.id, step.label, _width(step), base.text)]
    if step.kind == "date_or_period":
        day = _understood_date(value) if isinstance(value, dict) else None
        base.cells.append(
            Cell(
                f"{step.id}.date",
                f"{step.label} (échéance comprise)",
                20,
                french_date(day) if day else "",
                day,
                "dd/mm/yyyy",
            )
        )
    if step.understand:
        understood = understood_cell(answers.get(f"{step.id}_understood"))
        if understood:
            base.details.append(f"Reconnu : {understood}")
        base.cells.append(Cell(f"{step.id}.understood", f"{step.label} (reconnu)", 40, understood))
    return base


def _pick(spec: FormSpec, refs: list[str], answers: dict[str, Any]) -> str:
    """The first answered of `refs` (« territory », « actors.commune »: the first item's)."""
    for ref in refs:
        step_id, _, field_id = ref.partition(".")
        step = spec.by_id.get(step_id)
        if step is None:
            continue
        value = answers.get(step_id)
        if field_id:
            sub = next((f for f in step.fields if f.id == field_id), None)
            items = (
                [i for i in value or [] if isinstance(i, dict)] if isinstance(value, list) else []
            )
            shown = display(sub, items[0].get(field_id), items[0]) if sub and items else ""
        else:
            shown = display(step, value, answers)
        if shown:
            return shown
    return ""


def question_steps(spec: FormSpec) -> list[Step]:
    """The steps that hold an answer, in the form's order."""
    return [s for s in spec.steps if s.kind in QUESTION_KINDS or s.kind == "group"]


def build_fiche(submission: Submission, spec: FormSpec | None = None) -> Fiche:
    """Read a submission's answers defensively (any field may be missing or odd)."""
    spec = spec or form_spec(submission.form_id)
    answers = submission.answers or {}
    texts = fiche_texts(spec)
    steps = question_steps(spec)
    when = submitted_at(submission)
    return Fiche(
        reference=submission.reference,
        form_id=spec.name,
        form_title=spec.form_title,
        title=_text(texts.get("title")) or spec.form_title,
        subtitle=_text(texts.get("subtitle")),
        issuer=_text(texts.get("issuer")),
        issuer_unit=_text(texts.get("issuer_unit")),
        contact=_text(texts.get("contact")),
        recipient=_text(submission.recipient),
        recipient_name=recipient_name(spec),
        submitted=french_date(when),
        submitted_at=when,
        not_given=NOT_GIVEN,
        blocks=[_block(s, answers) for s in steps],
        flags=[
            {
                # the field's label (« Référent 2 — Téléphone »), the path for older responses
                "field": _text(f.get("label") or f.get("field")),
                "value": _text(f.get("value")),
                "reason": _text(f.get("reason")),
            }
            for f in answers.get("flags") or []
            if isinstance(f, dict)
        ],
        where=_pick(spec, list(texts.get("where") or []), answers),
        who=_pick(spec, list(texts.get("who") or []), answers),
        departements=departements_of(submission),
    )


def fiche_json(submission: Submission) -> dict[str, Any]:
    """The response for import (its answers exactly as stored) and for people (`fiche`: every
    question's label and answer as shown on the fiche, in the form's order)."""
    fiche = build_fiche(submission)
    return {
        "reference": submission.reference,
        "form_id": submission.form_id,
        "form_title": fiche.form_title,
        "created_at": submission.created_at.isoformat() if submission.created_at else None,
        "fiche": [
            {"id": b.id, "label": b.label, "answer": b.lines(fiche.not_given)} for b in fiche.blocks
        ],
        "answers": submission.answers,
    }
