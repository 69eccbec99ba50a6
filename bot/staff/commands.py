"""ARS staff commands, in Telegram (`/reponses`, `/export`, `/stats`, `/envois`, `/renvoyer`)
and on the command line (`python -m bot responses|export|stats|outbox`). Every access is audited.

In Telegram the commands run inside the staff member's turn, which holds a database transaction
(on SQLite, the write lock): they therefore read and write through that turn's session only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.engine.messages import Document, Reply, split_lines
from bot.mail import fiche as F
from bot.mail.export import export_csv, export_json, export_xlsx
from bot.mail.outbox import KIND_ARS, KIND_DIGEST
from bot.mail.pdfproc import render_pdf
from bot.mail.render import safe_filename
from bot.storage.models import AuditEntry, OutboxJob, OutboxStatus, Submission
from bot.storage.overlaps import OverlapIndex, normalise, place_key

if TYPE_CHECKING:
    from bot.app import App
    from bot.config import Settings
    from bot.engine.flow import TurnContext

StaffCommand = Callable[["TurnContext", str], list[Reply]]
REFERENCE = re.compile(r"^[A-Z]{2,10}-\d{4}-\d{1,6}$", re.IGNORECASE)
TELEGRAM_LIMIT = 3800  # characters per message (Telegram allows 4096)
LIST_LIMIT = 25
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STATUS_LABELS = {
    OutboxStatus.PENDING: "en attente",
    OutboxStatus.SENT: "envoyé",
    OutboxStatus.FAILED: "EN ÉCHEC",
}
KIND_LABELS = {
    "ars": "e-mail ARS",
    "copy": "copie au référent",
    "digest": "récapitulatif",
    "verify": "code de vérification",
    "alert": "alerte d'échec",
    "staff": "e-mail à l'agent (échanges)",
    "respondent": "message au référent (adresse vérifiée)",
}
HELP = """Commandes réservées à l'équipe de l'ARS Bretagne :
/reponses — les dernières réponses à l'AMI
/reponses <texte> — chercher (nom, commune, territoire, contexte…)
/reponses AMI-2026-0007 — une réponse en détail, avec sa fiche PDF
/export — toutes les réponses en XLSX et CSV
/stats — réponses par objectif, par territoire, par semaine
/envois — état des e-mails (en attente, envoyés, en échec)
/renvoyer <n° d'envoi ou référence> — renvoyer un e-mail
Chaque consultation est enregistrée dans le journal d'accès."""


@dataclass
class StaffData:
    """The staff's reads and writes, on one session (a turn's, or the command line's)."""

    session: Session
    now: datetime
    actor: str
    commit_audit: bool = False  # the command line commits each audit row before showing data

    def audit(self, action: str, target: str = "") -> None:
        self.session.add(
            AuditEntry(actor=self.actor, action=action, target=target[:255], at=self.now)
        )
        if self.commit_audit:
            self.session.commit()  # written before the data is shown, even if output then fails

    def submissions(self) -> list[Submission]:
        return list(self.session.exec(select(Submission).order_by(col(Submission.id))))

    def jobs(self) -> list[OutboxJob]:
        return list(self.session.exec(select(OutboxJob).order_by(col(OutboxJob.id))))

    def requeue(self, job_id: int) -> bool:
        result = self.session.exec(  # type: ignore[call-overload]
            update(OutboxJob)
            .where(col(OutboxJob.id) == job_id)
            .values(status=OutboxStatus.PENDING, next_attempt_at=self.now, locked_until=None)
        )
        return bool(result.rowcount)


# ---------------------------------------------------------------------- texts
def _short_date(sub: Submission) -> str:
    return F.submitted_at(sub).astimezone(F.PARIS).strftime("%d/%m/%Y")


def _summary_line(sub: Submission) -> str:
    fiche = F.build_fiche(sub)
    where = fiche.where or fiche.not_given
    marks = "".join("☒" if on else "☐" for b in fiche.blocks for on, _ in b.choices)
    return f"{sub.reference} — {_short_date(sub)} — {where[:60]} — {fiche.who[:50]} — {marks}"


def _haystack(sub: Submission) -> str:
    fiche = F.build_fiche(sub)
    parts = [sub.reference]
    for block in fiche.blocks:
        parts += [block.text, *(v for row in block.rows for v in row)]
    understood = (sub.answers or {}).get("territory_understood") or {}
    if isinstance(understood, dict):  # « Josselin » finds a response on Ploërmel Communauté
        parts += [str(c.get("name") or "") for c in understood.get("communes") or []]
    return normalise(" ".join(parts))


def search(subs: list[Submission], query: str) -> list[Submission]:
    """Responses containing every word of the query (accents and case ignored)."""
    words = normalise(query).split()
    return [s for s in subs if all(w in _haystack(s) for w in words)]


def list_text(subs: list[Submission], query: str = "") -> str:
    shown = list(reversed(subs))[:LIST_LIMIT]
    if not subs:
        return (
            f"Aucune réponse ne contient « {query} »."
            if query
            else "Aucune réponse pour l'instant."
        )
    head = (
        f"{len(subs)} réponse(s) contenant « {query} »"
        if query
        else f"{len(subs)} réponse(s) à l'AMI, des plus récentes aux plus anciennes"
    )
    if len(subs) > len(shown):
        head += f" ({len(shown)} affichées ; /export pour toutes)"
    legend = "Objectifs ☒/☐ : informations, réflexion, initiative engagée."
    lines = [head + " :", *[_summary_line(s) for s in shown], "", legend]
    lines.append("Détail : /reponses <référence>")
    return "\n".join(lines)


def detail_text(sub: Submission, subs: list[Submission], jobs: list[OutboxJob]) -> str:
    fiche = F.build_fiche(sub)
    lines = [f"Réponse {sub.reference}, reçue le {fiche.submitted}", "", *fiche.lines()]
    overlaps = OverlapIndex(subs).overlaps_of(sub, earlier_only=False)
    if overlaps:
        lines += ["Territoire en commun avec :"]
        lines += [f"  ⚠ {o.describe()}" for o in overlaps]
    mine = [j for j in jobs if j.submission_id == sub.id]
    if mine:
        lines += ["E-mails :"]
        lines += [f"  {_job_line(j, {sub.id: sub.reference})}" for j in mine]
    return "\n".join(lines)


def stats_text(subs: list[Submission]) -> str:
    if not subs:
        return "Aucune réponse pour l'instant."
    objectives: Counter[str] = Counter()
    territories: Counter[str] = Counter()
    labels: dict[str, str] = {}
    weeks: Counter[str] = Counter()
    departements: Counter[str] = Counter()
    for sub in subs:
        for dep in F.departements_of(sub) or ["—"]:
            departements[dep] += 1
        fiche = F.build_fiche(sub)
        for block in fiche.blocks:  # every box of the forms' lists, ticked or not
            for on, label in block.choices:
                objectives[label] += on
        where = fiche.where or fiche.not_given
        key = place_key(where) or where
        labels.setdefault(key, where)
        territories[key] += 1
        year, week, _ = F.submitted_at(sub).astimezone(F.PARIS).isocalendar()
        weeks[f"{year}-S{week:02d}"] += 1
    lines = [f"{len(subs)} réponse(s) à l'AMI CPTS.", "", "Par objectif (plusieurs possibles) :"]
    lines += [f"  {n:>4}  {label}" for label, n in objectives.items()]
    names = {"22": "Côtes-d'Armor", "29": "Finistère", "35": "Ille-et-Vilaine", "56": "Morbihan"}
    lines += ["", "Par département (délégation départementale ; une réponse peut en avoir deux) :"]
    lines += [
        f"  {n:>4}  {dep} {names.get(dep, 'non déterminé' if dep == '—' else '')}".rstrip()
        for dep, n in sorted(departements.items())
    ]
    lines += ["", "Par territoire (ou commune du premier acteur) :"]
    lines += [f"  {n:>4}  {labels[k][:70]}" for k, n in territories.most_common(20)]
    if len(territories) > 20:
        lines.append(f"  … et {len(territories) - 20} autre(s)")
    lines += ["", "Par semaine de réception :"]
    lines += [f"  {week}  {n:>4}" for week, n in sorted(weeks.items())[-20:]]
    return "\n".join(lines)


def _job_line(job: OutboxJob, refs: dict[int | None, str]) -> str:
    what = KIND_LABELS.get(job.kind, job.kind)
    ref = refs.get(job.submission_id, "") if job.submission_id else ""
    status = STATUS_LABELS.get(OutboxStatus(job.status), job.status)
    line = f"n° {job.id} {what} {ref} → {job.recipient} : {status}"
    if job.status == OutboxStatus.PENDING and job.kind == KIND_DIGEST:
        line = f"n° {job.id} prochain récapitulatif le {F.french_date(job.next_attempt_at)}"
    elif job.status == OutboxStatus.PENDING and job.attempts:
        line += (
            f", {job.attempts} tentative(s), nouvel essai le {F.french_date(job.next_attempt_at)}"
        )
    elif job.status == OutboxStatus.SENT and job.sent_at:
        line += f" le {F.french_date(job.sent_at)}"
    if job.last_error and job.status != OutboxStatus.SENT:
        line += f" — {job.last_error[:160]}"
    return line


def outbox_text(jobs: list[OutboxJob], subs: list[Submission]) -> str:
    refs: dict[int | None, str] = {s.id: s.reference for s in subs}
    counts = Counter(j.status for j in jobs)
    lines = [
        "E-mails : "
        + ", ".join(f"{counts.get(s, 0)} {STATUS_LABELS[s]}" for s in OutboxStatus)
        + "."
    ]
    failed = [j for j in jobs if j.status == OutboxStatus.FAILED]
    pending = [j for j in jobs if j.status == OutboxStatus.PENDING]
    if failed:
        lines += ["", "En échec (refusés par le serveur, à renvoyer avec /renvoyer <n°>) :"]
        lines += [_job_line(j, refs) for j in failed]
    if pending:
        lines += ["", "En attente :"]
        lines += [_job_line(j, refs) for j in pending[:LIST_LIMIT]]
    recent = [j for j in jobs if j.status == OutboxStatus.SENT][-5:]
    if recent:
        lines += ["", "Derniers envois :"]
        lines += [_job_line(j, refs) for j in reversed(recent)]
    return "\n".join(lines)


def resend(data: StaffData, arg: str) -> tuple[str, list[int]]:
    """Requeue a job by number, or a reference's failed e-mails (else its ARS e-mail)."""
    arg = re.sub(r"^(n°|no|#)\s*", "", arg.strip(), flags=re.IGNORECASE)
    jobs = data.jobs()
    if not arg:
        return (
            "Précisez le n° d'envoi ou la référence : /renvoyer 12 ou /renvoyer AMI-2026-0007.",
            [],
        )
    if arg.isdecimal():
        chosen = [j for j in jobs if j.id == int(arg)]
        if not chosen:
            return f"Aucun envoi n° {arg}. Voir /envois.", []
    else:
        sub = next((s for s in data.submissions() if s.reference.upper() == arg.upper()), None)
        if sub is None:
            return f"Aucune réponse {arg.upper()}. Voir /reponses.", []
        mine = [j for j in jobs if j.submission_id == sub.id]
        chosen = [j for j in mine if j.status == OutboxStatus.FAILED] or [
            j for j in mine if j.kind == KIND_ARS
        ]
        if not chosen:
            return f"Aucun e-mail n'est associé à {sub.reference}.", []
    ids = [j.id for j in chosen if j.id is not None and data.requeue(j.id)]
    listed = ", ".join(f"n° {i}" for i in ids)
    return f"Remis en file d'envoi : {listed}. Il partira au prochain passage de l'envoi.", ids


def _replies(text: str) -> list[Reply]:
    return [Reply(chunk) for chunk in split_lines(text, TELEGRAM_LIMIT)]


# ---------------------------------------------------------------------- shared actions
def responses_action(data: StaffData, query: str) -> tuple[str, Submission | None]:
    subs = data.submissions()
    query = query.strip()
    if query and (REFERENCE.match(query) or query.isdecimal()):
        sub = next(
            (
                s
                for s in subs
                if s.reference.upper() == query.upper()
                or (query.isdecimal() and s.id == int(query))
            ),
            None,
        )
        data.audit("view_response", query.upper())
        if sub is None:
            return f"Aucune réponse {query.upper()}.", None
        return detail_text(sub, subs, data.jobs()), sub
    if query:
        data.audit("search_responses", query)
        return list_text(search(subs, query), query), None
    data.audit("list_responses")
    return list_text(subs), None


def _export_name(now: datetime, ext: str) -> str:
    return f"reponses-ami-cpts-{now.astimezone(F.PARIS):%Y%m%d-%H%M}.{ext}"


# ---------------------------------------------------------------------- Telegram
def staff_commands(app: App) -> dict[str, StaffCommand]:
    """The staff commands for `DialogueEngine.staff_commands` (reachable by ARS_STAFF_IDS only)."""

    def data_of(ctx: TurnContext) -> StaffData:
        return StaffData(ctx.turn.session, ctx.now, f"telegram:{ctx.user_id}")

    def reponses(ctx: TurnContext, arg: str) -> list[Reply]:
        text, sub = responses_action(data_of(ctx), arg)
        replies = _replies(text)
        if sub is not None:
            where = F.build_fiche(sub).where
            replies.append(
                Reply(
                    "La fiche remplie :",
                    document=Document(
                        filename=safe_filename(f"fiche-{sub.reference}-{where}.pdf"),
                        content=render_pdf(sub),
                        mime_type="application/pdf",
                        caption=f"Fiche {sub.reference}",
                    ),
                )
            )
        return replies

    def export(ctx: TurnContext, arg: str) -> list[Reply]:
        data = data_of(ctx)
        subs = data.submissions()
        data.audit("export", f"xlsx+csv, {len(subs)} réponse(s)")
        if not subs:
            return [Reply("Aucune réponse à exporter pour l'instant.")]
        return [
            Reply(
                f"Export de {len(subs)} réponse(s) : tableur Excel (XLSX) et CSV.",
                document=Document(_export_name(ctx.now, "xlsx"), export_xlsx(subs), XLSX, "XLSX"),
            ),
            Reply(
                "Le même export en CSV (UTF-8, séparateur « ; », s'ouvre dans Excel).",
                document=Document(
                    _export_name(ctx.now, "csv"), export_csv(subs), "text/csv", "CSV"
                ),
            ),
        ]

    def stats(ctx: TurnContext, arg: str) -> list[Reply]:
        data = data_of(ctx)
        data.audit("stats")
        return _replies(stats_text(data.submissions()))

    def envois(ctx: TurnContext, arg: str) -> list[Reply]:
        data = data_of(ctx)
        data.audit("outbox")
        return _replies(outbox_text(data.jobs(), data.submissions()))

    def renvoyer(ctx: TurnContext, arg: str) -> list[Reply]:
        data = data_of(ctx)
        text, ids = resend(data, arg)
        data.audit("resend", ",".join(map(str, ids)) or arg)
        return [Reply(text)]

    def aide(ctx: TurnContext, arg: str) -> list[Reply]:
        return [Reply(HELP)]

    return {
        "reponses": reponses,
        "réponses": reponses,
        "export": export,
        "stats": stats,
        "envois": envois,
        "renvoyer": renvoyer,
        "ars": aide,
    }


# ---------------------------------------------------------------------- command line
def run_cli(settings: Settings, args: argparse.Namespace) -> int:
    """`python -m bot export|outbox|stats|responses` (audit actor "cli")."""
    from bot.storage.migrations import DatabaseNotMigrated, ensure_migrated
    from bot.storage.store import Store

    store = Store.from_url(settings.database_url)
    try:
        ensure_migrated(store.engine)
    except DatabaseNotMigrated as exc:
        print(exc)
        return 2
    try:
        with store.session() as session:
            data = StaffData(session, store.clock(), "cli", commit_audit=True)
            code = _run(data, settings, args)
            session.commit()
    finally:
        store.engine.dispose()
    return code


def _run(data: StaffData, settings: Settings, args: argparse.Namespace) -> int:
    command = args.command
    if command == "responses":
        text, _ = responses_action(data, getattr(args, "query", "") or "")
        print(text)
        return 0
    if command == "stats":
        data.audit("stats")
        print(stats_text(data.submissions()))
        return 0
    if command == "outbox":
        if getattr(args, "resend", None) is not None:
            text, ids = resend(data, str(args.resend))
            data.audit("resend", ",".join(map(str, ids)) or str(args.resend))
            print(text.replace("/envois", "python -m bot outbox"))
            return 0 if ids else 1
        data.audit("outbox")
        print(outbox_text(data.jobs(), data.submissions()))
        return 0
    if command == "export":
        fmt = getattr(args, "format", "xlsx") or "xlsx"
        output = getattr(args, "output", None)
        path = Path(output) if output else _default_export_dir(settings)
        if path.is_dir() and not path.is_symlink():
            path = path / _export_name(data.now, fmt)  # `-o some/directory`: a file inside it
        problem = _export_target_problem(path)
        if problem:
            print(problem)
            return 2
        subs = data.submissions()
        content: bytes = {"xlsx": export_xlsx, "csv": export_csv, "json": export_json}[fmt](subs)
        data.audit("export", f"{fmt}, {len(subs)} réponse(s), {path.name}")
        try:
            write_private_file(path, content)
        except FileExistsError:
            print(f"{path} existe déjà : je n'écrase aucun fichier. Choisissez un autre nom (-o).")
            return 2
        except OSError as exc:
            print(f"Impossible d'écrire {path} : {exc.strerror or exc}.")
            return 2
        print(f"{len(subs)} réponse(s) exportée(s) dans {path}")
        return 0
    print(f"Commande inconnue : {command}")
    return 2


def _export_target_problem(path: Path) -> str | None:
    """A French sentence when the export cannot go to `path` (checked before any data is read)."""
    if path.is_symlink():
        return f"{path} est un lien symbolique : je n'écris pas à travers un lien. Choisissez un autre nom (-o)."
    if path.exists():
        return f"{path} existe déjà : je n'écrase aucun fichier. Choisissez un autre nom (-o)."
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        return f"{parent} n'est pas un dossier."
    return None


def write_private_file(path: Path, content: bytes) -> None:
    """Create `path` for its owner only (0600), never following a symlink, never overwriting."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def _default_export_dir(settings: Any) -> Path:
    from bot.config import ROOT

    return ROOT / "data" / "exports"
