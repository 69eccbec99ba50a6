"""The AMI fiche as data: wording from the form, answers formatted for people to read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.storage.models import Submission

TITLE = "APPEL À MANIFESTATION D'INTÉRÊT"
SUBTITLE = "Communauté Professionnelle Territoriale de Santé (CPTS)"
ISSUER = "ARS Bretagne"
RETURN_TO = "ars-bretagne-secretariat-daspf@ars.sante.fr"
ARS_CONTACT = (
    "Direction Adjointe des Soins de Proximité et Formations en Santé — "
    "Ronan Derieux : 02 22 06 73 54, ronan.derieux@ars.sante.fr ; "
    "Christelle Février : 02 22 06 73 40"
)

ACTORS_HEADING = "Identification des acteurs intéressés par l'AMI"
ACTORS_HINT = "Noms, professions, lieu d'exercice, exercice au sein d'une MSP/ESP, …"
REFERENTS_HEADING = "Identification du ou des référents"
REFERENTS_HINT = "Nom, fonction, adresse e-mail, téléphone"
OBJECTIVES = {
    "information": "Besoin d'informations sur ce qu'est une CPTS",
    "reflection": "Réflexion en cours autour d'un projet de CPTS",
    "initiative": "Initiative engagée pour monter un projet de CPTS",
}
CONTEXT_HINT = (
    "Décrivez le contexte qui vous conduit à répondre à cet Appel à Manifestation d'Intérêt"
)
TERRITORY_HINT = "Si vous en avez connaissance, précisez le territoire de projet envisagé"
CALENDAR_HINT = "Précisez l'échéance souhaitée pour organiser un temps d'échange"
NOT_GIVEN = "Non précisé"

PRACTICES = {
    "MSP": "MSP",
    "ESP": "ESP",
    "centre de santé": "centre de santé",
    "CPTS": "CPTS",
    "aucun": "sans exercice coordonné",
    "autre": "autre",
}
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


@dataclass
class Fiche:
    """A submission laid out like the AMI fiche."""

    reference: str
    submitted: str
    submitted_at: datetime
    form_title: str
    actors: list[dict[str, str]]
    referents: list[dict[str, str]]
    objectives: list[tuple[bool, str]]
    context: str
    territory: str
    calendar: str
    calendar_date: str
    flags: list[dict[str, str]]
    first_actor: str
    first_commune: str
    territory_understood: str = ""  # « CC Ploërmel Communauté — 30 communes, 43 228 habitants »
    departements: list[str] = field(default_factory=list)  # « 56 »: the délégation départementale
    extra: dict[str, Any] = field(default_factory=dict)

    def actor_line(self, actor: dict[str, str]) -> str:
        parts = [actor["name"], actor["profession"], actor["commune"], actor["practice"]]
        return " — ".join(p for p in parts if p)

    def referent_line(self, referent: dict[str, str]) -> str:
        parts = [referent["name"], referent["function"], referent["email"], referent["phone"]]
        return " — ".join(p for p in parts if p)


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


def practice_label(actor: dict[str, Any]) -> str:
    practice = _text(actor.get("practice"))
    if practice == "autre" and _text(actor.get("practice_other")):
        return _text(actor.get("practice_other"))
    return PRACTICES.get(practice, practice)


def build_fiche(submission: Submission) -> Fiche:
    """Read a submission's answers defensively (any field may be missing or odd)."""
    answers = submission.answers or {}
    actors = [
        {
            "name": _text(a.get("name")),
            "profession": _text(a.get("profession")),
            "commune": _text(a.get("commune")),
            "practice": practice_label(a),
        }
        for a in answers.get("actors") or []
        if isinstance(a, dict)
    ]
    referents = [
        {
            "name": _text(r.get("name")),
            "function": _text(r.get("function")),
            "email": _text(r.get("email")),
            "phone": _text(r.get("phone_display") or r.get("phone")),
        }
        for r in answers.get("referents") or []
        if isinstance(r, dict)
    ]
    chosen = set(answers.get("objectives") or [])
    calendar = answers.get("calendar") or {}
    if not isinstance(calendar, dict):
        calendar = {"text": _text(calendar)}
    cal_text = _text(calendar.get("text")) or _text(calendar.get("label"))
    cal_detail = _text(calendar.get("label"))
    if calendar.get("date"):
        try:
            cal_detail = french_date(date.fromisoformat(str(calendar["date"])))
        except ValueError:
            cal_detail = cal_detail or _text(calendar["date"])
    if cal_detail == cal_text:
        cal_detail = ""
    when = submitted_at(submission)
    return Fiche(
        reference=submission.reference,
        submitted=french_date(when),
        submitted_at=when,
        form_title=_text(answers.get("form_title")) or f"{TITLE} — {SUBTITLE}",
        actors=actors,
        referents=referents,
        objectives=[(key in chosen, label) for key, label in OBJECTIVES.items()],
        context=_text(answers.get("context")),
        territory=_text(answers.get("territory")),
        calendar=cal_text,
        calendar_date=cal_detail,
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
        first_actor=actors[0]["name"] if actors else "",
        first_commune=actors[0]["commune"] if actors else "",
        territory_understood=understood_cell(answers.get("territory_understood")),
        departements=departements_of(submission),
    )


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
