"""Exports of the back office's filtered list, built on bot/mail/export.py as it is.

The XLSX comes from `export_xlsx` (same columns from the forms' fiches, same protections, real
dates) and is then given the follow-up columns (status, délégation, agent, labels). The CSV is
`export_csv` as is.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from openpyxl import load_workbook
from openpyxl.styles import Font

from bot.mail.export import export_csv, export_xlsx
from bot.storage.models import Followup, StaffAccount, Submission
from bot.web.followup import FollowupConfig

FOLLOWUP_COLUMNS = [("Statut", 18), ("Délégation", 22), ("Agent", 28), ("Étiquettes", 28)]


def csv(submissions: Sequence[Submission]) -> bytes:
    return export_csv(submissions)


def xlsx(
    submissions: Sequence[Submission],
    followups: dict[int, Followup],
    config: FollowupConfig,
    accounts: dict[int, StaffAccount],
) -> bytes:
    workbook = load_workbook(io.BytesIO(export_xlsx(submissions)))
    sheet = workbook.active
    assert sheet is not None
    first_new = sheet.max_column + 1
    for offset, (title, width) in enumerate(FOLLOWUP_COLUMNS):
        cell = sheet.cell(row=1, column=first_new + offset, value=title)
        cell.font = Font(bold=True)
        sheet.column_dimensions[cell.column_letter].width = width
    for row_number, sub in enumerate(submissions, start=2):
        row = followups.get(sub.id or 0)
        if row is None:
            continue
        agent = accounts.get(row.agent_id) if row.agent_id else None
        values = [
            config.status_label(row.status),
            config.delegation_label(row.delegation),
            agent.email if agent else "",
            ", ".join(row.labels or []),
        ]
        for offset, value in enumerate(values):
            cell = sheet.cell(row=row_number, column=first_new + offset, value=value)
            cell.data_type = "s"
    last = sheet.cell(row=1, column=first_new + len(FOLLOWUP_COLUMNS) - 1).column_letter
    sheet.auto_filter.ref = f"A1:{last}{len(submissions) + 1}"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
