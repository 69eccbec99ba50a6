"""The territory data file (`data/territories.json.gz`) and its provenance, checked at load.

Pure: no Telegram, no storage. Loaded once per process (`load_data()` is cached).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
DATA_FILE = DATA_DIR / "territories.json.gz"
PROVENANCE_FILE = DATA_DIR / "provenance.json"
SCHEMA_VERSION = 1
BRITTANY = ("22", "29", "35", "56")


class TerritoryDataError(ValueError):
    """The data file is missing or malformed (the message says where)."""


@dataclass(frozen=True, slots=True)
class Commune:
    code: str  # INSEE code, e.g. "56165"
    name: str
    departement: str
    population: int  # population municipale
    postal_codes: tuple[str, ...]
    epci: str | None  # SIREN of its EPCI
    outside: bool = False  # a member of a Breton EPCI outside Brittany (Loire-Atlantique)


@dataclass(frozen=True, slots=True)
class Epci:
    code: str  # SIREN
    name: str  # « CC Ploërmel Communauté »
    type: str  # CC, CA, CU, METRO
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Departement:
    code: str
    name: str
    brittany: bool


@dataclass(frozen=True)
class TerritoryData:
    communes: dict[str, Commune]
    epci: dict[str, Epci]
    departements: dict[str, Departement]
    former_names: list[tuple[str, str]]  # (former name, current commune code)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def population_year(self) -> int | None:
        year = self.provenance.get("population_year")
        return int(year) if year else None

    def members_of_departement(self, code: str) -> list[str]:
        return [c.code for c in self.communes.values() if c.departement == code]


def _require(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise TerritoryDataError(f"données de territoires invalides ({where}) : {what}")


def _str(row: dict[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    _require(isinstance(value, str) and bool(value), where, f"« {key} » doit être un texte")
    return str(value)


def parse(raw: Any, provenance: dict[str, Any] | None = None) -> TerritoryData:
    """Check the structure of the data file and build the lookup tables."""
    _require(isinstance(raw, dict), "racine", "un objet JSON est attendu")
    _require(raw.get("schema") == SCHEMA_VERSION, "schema", f"version {SCHEMA_VERSION} attendue")
    for key in ("communes", "epci", "departements", "former_names"):
        _require(isinstance(raw.get(key), list), key, "une liste est attendue")
    communes: dict[str, Commune] = {}
    for i, row in enumerate(raw["communes"]):
        where = f"communes[{i}]"
        _require(isinstance(row, dict), where, "un objet est attendu")
        code = _str(row, "code", where)
        _require(len(code) == 5 and code[:2].isalnum(), where, f"code INSEE invalide {code!r}")
        pop = row.get("pop")
        _require(isinstance(pop, int) and pop >= 0, where, "« pop » doit être un entier positif")
        cps = row.get("cp")
        _require(isinstance(cps, list) and all(isinstance(c, str) for c in cps), where, "« cp »")
        epci = row.get("epci")
        _require(epci is None or isinstance(epci, str), where, "« epci »")
        communes[code] = Commune(
            code=code,
            name=_str(row, "name", where),
            departement=_str(row, "dep", where),
            population=int(pop),  # type: ignore[arg-type]
            postal_codes=tuple(cps),  # type: ignore[arg-type]
            epci=epci,  # type: ignore[arg-type]
            outside=bool(row.get("outside", False)),
        )
    _require(len(communes) > 0, "communes", "aucune commune")
    epcis: dict[str, Epci] = {}
    for i, row in enumerate(raw["epci"]):
        where = f"epci[{i}]"
        _require(isinstance(row, dict), where, "un objet est attendu")
        members = row.get("members")
        _require(isinstance(members, list) and bool(members), where, "« members » vide")
        unknown = [m for m in members if m not in communes]  # type: ignore[union-attr]
        _require(not unknown, where, f"membres inconnus {unknown[:3]}")
        code = _str(row, "code", where)
        epcis[code] = Epci(code, _str(row, "name", where), _str(row, "type", where), tuple(members))  # type: ignore[arg-type]
    deps: dict[str, Departement] = {}
    for i, row in enumerate(raw["departements"]):
        where = f"departements[{i}]"
        _require(isinstance(row, dict), where, "un objet est attendu")
        code = _str(row, "code", where)
        deps[code] = Departement(code, _str(row, "name", where), bool(row.get("brittany")))
    former: list[tuple[str, str]] = []
    for i, row in enumerate(raw["former_names"]):
        where = f"former_names[{i}]"
        _require(isinstance(row, dict), where, "un objet est attendu")
        code = _str(row, "code", where)
        _require(code in communes, where, f"commune actuelle inconnue {code}")
        former.append((_str(row, "name", where), code))
    return TerritoryData(communes, epcis, deps, former, dict(provenance or {}))


def load_file(
    path: Path = DATA_FILE, provenance_path: Path | None = PROVENANCE_FILE
) -> TerritoryData:
    """Read and check a data file (gzip or plain JSON)."""
    try:
        raw_bytes = path.read_bytes()
        if raw_bytes[:2] == b"\x1f\x8b":
            raw_bytes = gzip.decompress(raw_bytes)
        raw = json.loads(raw_bytes.decode("utf-8"))
    except FileNotFoundError as exc:
        raise TerritoryDataError(
            f"fichier de territoires absent : {path} (python -m bot.territory.refresh)"
        ) from exc
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TerritoryDataError(f"fichier de territoires illisible : {path} ({exc})") from exc
    provenance: dict[str, Any] = {}
    if provenance_path is not None and provenance_path.exists():
        try:
            provenance = json.loads(provenance_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TerritoryDataError(f"provenance illisible : {provenance_path} ({exc})") from exc
    return parse(raw, provenance)


@lru_cache(maxsize=1)
def load_data() -> TerritoryData:
    """The data shipped in the repository, loaded once."""
    return load_file()
