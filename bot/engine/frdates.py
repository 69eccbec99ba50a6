"""Understanding a date or a period written in French ("fin janvier", "sous 15 jours"…).

`understand(text, now)` never fails: what it cannot read is kept as written (date None). Our own
rules handle periods (début / mi / fin de mois, seasons, "sous N jours", "dès que possible");
dateparser (imported lazily: it is slow to import) is the fallback for the rest ("demain",
"lundi prochain", "le 3 mars 2027"…). Today is always the turn's `now`, never the system clock.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

MONTHS = {
    "janvier": 1,
    "janv": 1,
    "fevrier": 2,
    "fevr": 2,
    "fev": 2,
    "mars": 3,
    "avril": 4,
    "avr": 4,
    "mai": 5,
    "juin": 6,
    "juillet": 7,
    "juil": 7,
    "aout": 8,
    "septembre": 9,
    "sept": 9,
    "octobre": 10,
    "oct": 10,
    "novembre": 11,
    "nov": 11,
    "decembre": 12,
    "dec": 12,
}
MONTH_NAMES = [
    "",
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
]
SEASONS = {"printemps": (3, 20), "ete": (6, 21), "automne": (9, 22), "hiver": (12, 21)}
SEASON_NAMES = {"printemps": "printemps", "ete": "été", "automne": "automne", "hiver": "hiver"}
ASAP = re.compile(
    r"^(des que possible|au plus (vite|tot)|le plus (vite|tot) possible|rapidement|vite|"
    r"asap|urgent|au plus vite possible|immediatement|tout de suite|maintenant|"
    r"des maintenant|des a present)$"
)
UNITS = {"jour": 1, "jours": 1, "j": 1, "semaine": 7, "semaines": 7, "sem": 7, "mois": 30}
NUMBERS = {
    "un": 1,
    "une": 1,
    "deux": 2,
    "trois": 3,
    "quatre": 4,
    "cinq": 5,
    "six": 6,
    "huit": 8,
    "dix": 10,
    "quinze": 15,
    "quelques": 3,
}
WEEKDAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
MONTH_WORD = "(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"


@dataclass(frozen=True, slots=True)
class When:
    """What was understood: the text as written, a date if any, how to show it back."""

    text: str
    date: date | None
    label: str
    is_past: bool = False

    @property
    def shown(self) -> str:
        return self.date.strftime("%d/%m/%Y") if self.date else self.text

    def as_answer(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "date": self.date.isoformat() if self.date else None,
            "label": self.label,
        }


def fold(text: str) -> str:
    """Lower case, no accents, apostrophes and dashes as spaces, single spaces."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"[’'`\-]", " ", text)
    text = re.sub(r"[!?;,]", " ", text)
    return re.sub(r"\s+", " ", text).strip(" .")


def understand(text: str, now: datetime) -> When:
    """Read `text` relative to `now`; a date in the past comes back with `is_past`."""
    today = now.date()
    folded = fold(text)
    folded = re.sub(
        r"^(idealement|si possible|plutot|vers|aux alentours du|autour du) ", "", folded
    )
    if ASAP.match(folded):
        return When(text, None, "dès que possible")
    found = _rules(folded, today)
    if found is None:
        found = _dateparser(folded, now)
    if found is None:
        return When(text, None, text)
    day, name = found
    shown = day.strftime("%d/%m/%Y")
    if not name:
        name = text.strip() if re.search(r"[a-zA-Z]", text) else ""
    label = name if shown in name else (f"{name} → {shown}" if name else shown)
    return When(text, day, label, is_past=day < today)


def _rules(folded: str, today: date) -> tuple[date, str] | None:
    before = ""
    m = re.match(
        r"^(avant|d ici|d ici a|d ici le|d ici la|au plus tard|pour|jusqu a) (.*)$", folded
    )
    if m:
        before, folded = "avant ", m.group(2)
        folded = re.sub(r"^(le|la|a|au) ", "", folded)
    folded = re.sub(r"^(en|au mois de|courant|dans le courant de|le mois de|pour le) ", "", folded)

    # "sous 15 jours", "dans 3 semaines", "d'ici 2 mois"
    m = re.match(
        r"^(sous|dans|d ici|d ici a|avant)? ?(\d+|[a-z]+) (jours?|j|semaines?|sem|mois)$", folded
    )
    if m and (m.group(2).isdecimal() or m.group(2) in NUMBERS):
        n = int(m.group(2)) if m.group(2).isdecimal() else NUMBERS[m.group(2)]
        unit = m.group(3)
        if unit == "mois":
            return _add_months(today, n), ""
        return today + timedelta(days=n * UNITS[unit]), ""
    if folded in ("semaine prochaine", "la semaine prochaine"):
        monday = today + timedelta(days=7 - today.weekday())
        return monday, "semaine du " + monday.strftime("%d/%m/%Y")
    m = re.match(
        r"^(ce |le )?(lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)( prochain)?$", folded
    )
    if m:
        wanted = WEEKDAYS.index(m.group(2))
        ahead = (wanted - today.weekday()) % 7 or 7
        return today + timedelta(days=ahead), ""
    if folded in ("mois prochain", "le mois prochain"):
        first = _add_months(today.replace(day=1), 1)
        return first, f"{MONTH_NAMES[first.month]} {first.year}"
    if folded in ("fin du mois", "fin de mois", "la fin du mois", "fin de ce mois"):
        return _month_end(today.year, today.month), before + "fin du mois"
    if folded in ("fin d annee", "fin de l annee", "la fin de l annee", "fin d annee civile"):
        return date(today.year, 12, 31), before + "fin de l'année"

    # "début mars", "mi-avril", "fin janvier", "fin janvier 2027", "septembre"
    m = re.match(
        rf"^(debut|mi|milieu|fin|la fin|le debut|fin du mois de|debut du mois de)? ?(de |d )?{MONTH_WORD}( (\d{{4}}))?$",
        folded,
    )
    if m:
        part = (m.group(1) or "").replace("la ", "").replace("le ", "")
        month = MONTHS[m.group(3)]
        year = int(m.group(5)) if m.group(5) else None
        explicit = year is not None
        year = year or _next_year_for(today, month)
        if part.startswith("debut"):
            day, word = date(year, month, 1), "début"
        elif part in ("mi", "milieu"):
            day, word = date(year, month, 15), "mi-"
        elif part.startswith("fin"):
            day, word = _month_end(year, month), "fin"
        else:
            day, word = date(year, month, 1), ""
            if before:
                day, word = date(year, month, 1) - timedelta(days=1), ""
        if not explicit and day < today:
            if word == "" and not before and (year, month) == (today.year, today.month):
                day = today  # "en novembre" during November: from now on
            elif not before:
                return _rules(f"{part} {m.group(3)} {year + 1}".strip(), today)
        month_name = f"{MONTH_NAMES[month]} {day.year}"
        name = f"{word}{month_name}" if word == "mi-" else f"{word} {month_name}".strip()
        return day, (before + name).strip()

    # seasons
    m = re.match(
        r"^(au |a l |l |cet |ce |en )?(printemps|ete|automne|hiver)( (\d{4}))?( prochain)?$", folded
    )
    if m:
        season = m.group(2)
        month, dom = SEASONS[season]
        year = int(m.group(4)) if m.group(4) else today.year
        start = date(year, month, dom)
        if not m.group(4) and start < today:
            # already started this year: still ongoing (about three months) or next year's
            if today < _add_months(start, 3) and not m.group(5):
                return today, f"{SEASON_NAMES[season]} {year} (dès maintenant)"
            start = date(year + 1, month, dom)
        return start, f"{before}{SEASON_NAMES[season]} {start.year}".strip()

    # "15/03", "le 12/04", "15/03/2027", "15-03-27", "15.03"
    m = re.match(r"^(le |du |pour le )?(\d{1,2})[/.\s](\d{1,2})([/.\s](\d{2,4}))?$", folded)
    if m:
        d, mo = int(m.group(2)), int(m.group(3))
        year = _year(m.group(5))
        try:
            day = date(year or today.year, mo, d)
        except ValueError:
            return None
        if year is None and day < today:
            day = _safe_date(today.year + 1, mo, d) or day
        return day, f"avant le {day.strftime('%d/%m/%Y')}" if before else day.strftime("%d/%m/%Y")

    # "15 mars", "le 1er avril 2027"
    m = re.match(rf"^(le )?(\d{{1,2}})(er)? {MONTH_WORD}( (\d{{2,4}}))?$", folded)
    if m:
        d, month = int(m.group(2)), MONTHS[m.group(4)]
        year = _year(m.group(6))
        found = _safe_date(year or today.year, month, d)
        if found is None:
            return None
        if year is None and found < today:
            found = _safe_date(today.year + 1, month, d) or found
        shown = found.strftime("%d/%m/%Y")
        return found, f"avant le {shown}" if before else shown
    return None


def _dateparser(folded: str, now: datetime) -> tuple[date, str] | None:
    """Fallback for what our rules do not cover ("demain", "lundi prochain"…)."""
    if len(folded) > 60 or not re.search(r"[a-z0-9]", folded):
        return None
    import dateparser

    base = now.replace(tzinfo=None)
    parsed = dateparser.parse(
        folded,
        languages=["fr"],
        settings={"PREFER_DATES_FROM": "future", "RELATIVE_BASE": base},
    )
    if parsed is None:
        return None
    return parsed.date(), ""


def _year(text: str | None) -> int | None:
    if not text:
        return None
    year = int(text)
    return year + 2000 if year < 100 else year


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _next_year_for(today: date, month: int) -> int:
    """The year of the next occurrence of `month` (this year if it is not over)."""
    return today.year if month >= today.month else today.year + 1


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
