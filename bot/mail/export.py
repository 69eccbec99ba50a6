"""Exports of all responses: XLSX (openpyxl), CSV (UTF-8 with BOM, ";"), JSON."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import date

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from bot.mail import fiche as F
from bot.storage.models import Submission
from bot.storage.overlaps import Overlap, OverlapIndex

COLUMNS: list[tuple[str, str, int]] = [  # key, header, width
    ("reference", "Référence", 16),
    ("submitted", "Reçue le", 24),
    ("actors", "Professionnels / structures", 50),
    ("actors_count", "Nombre d'acteurs", 10),
    ("communes", "Communes d'exercice", 28),
    ("practices", "Exercice coordonné", 22),
    ("referents", "Référent(s)", 50),
    ("emails", "E-mails des référents", 32),
    ("phones", "Téléphones des référents", 22),
    ("obj_information", F.OBJECTIVES["information"], 18),
    ("obj_reflection", F.OBJECTIVES["reflection"], 18),
    ("obj_initiative", F.OBJECTIVES["initiative"], 18),
    ("context", "Contexte", 60),
    ("territory", "Territoire de projet", 32),
    ("territory_understood", "Territoire reconnu", 40),
    ("departements", "Département(s)", 12),
    ("calendar", "Calendrier", 26),
    ("calendar_date", "Échéance comprise", 20),
    ("copy", "Copie au référent", 10),
    ("flags", "Points à vérifier", 40),
    ("overlaps", "Territoires en commun avec", 40),
    ("telegram_user_id", "Identifiant Telegram", 14),
    ("form_id", "Formulaire", 14),
]
MAX_CELL = 32_000  # Excel's limit is 32 767 characters per cell


OVERLAPS_SHOWN = 10


def overlaps_cell(references: Sequence[str]) -> str:
    """ "AMI-2026-0001, AMI-2026-0004" (at most ten, then how many more)."""
    shown = ", ".join(references[:OVERLAPS_SHOWN])
    more = len(references) - OVERLAPS_SHOWN
    return f"{shown} … et {more} autre(s)" if more > 0 else shown


def submission_row(
    submission: Submission, overlaps: Sequence[Overlap] | str = ()
) -> dict[str, str]:
    """One response as one flat row (lists joined readably)."""
    fiche = F.build_fiche(submission)
    answers = submission.answers or {}
    chosen = set(answers.get("objectives") or [])
    return {
        "reference": submission.reference,
        "submitted": fiche.submitted,
        "actors": "\n".join(fiche.actor_line(a) for a in fiche.actors),
        "actors_count": str(len(fiche.actors)),
        "communes": ", ".join(dict.fromkeys(a["commune"] for a in fiche.actors if a["commune"])),
        "practices": ", ".join(dict.fromkeys(a["practice"] for a in fiche.actors if a["practice"])),
        "referents": "\n".join(f"{r['name']} ({r['function']})" for r in fiche.referents),
        "emails": ", ".join(r["email"] for r in fiche.referents if r["email"]),
        "phones": ", ".join(r["phone"] for r in fiche.referents if r["phone"]),
        "obj_information": "Oui" if "information" in chosen else "Non",
        "obj_reflection": "Oui" if "reflection" in chosen else "Non",
        "obj_initiative": "Oui" if "initiative" in chosen else "Non",
        "context": fiche.context,
        "territory": fiche.territory,
        "territory_understood": fiche.territory_understood,
        "departements": ", ".join(fiche.departements),
        "calendar": fiche.calendar,
        "calendar_date": fiche.calendar_date,
        "copy": "Oui" if answers.get("copy_to_referent") else "Non",
        "flags": "\n".join(f"{f['field']} : « {f['value']} » ({f['reason']})" for f in fiche.flags),
        "overlaps": overlaps
        if isinstance(overlaps, str)
        else overlaps_cell([o.reference for o in overlaps]),
        "telegram_user_id": str(answers.get("telegram_user_id") or submission.user_id),
        "form_id": submission.form_id,
    }


def all_rows(submissions: Sequence[Submission]) -> list[dict[str, str]]:
    """Every response as a row, with the other responses it overlaps (earlier or later)."""
    index = OverlapIndex(submissions)
    refs = {s.id: s.reference for s in submissions}
    return [
        submission_row(
            s, overlaps_cell([refs[i] for i in index.overlap_ids(s, earlier_only=False)])
        )
        for s in submissions
    ]


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: str) -> str:
    """Neutralise spreadsheet formulas: any text starting with =, +, -, @, tab or CR gets a
    leading apostrophe (phone numbers included: "+1-1" is a formula to Excel); nothing else,
    empty cells included, is altered."""
    if value.startswith(FORMULA_START):
        return "'" + value
    return value


def typed_cells(submission: Submission) -> dict[str, object]:
    """The cells that are dates or numbers in XLSX (a spreadsheet sorts and filters them)."""
    fiche = F.build_fiche(submission)
    out: dict[str, object] = {
        # Excel has no time zones: the Paris wall-clock time, as the text export shows it
        "submitted": fiche.submitted_at.astimezone(F.PARIS).replace(tzinfo=None),
        "actors_count": len(fiche.actors),
    }
    calendar = (submission.answers or {}).get("calendar")
    if isinstance(calendar, dict) and calendar.get("date"):
        with contextlib.suppress(ValueError):
            out["calendar_date"] = date.fromisoformat(str(calendar["date"]))
    return out


NUMBER_FORMATS = {"submitted": "dd/mm/yyyy hh:mm", "calendar_date": "dd/mm/yyyy"}


def rows_to_csv(rows: Iterable[dict[str, str]]) -> bytes:
    """CSV for Excel in France: UTF-8 with BOM (accents), ";" (the French list separator)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow([header for _, header, _ in COLUMNS])
    for row in rows:
        writer.writerow([_csv_safe(row.get(key, "")) for key, _, _ in COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def export_csv(submissions: Sequence[Submission]) -> bytes:
    return rows_to_csv(all_rows(submissions))


def export_json(submissions: Sequence[Submission]) -> bytes:
    data = [
        {
            "reference": s.reference,
            "form_id": s.form_id,
            "created_at": s.created_at.isoformat() if s.created_at else None,
            "answers": s.answers,
        }
        for s in submissions
    ]
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


def export_xlsx(submissions: Sequence[Submission]) -> bytes:
    """One row per response; bold frozen header; readable widths; text never read as formula."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Réponses AMI CPTS")
    ws.freeze_panes = "B2"
    for i, (_, _, width) in enumerate(COLUMNS, 1):
        ws.column_dimensions[get_column_letter(i)].width = width
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    header = []
    for _, title, _ in COLUMNS:
        cell = WriteOnlyCell(ws, value=title)
        cell.font = bold
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        header.append(cell)
    ws.append(header)
    for submission, row in zip(submissions, all_rows(submissions), strict=True):
        typed = typed_cells(submission)
        cells = []
        for key, _, _ in COLUMNS:
            if key in typed:
                cell = WriteOnlyCell(ws, value=typed[key])
                if key in NUMBER_FORMATS:
                    cell.number_format = NUMBER_FORMATS[key]
                cells.append(cell)
                continue
            value = row.get(key, "")[:MAX_CELL]
            cell = WriteOnlyCell(ws, value=value)
            cell.data_type = "s"  # a typed "=SOMME(…)" stays text
            if "\n" in value or len(value) > 40:
                cell.alignment = wrap
            cells.append(cell)
        ws.append(cells)
    ws.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{len(submissions) + 1}"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
