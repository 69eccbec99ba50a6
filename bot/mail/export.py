"""Exports of all responses: XLSX (openpyxl), CSV (UTF-8 with BOM, ";"), JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from bot.mail import fiche as F
from bot.storage.models import Submission
from bot.storage.overlaps import OverlapIndex

MAX_CELL = 32_000  # Excel's limit is 32 767 characters per cell
OVERLAPS_SHOWN = 10


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    width: int
    number_format: str = ""


# Columns of every response whatever its form; the form's questions stand between the two.
LEADING = [
    Column("reference", "Référence", 16),
    Column("submitted", "Reçue le", 24, "dd/mm/yyyy hh:mm"),
]
TRAILING = [
    Column("departements", "Département(s)", 12),
    Column("copy", "Copie au référent", 10),
    Column("flags", "Points à vérifier", 40),
    Column("overlaps", "Territoires en commun avec", 40),
    Column("telegram_user_id", "Identifiant Telegram", 14),
    Column("form_id", "Formulaire", 14),
]


@dataclass
class Row:
    """One response: every cell as text (CSV), dates and counts also typed (XLSX)."""

    text: dict[str, str]
    typed: dict[str, object] = field(default_factory=dict)


def overlaps_cell(references: Sequence[str]) -> str:
    """ "AMI-2026-0001, AMI-2026-0004" (at most ten, then how many more)."""
    shown = ", ".join(references[:OVERLAPS_SHOWN])
    more = len(references) - OVERLAPS_SHOWN
    return f"{shown} … et {more} autre(s)" if more > 0 else shown


def _merge(columns: list[Column], new: list[Column]) -> None:
    """Add a form's question columns to the table's: a key already there keeps its place
    (the same question of two AMIs is one column), a new one goes right after the column
    before it in its own form (an extra question sits beside its neighbours)."""
    keys = [c.key for c in columns]
    after = -1
    for column in new:
        if column.key in keys:
            after = keys.index(column.key)
            continue
        columns.insert(after + 1, column)
        keys.insert(after + 1, column.key)
        after += 1


def export_table(
    submissions: Sequence[Submission], overlaps: dict[int | None, str] | None = None
) -> tuple[list[Column], list[Row]]:
    """The columns and one row per response. Responses to several forms make one table: the
    union of their questions' columns in the forms' order (cells of a question a form does not
    ask stay empty). Cells are text, except dates and counts (typed for XLSX)."""
    if overlaps is None:
        index = OverlapIndex(submissions)
        refs = {s.id: s.reference for s in submissions}
        overlaps = {
            s.id: overlaps_cell([refs[i] for i in index.overlap_ids(s, earlier_only=False)])
            for s in submissions
        }
    questions: list[Column] = []
    rows: list[Row] = []
    fiches = [F.build_fiche(s) for s in submissions]
    if not fiches:  # an empty export still shows the AMI's columns
        spec = F.form_spec(None)
        empty = Submission(reference="", user_id=0, form_id=spec.name, recipient="", answers={})
        _merge(questions, _question_columns(F.build_fiche(empty, spec)))
    merged: set[str] = set()
    for sub, fiche in zip(submissions, fiches, strict=True):
        if fiche.form_id not in merged:
            merged.add(fiche.form_id)
            _merge(questions, _question_columns(fiche))
        answers = sub.answers or {}
        text = {
            "reference": sub.reference,
            "submitted": fiche.submitted,
            "departements": ", ".join(fiche.departements),
            "copy": "Oui" if answers.get("copy_to_referent") else "Non",
            "flags": "\n".join(F.flag_line(f) for f in fiche.flags),
            "overlaps": overlaps.get(sub.id, ""),
            "telegram_user_id": str(answers.get("telegram_user_id") or sub.user_id),
            "form_id": sub.form_id,
        }
        # Excel has no time zones: the Paris wall-clock time, as the text export shows it
        typed: dict[str, object] = {
            "submitted": fiche.submitted_at.astimezone(F.PARIS).replace(tzinfo=None)
        }
        for block in fiche.blocks:
            for cell in block.cells:
                text[cell.key] = cell.text
                if cell.typed is not None:
                    typed[cell.key] = cell.typed
        rows.append(Row(text, typed))
    return [*LEADING, *questions, *TRAILING], rows


def _question_columns(fiche: F.Fiche) -> list[Column]:
    return [
        Column(c.key, c.header, c.width, c.number_format) for b in fiche.blocks for c in b.cells
    ]


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: str) -> str:
    """Neutralise spreadsheet formulas: any text starting with =, +, -, @, tab or CR gets a
    leading apostrophe (phone numbers included: "+1-1" is a formula to Excel); nothing else,
    empty cells included, is altered."""
    if value.startswith(FORMULA_START):
        return "'" + value
    return value


def rows_to_csv(columns: Sequence[Column], rows: Iterable[Row]) -> bytes:
    """CSV for Excel in France: UTF-8 with BOM (accents), ";" (the French list separator)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow([c.header for c in columns])
    for row in rows:
        writer.writerow([_csv_safe(row.text.get(c.key, "")) for c in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def export_csv(submissions: Sequence[Submission]) -> bytes:
    return rows_to_csv(*export_table(submissions))


def export_json(submissions: Sequence[Submission]) -> bytes:
    """Every response: its answers as stored (import) and its fiche (labels and answers)."""
    data = [F.fiche_json(s) for s in submissions]
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


def export_xlsx(submissions: Sequence[Submission]) -> bytes:
    """One row per response; bold frozen header; readable widths; text never read as formula;
    dates and counts typed (a spreadsheet sorts and filters them)."""
    columns, rows = export_table(submissions)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Réponses")
    ws.freeze_panes = "B2"
    for i, column in enumerate(columns, 1):
        ws.column_dimensions[get_column_letter(i)].width = column.width
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    header = []
    for column in columns:
        cell = WriteOnlyCell(ws, value=column.header)
        cell.font = bold
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        header.append(cell)
    ws.append(header)
    for row in rows:
        cells = []
        for column in columns:
            if column.key in row.typed:
                cell = WriteOnlyCell(ws, value=row.typed[column.key])
                if column.number_format:
                    cell.number_format = column.number_format
                cells.append(cell)
                continue
            value = row.text.get(column.key, "")[:MAX_CELL]
            cell = WriteOnlyCell(ws, value=value)
            cell.data_type = "s"  # a typed "=SOMME(…)" stays text
            if "\n" in value or len(value) > 40:
                cell.alignment = wrap
            cells.append(cell)
        ws.append(cells)
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
