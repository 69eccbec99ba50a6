"""What the forms and the submissions need from the resolver (pure: plain dicts in and out).

- `understand(text)`: the resolution of a typed territory as a JSON-able dict, or None when
  nothing in it is a place we know (the form then keeps the text as typed);
- `settle(understood, i, j)`: the user picked candidate `j` of ambiguity `i` (None: none);
- `values(understood)`: the placeholders of the form's French texts;
- `territory_keys(answers)`: the communes (INSEE codes), départements and leftover place
  words of a stored response, from its understood territory, else its actors' communes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.territory.data import TerritoryData, load_data
from bot.territory.resolve import resolve_text

SMALL_POPULATION = 20_000  # « un ordre de grandeur supérieur à 20 000 habitants » (the AMI)


def understand(text: str) -> dict[str, Any] | None:
    """The territory `text` names, or None when it names no place we know."""
    result = resolve_text(text)
    if not result["communes"] and not result["ambiguities"]:
        return None
    result["text"] = text
    return result


def summarise(data: TerritoryData, codes: list[str]) -> dict[str, Any]:
    """Communes, population, départements and EPCI of a set of INSEE codes."""
    known = sorted({c for c in codes if c in data.communes})
    communes = [
        {
            "code": c,
            "name": data.communes[c].name,
            "population": data.communes[c].population,
            "departement": data.communes[c].departement,
        }
        for c in known
    ]
    chosen = set(known)
    epci: dict[str, dict[str, Any]] = {}
    for c in known:
        code = data.communes[c].epci
        if code and code not in epci:
            e = data.epci[code]
            epci[code] = {"code": e.code, "name": e.name, "complete": set(e.members) <= chosen}
    return {
        "communes": communes,
        "population": sum(r["population"] for r in communes),
        "departements": sorted({r["departement"] for r in communes}),
        "epci": list(epci.values()),
    }


def settle(understood: dict[str, Any], index: int, candidate: int | None) -> dict[str, Any]:
    """Take candidate `candidate` of the `index`-th ambiguity (None: it is none of them)."""
    out = dict(understood)
    ambiguities = list(out.get("ambiguities") or [])
    if not 0 <= index < len(ambiguities):
        return out
    amb = ambiguities.pop(index)
    out["ambiguities"] = ambiguities
    candidates = amb.get("candidates") or []
    if candidate is None or not 0 <= candidate < len(candidates):
        out["unresolved"] = [*(out.get("unresolved") or []), amb.get("text", "")]
        return out
    chosen = candidates[candidate]
    codes = [c["code"] for c in out.get("communes") or []] + [chosen["code"]]
    out.update(summarise(load_data(), codes))
    out["matches"] = [
        *(out.get("matches") or []),
        {
            "kind": "commune",
            "typed": amb.get("text", ""),
            "name": chosen["name"],
            "code": chosen["code"],
        },
    ]
    return out


def french_number(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def about(n: int) -> str:
    """15 305 → « 15 300 », 473 973 → « 474 000 » (three significant digits)."""
    if n < 1000:
        return french_number(n)
    digits = len(str(n)) - 3
    return french_number(round(n, -digits))


def place_label(match: dict[str, Any]) -> str:
    kind = match.get("kind")
    name = str(match.get("name") or "")
    if kind == "departement":
        return f"{name} (département)"
    if kind == "postal_code":
        return f"{match.get('code')} (code postal)"
    return name


def values(understood: dict[str, Any]) -> dict[str, Any]:
    """Placeholders for the form's texts: places, communes, population, year, unresolved…"""
    data = load_data()
    places: list[str] = []
    for match in understood.get("matches") or []:
        label = place_label(match)
        if label and label not in places:
            places.append(label)
    n = len(understood.get("communes") or [])
    population = int(understood.get("population") or 0)
    return {
        "places": ", ".join(places),
        "communes": f"{n} commune" + ("s" if n > 1 else ""),
        "count": n,
        "population": about(population),
        "year": understood.get("population_year") or data.population_year or "",
        "unresolved": ", ".join(f"« {u} »" for u in understood.get("unresolved") or []),
        "small": 0 < population < SMALL_POPULATION,
    }


# --------------------------------------------------------------------------- submissions
@dataclass
class TerritoryKeys:
    """What a response's territory is, for the overlap index and the routing."""

    communes: list[str] = field(default_factory=list)  # INSEE codes
    departements: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # place keys of what was not understood
    source: str = ""  # "territory", "actors" or ""


_GENERIC = re.compile(
    r"\b(cc|ca|cu|communaute|communes|commune|agglomeration|agglo|metropole|pays|territoire|"
    r"secteur|bassin|vie|canton|region|environs|alentours|autour|zone|ville|de|du|des|d|la|le|"
    r"les|l|et|ou|en|sur|a|au|aux)\b"
)


def place_word(fragment: str) -> str:
    """A leftover fragment as a comparable key: « Pays de Brocéliande » → "broceliande";
    « Pays de » → "" (a vague word alone is no place)."""
    from bot.territory.resolve import key_of

    key = _GENERIC.sub(" ", key_of(fragment))
    key = " ".join(key.split())
    return key if len(key) >= 4 and not key.isdigit() else ""


def territory_keys(answers: dict[str, Any]) -> TerritoryKeys:
    """The communes of the understood territory; else those of the actors' communes.

    `territory_understood` absent (a response prefilled from the orientation, or stored before
    the territory was understood) → the text is read now; present but None → the respondent
    kept the text as typed: only its words count.
    """
    text = str(answers.get("territory") or "").strip()
    keys = TerritoryKeys()
    if text:
        if "territory_understood" in answers:
            understood = answers.get("territory_understood")
        else:
            understood = understand(text)
        if understood:
            keys.communes = sorted({c["code"] for c in understood.get("communes") or []})
            keys.words = [
                w for w in (place_word(u) for u in understood.get("unresolved") or []) if w
            ]
            keys.source = "territory" if keys.communes else ""
        else:
            keys.words = [
                w for w in (place_word(p) for p in re.split(r"[,;/()\n]| et ", text)) if w
            ]
    if not keys.communes:
        codes: set[str] = set()
        for actor in answers.get("actors") or []:
            commune = str((actor or {}).get("commune") or "").strip()
            if not commune:
                continue
            found = resolve_text(commune)
            # an actor's commune is one commune: a whole EPCI or département is not taken
            if len(found["communes"]) <= 3 and all(
                m["kind"] in ("commune", "postal_code") for m in found["matches"]
            ):
                codes.update(c["code"] for c in found["communes"])
        if codes:
            keys.departements = sorted({load_data().communes[c].departement for c in codes})
            if not text:
                keys.communes = sorted(codes)
                keys.source = "actors"
            return _dedupe(keys)
    data = load_data()
    keys.departements = sorted({data.communes[c].departement for c in keys.communes})
    return _dedupe(keys)


def _dedupe(keys: TerritoryKeys) -> TerritoryKeys:
    keys.words = list(dict.fromkeys(keys.words))
    return keys
