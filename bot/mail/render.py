"""The e-mails the ARS secretariat (and the respondent) receive, rendered at send time."""

from __future__ import annotations

import json
import re
import unicodedata
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.config import Settings
from bot.engine.messages import french_format
from bot.mail import fiche as F
from bot.mail.export import export_table, overlaps_cell, rows_to_csv
from bot.mail.outbox import KIND_ARS, KIND_COPY, ars_recipient, valid_address
from bot.mail.pdfproc import render_pdf
from bot.storage.models import Submission
from bot.storage.overlaps import Overlap

TEMPLATES = Path(__file__).resolve().parent / "templates"
_text_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=False,
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_html_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")


def render_text(template: str, **context: Any) -> str:
    return _text_env.get_template(template).render(**context)


def render_html(template: str, **context: Any) -> str:
    return _html_env.get_template(template).render(**context)


def header_text(text: str, limit: int = 80) -> str:
    """One line, no control or bidi characters, at most `limit` characters."""
    text = " ".join(HEADER_UNSAFE.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# Letters that NFKD does not decompose into ASCII: transliterated, never dropped
LIGATURES = str.maketrans(
    {"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss", "ø": "o", "Ø": "O", "ł": "l",
     "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "Th", "ð": "d", "Ð": "D", "ŀ": "l",
     "’": "-", "ʼ": "-"}
)  # fmt: skip


def safe_filename(name: str, default: str = "fichier", limit: int = 80) -> str:
    """ASCII letters, digits, dot, dash and underscore only: no path, no emoji, no RTL mark."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not re.fullmatch(r"[A-Za-z0-9]{1,5}", ext):
        stem, ext = name, ""
    stem = stem.translate(LIGATURES)  # « Cœur » → Coeur, not Cur
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    ascii_stem = re.sub(r"[^A-Za-z0-9_-]+", "-", ascii_stem).strip("-_.")
    ascii_stem = re.sub(r"-{2,}", "-", ascii_stem)[:limit].strip("-_") or default
    return f"{ascii_stem}.{ext.lower()}" if ext else ascii_stem


def subject_for(submission: Submission) -> str:
    """The form's `fiche.subject` (« [AMI CPTS] [56] AMI-2026-0007 — <territory or first
    commune> — <first actor> »); the département(s) in brackets route the response to its
    délégation départementale."""
    spec = F.form_spec(submission.form_id)
    fiche = F.build_fiche(submission, spec)
    template = F.fiche_texts(spec).get("subject") or "{reference} — {where}"
    deps = fiche.departements
    return header_text(
        french_format(
            template,
            reference=header_text(submission.reference, 32),
            routing=f"[{header_text(', '.join(deps), 20)}] " if deps else "",
            where=header_text(fiche.where or fiche.not_given, 70),
            who=header_text(fiche.who or "—", 60),
        ),
        250,
    )


def copy_subject_for(submission: Submission) -> str:
    spec = F.form_spec(submission.form_id)
    template = F.fiche_texts(spec).get("copy_subject") or "Copie de votre réponse — {reference}"
    return header_text(french_format(template, reference=header_text(submission.reference, 32)))


def reply_to_addresses(submission: Submission) -> tuple[list[str], list[str]]:
    """The referents' addresses usable in Reply-To, and those skipped as malformed."""
    good: list[str] = []
    skipped: list[str] = []
    for referent in (submission.answers or {}).get("referents") or []:
        raw = str(referent.get("email") or "").strip() if isinstance(referent, dict) else ""
        if not raw:
            continue
        address = valid_address(raw)
        if address and address.lower() not in {g.lower() for g in good}:
            good.append(address)
        elif not address:
            skipped.append(raw)
    return good, skipped


def submission_json(submission: Submission) -> bytes:
    """The response as JSON: answers as stored (for import) and the fiche's labels and answers."""
    return json.dumps(F.fiche_json(submission), ensure_ascii=False, indent=2).encode("utf-8")


def mail_address(value: str, display: str = "") -> Address:
    name, addr = parseaddr(value)
    return Address(display_name=header_text(display or name, 60), addr_spec=addr or value)


def build_submission_message(
    submission: Submission,
    settings: Settings,
    *,
    kind: str = KIND_ARS,
    recipient: str | None = None,
    message_id: str,
    overlaps: list[Overlap] | None = None,
    overlap_total: int | None = None,
    now: Any = None,
) -> EmailMessage:
    """The ARS e-mail (or the respondent's copy): text and HTML bodies, PDF, JSON and CSV."""
    spec = F.form_spec(submission.form_id)
    fiche = F.build_fiche(submission, spec)
    reply_to, skipped = reply_to_addresses(submission)
    is_copy = kind == KIND_COPY
    ars = ars_recipient(submission, settings)
    context = {
        "fiche": fiche,
        "kind": kind,
        "is_copy": is_copy,
        # Other responses' names and territories go to the ARS only, never to a respondent.
        "overlaps": [] if is_copy else (overlaps or []),
        # responses sharing communes beyond those listed (an e-mail lists the most shared)
        "overlaps_more": 0
        if is_copy or overlap_total is None
        else max(overlap_total - len(overlaps or []), 0),
        "skipped_reply_to": skipped,
        "ars_mailbox": ars,
        "flag_line": F.flag_line,
    }
    msg = EmailMessage()
    msg["Subject"] = copy_subject_for(submission) if is_copy else subject_for(submission)
    sender = str(F.fiche_texts(spec).get("sender") or fiche.issuer or "Bot")
    msg["From"] = mail_address(settings.mail_from, sender)
    msg["To"] = mail_address(recipient or ars)
    if is_copy:
        msg["Reply-To"] = mail_address(ars)
    elif reply_to:
        msg["Reply-To"] = [Address(addr_spec=a) for a in reply_to]
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(now or fiche.submitted_at)
    msg["X-AMI-Reference"] = header_text(submission.reference, 32)
    msg.set_content(render_text("submission.txt.j2", **context), cte="quoted-printable")
    msg.add_alternative(render_html("submission.html.j2", **context), subtype="html")
    pdf_name = safe_filename(f"fiche-{submission.reference}-{fiche.where}.pdf", "fiche-AMI")
    msg.add_attachment(
        render_pdf(submission), maintype="application", subtype="pdf", filename=pdf_name
    )
    msg.add_attachment(
        submission_json(submission),
        maintype="application",
        subtype="json",
        filename=safe_filename(f"{submission.reference}.json", "reponse"),
    )
    csv_overlaps = "" if is_copy else overlaps_cell([o.reference for o in overlaps or []])
    columns, rows = export_table([submission], {submission.id: csv_overlaps})
    msg.add_attachment(
        rows_to_csv(columns, rows),
        maintype="text",
        subtype="csv",
        filename=safe_filename(f"{submission.reference}.csv", "reponse"),
    )
    return msg
