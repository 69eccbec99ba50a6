"""The ARS's follow-up of AMI responses: statuses, délégations, agents, labels, notes.

Everything here works on the back office's own tables (`followup`, `followup_event`); the
submissions themselves are never altered. A `followup` row also holds what the list filters
and sorts on (reference, date, objectives, normalised text, overlap count), so that listing
thousands of responses is one indexed query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot import exchange
from bot.config import ROOT
from bot.mail import fiche as F
from bot.storage.models import Followup, FollowupEvent, StaffAccount, Submission
from bot.storage.overlaps import OverlapIndex, normalise
from bot.storage.store import Store
from bot.territory import territory_keys

CONFIG_PATH = ROOT / "config" / "followup.yaml"


# --- configuration ---------------------------------------------------------------------------
class StatusSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    label: str
    badge: Literal["new", "info", "warning", "success", "error"] = "info"
    closed: bool = False


class FollowupConfig(BaseModel):
    """config/followup.yaml, checked: unknown keys, duplicates and a missing initial refused."""

    model_config = ConfigDict(extra="forbid")

    initial: str
    statuses: list[StatusSpec]
    labels: list[str] = []
    delegations: dict[str, str]

    @model_validator(mode="after")
    def _coherent(self) -> FollowupConfig:
        ids = [s.id for s in self.statuses]
        if not ids:
            raise ValueError("au moins un statut est nécessaire")
        if len(set(ids)) != len(ids):
            raise ValueError(f"statuts en double : {sorted({i for i in ids if ids.count(i) > 1})}")
        if self.initial not in ids:
            raise ValueError(f"le statut initial « {self.initial} » n'est pas dans la liste")
        for dep in self.delegations:
            if not re.fullmatch(r"\d{2,3}|2[AB]", dep):
                raise ValueError(f"numéro de département invalide : « {dep} »")
        return self

    @property
    def by_id(self) -> dict[str, StatusSpec]:
        return {s.id: s for s in self.statuses}

    def status_label(self, status_id: str) -> str:
        spec = self.by_id.get(status_id)
        return spec.label if spec else status_id

    def delegation_label(self, dep: str | None) -> str:
        if not dep:
            return "Non attribuée"
        name = self.delegations.get(dep)
        return f"{dep} — {name}" if name else dep


class ConfigError(ValueError):
    """The follow-up configuration file is wrong (the message is in French, for operators)."""


def load_config(path: Path = CONFIG_PATH) -> FollowupConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Impossible de lire {path} : {exc}") from exc
    try:
        return FollowupConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'fichier'} : {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"Le fichier {path} n'est pas valide — {problems}") from exc


# --- départements, from the territory resolver ------------------------------------------------
def infer_departements(submission: Submission) -> list[str]:
    """The département(s) a response is about: those the territory resolver (bot/territory)
    gave it when it was stored — from the territory understood, else from the actors'
    communes —, or, for a response stored before that, the same reading done now."""
    stored = [d for d in (submission.departements or "").split(",") if d]
    if stored:
        return stored
    return list(territory_keys(submission.answers or {}).departements)


# --- the list's index rows -------------------------------------------------------------------
def search_text(submission: Submission) -> str:
    """Everything a free-text search looks into, normalised (no accents, lower case)."""
    answers = submission.answers or {}
    parts: list[str] = [submission.reference, str(answers.get("territory") or "")]
    parts.append(str(answers.get("context") or ""))
    for actor in answers.get("actors") or []:
        if isinstance(actor, dict):
            parts += [str(actor.get(k) or "") for k in ("name", "profession", "commune")]
    for referent in answers.get("referents") or []:
        if isinstance(referent, dict):
            parts += [str(referent.get(k) or "") for k in ("name", "function", "email")]
    return " " + normalise(" ".join(parts)) + " "


def new_followup(sub: Submission, config: FollowupConfig, now: datetime) -> Followup:
    answers = sub.answers or {}
    deps = infer_departements(sub)
    actors = [a for a in answers.get("actors") or [] if isinstance(a, dict)]
    objectives = [str(o) for o in answers.get("objectives") or []]
    assert sub.id is not None
    return Followup(
        submission_id=sub.id,
        reference=sub.reference,
        submitted_at=F.submitted_at(sub),
        status=config.initial,
        delegation=deps[0] if deps else None,
        departements=",".join(deps)[:64],
        labels=[],
        objectives=("," + ",".join(objectives) + ",") if objectives else "",
        first_actor=str(actors[0].get("name") or "")[:255] if actors else "",
        territory=str(answers.get("territory") or "")[:255],
        search_text=search_text(sub),
        updated_at=now,
    )


def sync(store: Store, config: FollowupConfig) -> int:
    """Give every submission without one its follow-up row; recount overlaps when any came.

    Cheap when nothing is new (two counts); new responses cost one overlap pass over all
    responses (about 1 s at 5 000 responses, on the first request after they arrive). Two
    instances racing to add the same rows: the loser's transaction fails on the primary key and
    is dropped, the winner's rows stand.
    """
    try:
        return _sync(store, config)
    except IntegrityError:
        return 0


def _sync(store: Store, config: FollowupConfig) -> int:
    with store.unit() as session:
        # fast path: a follow-up row exists only for a submission, and neither is ever deleted,
        # so equal counts mean nothing is missing (two index counts instead of an anti-join)
        subs = session.exec(select(func.count()).select_from(Submission)).one()
        rows = session.exec(select(func.count()).select_from(Followup)).one()
        if subs == rows:
            return 0
        missing = list(
            session.exec(
                select(Submission)
                .outerjoin(Followup, col(Followup.submission_id) == col(Submission.id))
                .where(col(Followup.submission_id).is_(None))
                .order_by(col(Submission.id))
            )
        )
        if not missing:
            return 0
        now = store.clock()
        for sub in missing:
            session.add(new_followup(sub, config, now))
        session.flush()
        recount_overlaps(session)
        return len(missing)


def recount_overlaps(session: Session) -> None:
    subs = list(session.exec(select(Submission).order_by(col(Submission.id))))
    index = OverlapIndex(subs)
    counts = {s.id: len(index.overlap_ids(s, earlier_only=False)) for s in subs}
    for row in session.exec(select(Followup)):
        if row.overlap_count != counts.get(row.submission_id, 0):
            row.overlap_count = counts.get(row.submission_id, 0)
            session.add(row)


# --- who sees what -----------------------------------------------------------------------
ROLES = {
    "secretariat": "Secrétariat",
    "delegation": "Délégation départementale",
    "manager": "Encadrement (lecture seule)",
}


def can_see(account: StaffAccount, row: Followup) -> bool:
    if account.role == "delegation":
        return row.delegation is not None and row.delegation in account.departements
    return account.role in ("secretariat", "manager")


def can_edit(account: StaffAccount, row: Followup) -> bool:
    return account.role in ("secretariat", "delegation") and can_see(account, row)


# --- the list --------------------------------------------------------------------------------
SORTS = {
    "date": Followup.submitted_at,
    "reference": Followup.submission_id,
    "statut": Followup.status,
    "delegation": Followup.delegation,
    "acteur": Followup.first_actor,
    "territoire": Followup.territory,
    "chevauchements": Followup.overlap_count,
}
OBJECTIVES = ("information", "reflection", "initiative")


class BadFilter(ValueError):
    """A filter the list cannot apply; the message is shown to the user, in French."""


def _parse_date(value: str, label: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise BadFilter(f"La date « {label} » n'est pas reconnue : écrivez-la comme 23/11/2026.")


@dataclass
class ListQuery:
    status: str = ""
    delegation: str = ""
    objective: str = ""
    date_from: date | None = None
    date_to: date | None = None
    overlap: str = ""  # "", "avec", "sans"
    q: str = ""
    sort: str = "date"
    order: str = "desc"
    page: int = 1
    errors: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, params: Any, config: FollowupConfig) -> ListQuery:
        """From the query string; anything wrong is dropped with a French message."""
        query = cls()

        def get(name: str) -> str:
            return str(params.get(name) or "").strip()

        if get("statut") in config.by_id:
            query.status = get("statut")
        elif get("statut"):
            query.errors.append("Ce statut n'existe pas : le filtre a été ignoré.")
        dep = get("delegation")
        if dep in config.delegations or dep == "aucune":
            query.delegation = dep
        elif dep:
            query.errors.append("Cette délégation n'existe pas : le filtre a été ignoré.")
        if get("objectif") in OBJECTIVES:
            query.objective = get("objectif")
        if get("chevauchement") in ("avec", "sans"):
            query.overlap = get("chevauchement")
        query.q = get("q")[:200]
        for name, label, attr in (("du", "du", "date_from"), ("au", "au", "date_to")):
            try:
                setattr(query, attr, _parse_date(get(name), label))
            except BadFilter as exc:
                query.errors.append(str(exc))
        if query.date_from and query.date_to and query.date_from > query.date_to:
            query.errors.append("La date de début est après la date de fin : aucune réponse.")
        if get("tri") in SORTS:
            query.sort = get("tri")
        if get("ordre") in ("asc", "desc"):
            query.order = get("ordre")
        page = get("page")
        query.page = int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1
        return query

    def params(self, **changes: Any) -> dict[str, str]:
        """The query string of this list (for links: pages, sorting, exports)."""
        values = {
            "statut": self.status,
            "delegation": self.delegation,
            "objectif": self.objective,
            "du": self.date_from.isoformat() if self.date_from else "",
            "au": self.date_to.isoformat() if self.date_to else "",
            "chevauchement": self.overlap,
            "q": self.q,
            "tri": self.sort,
            "ordre": self.order,
            "page": str(self.page),
        }
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v and not (k == "page" and v == "1")}


def _bounds(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=F.PARIS).astimezone(UTC)


def filtered(statement: Any, query: ListQuery, account: StaffAccount) -> Any:
    """Apply the account's scope and the query's filters to a statement over `followup`."""
    if account.role == "delegation":
        statement = statement.where(col(Followup.delegation).in_(account.departements or ["-"]))
    if query.status:
        statement = statement.where(Followup.status == query.status)
    if query.delegation == "aucune":
        statement = statement.where(col(Followup.delegation).is_(None))
    elif query.delegation:
        statement = statement.where(Followup.delegation == query.delegation)
    if query.objective:
        statement = statement.where(col(Followup.objectives).contains(f",{query.objective},"))
    if query.overlap == "avec":
        statement = statement.where(Followup.overlap_count > 0)
    elif query.overlap == "sans":
        statement = statement.where(Followup.overlap_count == 0)
    if query.date_from:
        statement = statement.where(Followup.submitted_at >= _bounds(query.date_from))
    if query.date_to:
        end = _bounds(query.date_to + (date(2000, 1, 2) - date(2000, 1, 1)))
        statement = statement.where(Followup.submitted_at < end)
    words = normalise(query.q).split()
    for word in words[:8]:
        statement = statement.where(col(Followup.search_text).contains(" " + word))
    return statement


def list_page(
    store: Store, query: ListQuery, account: StaffAccount, page_size: int
) -> tuple[list[Followup], int]:
    """One page of the filtered, sorted list, and how many responses match in all."""
    with store.unit() as session:
        total = int(
            session.exec(filtered(select(func.count()).select_from(Followup), query, account)).one()
        )
        pages = max(1, -(-total // page_size))
        query.page = min(query.page, pages)
        column = SORTS[query.sort]
        ordering = col(column).desc() if query.order == "desc" else col(column).asc()
        statement = (
            filtered(select(Followup), query, account)
            .order_by(ordering, col(Followup.submission_id).desc())
            .offset((query.page - 1) * page_size)
            .limit(page_size)
        )
        return list(session.exec(statement)), total


def matching_ids(store: Store, query: ListQuery, account: StaffAccount) -> list[int]:
    """Every response the filtered list holds (for exports), in the list's order."""
    with store.unit() as session:
        column = SORTS[query.sort]
        ordering = col(column).desc() if query.order == "desc" else col(column).asc()
        statement = filtered(select(Followup.submission_id), query, account).order_by(
            ordering, col(Followup.submission_id).desc()
        )
        return [int(i) for i in session.exec(statement)]


def submissions_by_ids(store: Store, ids: Sequence[int]) -> list[Submission]:
    with store.unit() as session:
        found = {
            s.id: s for s in session.exec(select(Submission).where(col(Submission.id).in_(ids)))
        }
    return [found[i] for i in ids if i in found]


def followups_by_ids(store: Store, ids: Iterable[int]) -> dict[int, Followup]:
    with store.unit() as session:
        return {
            f.submission_id: f
            for f in session.exec(
                select(Followup).where(col(Followup.submission_id).in_(list(ids)))
            )
        }


# --- one response -------------------------------------------------------------------------
def get_followup(store: Store, submission_id: int) -> Followup | None:
    with store.unit() as session:
        return session.get(Followup, submission_id)


def events_of(store: Store, submission_id: int) -> list[FollowupEvent]:
    with store.unit() as session:
        return list(
            session.exec(
                select(FollowupEvent)
                .where(FollowupEvent.submission_id == submission_id)
                .order_by(col(FollowupEvent.id).desc())
            )
        )


def _event(
    session: Session,
    store: Store,
    row: Followup,
    account: StaffAccount,
    kind: str,
    old: str,
    new: str,
) -> None:
    session.add(
        FollowupEvent(
            submission_id=row.submission_id,
            at=store.clock(),
            actor_id=account.id,
            actor=account.email,
            kind=kind,
            old_value=old,
            new_value=new,
        )
    )


class Refused(ValueError):
    """A change the user may not make, or that makes no sense; French message for them."""


def update_followup(
    store: Store,
    config: FollowupConfig,
    account: StaffAccount,
    submission_id: int,
    *,
    status: str | None = None,
    delegation: str | None = None,
    agent_id: int | Literal["keep"] | None = "keep",
    labels: list[str] | None = None,
    note: str | None = None,
) -> list[str]:
    """Apply the changes that differ, each recorded as an event; returns what changed (French)."""
    changed: list[str] = []
    with store.unit() as session:
        row = session.get(Followup, submission_id, with_for_update=store.is_postgres)
        if row is None or not can_see(account, row):
            raise Refused("Réponse introuvable.")
        if not can_edit(account, row):
            raise Refused("Votre rôle ne permet que la consultation.")
        if status is not None and status != row.status:
            if status not in config.by_id:
                raise Refused("Ce statut n'existe pas.")
            _event(session, store, row, account, "status", row.status, status)
            row.status = status
            changed.append(f"statut : {config.status_label(status)}")
            # the respondent is told in Telegram (config/exchange.yaml), in the same transaction
            exchange.status_changed(session, store, submission_id, status, account.email)
        if delegation is not None and (delegation or None) != row.delegation:
            if account.role != "secretariat":
                raise Refused("Seul le secrétariat peut changer la délégation d'une réponse.")
            if delegation and delegation not in config.delegations:
                raise Refused("Cette délégation n'existe pas.")
            _event(session, store, row, account, "delegation", row.delegation or "", delegation)
            row.delegation = delegation or None
            changed.append(f"délégation : {config.delegation_label(row.delegation)}")
            if row.agent_id is not None:
                agent = session.get(StaffAccount, row.agent_id)
                if agent is not None and not _agent_fits(agent, row):
                    _event(session, store, row, account, "agent", agent.email, "")
                    row.agent_id = None
        if agent_id != "keep" and agent_id != row.agent_id:
            old = session.get(StaffAccount, row.agent_id) if row.agent_id else None
            new = session.get(StaffAccount, agent_id) if agent_id else None
            if agent_id and (new is None or not new.active or not _agent_fits(new, row)):
                raise Refused("Cet agent ne peut pas suivre cette réponse (autre département).")
            _event(
                session,
                store,
                row,
                account,
                "agent",
                old.email if old else "",
                new.email if new else "",
            )
            row.agent_id = agent_id  # type: ignore[assignment]
            changed.append(f"agent : {new.email if new else 'aucun'}")
        if labels is not None:
            clean = list(dict.fromkeys(lbl.strip()[:40] for lbl in labels if lbl.strip()))[:12]
            if clean != list(row.labels or []):
                _event(
                    session,
                    store,
                    row,
                    account,
                    "labels",
                    ", ".join(row.labels or []),
                    ", ".join(clean),
                )
                row.labels = clean
                changed.append("étiquettes")
        if note is not None and note.strip():
            text = note.strip()
            if len(text) > 4000:
                raise Refused(
                    "La note dépasse 4 000 caractères : raccourcissez-la, s'il vous plaît."
                )
            _event(session, store, row, account, "note", "", text)
            changed.append("note ajoutée")
        if changed:
            row.updated_at = store.clock()
            session.add(row)
    return changed


def record_event(
    store: Store, account: StaffAccount, submission_id: int, kind: str, value: str
) -> None:
    with store.unit() as session:
        row = session.get(Followup, submission_id)
        if row is not None:
            _event(session, store, row, account, kind, "", value)


def _agent_fits(agent: StaffAccount, row: Followup) -> bool:
    if agent.role == "secretariat":
        return True
    return agent.role == "delegation" and row.delegation in (agent.departements or [])


def agents_for(store: Store, row: Followup) -> list[StaffAccount]:
    with store.unit() as session:
        accounts = session.exec(
            select(StaffAccount)
            .where(col(StaffAccount.active).is_(True))
            .order_by(col(StaffAccount.email))
        )
        return [a for a in accounts if _agent_fits(a, row)]


def accounts_by_id(store: Store) -> dict[int, StaffAccount]:
    with store.unit() as session:
        return {a.id: a for a in session.exec(select(StaffAccount)) if a.id is not None}


# --- statistics ------------------------------------------------------------------------------
def statistics(store: Store, account: StaffAccount) -> dict[str, Any]:
    """Counts by status, délégation, objective and week, and overlaps, over what the account sees."""
    query = ListQuery()
    with store.unit() as session:
        rows = list(session.exec(filtered(select(Followup), query, account)))
    by_status: dict[str, int] = {}
    by_delegation: dict[str, int] = {}
    by_objective = dict.fromkeys(OBJECTIVES, 0)
    by_week: dict[str, int] = {}
    overlapping = 0
    for row in rows:
        by_status[row.status] = by_status.get(row.status, 0) + 1
        by_delegation[row.delegation or ""] = by_delegation.get(row.delegation or "", 0) + 1
        for obj in OBJECTIVES:
            if f",{obj}," in row.objectives:
                by_objective[obj] += 1
        year, week, _ = row.submitted_at.astimezone(F.PARIS).isocalendar()
        key = f"{year}-S{week:02d}"
        by_week[key] = by_week.get(key, 0) + 1
        overlapping += row.overlap_count > 0
    return {
        "total": len(rows),
        "by_status": by_status,
        "by_delegation": by_delegation,
        "by_objective": by_objective,
        "by_week": dict(sorted(by_week.items())),
        "overlapping": overlapping,
    }
