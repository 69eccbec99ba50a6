"""Rebuild `bot/territory/data/` from Etalab's npm package `@etalab/decoupage-administratif`.

    python -m bot.territory.refresh [--version 6.0.0]

Runs `npm pack` into a temporary directory (only the npm registry is needed), reads the
package's JSON (communes, EPCI, départements), keeps Brittany (22, 29, 35, 56) and writes
`territories.json.gz` plus `provenance.json` (package, version, tarball integrity and shasum,
date extracted, COG and population years). Run on purpose, never by the bot.

What is kept:
- communes of type `commune-actuelle` only (the COG's current communes, with population and
  postal codes); `commune-deleguee` / `commune-associee` are kept as *former names* pointing to
  their current commune (« Binic » → Binic-Étables-sur-Mer), never as communes of their own;
  `arrondissement-municipal` does not occur in Brittany.
- every EPCI with at least one member in Brittany, with all its members: Redon Agglomération
  spans Ille-et-Vilaine, Morbihan and Loire-Atlantique, and Cap Atlantique has three Morbihan
  members. Their members outside Brittany are kept (flagged `outside`), so that a CPTS of the
  Redon area counts its whole population and overlaps across the border are seen; no other
  commune outside Brittany is kept.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PACKAGE = "@etalab/decoupage-administratif"
DEFAULT_VERSION = "6.0.0"
BRITTANY = ("22", "29", "35", "56")
DATA_DIR = Path(__file__).resolve().parent / "data"
DATA_FILE = DATA_DIR / "territories.json.gz"
PROVENANCE_FILE = DATA_DIR / "provenance.json"
SCHEMA_VERSION = 1


def npm_pack(version: str, workdir: Path) -> tuple[Path, dict[str, Any]]:
    """`npm pack PACKAGE@version` into `workdir`: the tarball and npm's record of it."""
    done = subprocess.run(
        ["npm", "pack", f"{PACKAGE}@{version}", "--json", "--pack-destination", str(workdir)],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(done.stdout)[0]
    return workdir / info["filename"], info


def read_member(tar: tarfile.TarFile, name: str) -> Any:
    member = tar.extractfile(f"package/{name}")
    if member is None:
        raise SystemExit(f"{name} est absent du paquet")
    return json.load(member)


def millesime(readme: str, version: str) -> int | None:
    """The year the package's README gives for `version` (its « Millésimes » table)."""
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].isdigit() and cells[1] == version:
            return int(cells[0])
    return None


def build(communes: list[dict[str, Any]], epcis: list[dict[str, Any]], deps: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    current = {c["code"]: c for c in communes if c.get("type") == "commune-actuelle"}
    kept_epci = []
    epci_of: dict[str, str] = {}
    wanted: set[str] = {code for code, c in current.items() if c["departement"] in BRITTANY}
    for epci in epcis:
        members = [m["code"] for m in epci.get("membres") or []]
        if not any(current.get(m, {}).get("departement") in BRITTANY for m in members):
            continue
        wanted.update(m for m in members if m in current)
        for m in members:
            epci_of[m] = epci["code"]
        kept_epci.append(
            {"code": epci["code"], "name": epci["nom"], "type": epci["type"], "members": members}
        )
    out_communes = []
    for code in sorted(wanted):
        c = current[code]
        row: dict[str, Any] = {
            "code": code,
            "name": c["nom"],
            "dep": c["departement"],
            "pop": int(c.get("population") or 0),
            "cp": sorted(c.get("codesPostaux") or []),
            "epci": epci_of.get(code),
        }
        if c["departement"] not in BRITTANY:
            row["outside"] = True
        out_communes.append(row)
    former = sorted(
        (
            {"name": c["nom"], "code": c["chefLieu"], "type": c["type"]}
            for c in communes
            if c.get("type") in ("commune-deleguee", "commune-associee")
            and c.get("chefLieu") in wanted
            and c["nom"] != current[c["chefLieu"]]["nom"]
        ),
        key=lambda r: (r["code"], r["name"]),
    )
    dep_codes = sorted({c["dep"] for c in out_communes})
    out_deps = [
        {"code": d["code"], "name": d["nom"], "brittany": d["code"] in BRITTANY}
        for d in deps
        if d["code"] in dep_codes
    ]
    return {
        "schema": SCHEMA_VERSION,
        "departements": out_deps,
        "communes": out_communes,
        "former_names": former,
        "epci": sorted(kept_epci, key=lambda e: e["code"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=DEFAULT_VERSION, help="version du paquet npm")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="dossier de sortie")
    parser.add_argument(
        "--cog-year",
        type=int,
        default=None,
        help="millésime du COG, si le README du paquet ne le donne pas pour cette version",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="territories-") as tmp:
        tarball, info = npm_pack(args.version, Path(tmp))
        raw = tarball.read_bytes()
        sha1 = hashlib.sha1(raw).hexdigest()
        if info.get("shasum") and info["shasum"] != sha1:
            raise SystemExit(f"sha1 inattendu : {sha1} au lieu de {info['shasum']}")
        with tarfile.open(tarball) as tar:
            communes = read_member(tar, "data/communes.json")
            epcis = read_member(tar, "data/epci.json")
            deps = read_member(tar, "data/departements.json")
            readme_member = tar.extractfile("package/README.md")
            readme = readme_member.read().decode("utf-8") if readme_member else ""
    data = build(communes, epcis, deps)
    year = args.cog_year or millesime(readme, args.version)
    if year is None:
        raise SystemExit(
            f"Le README de {PACKAGE}@{args.version} ne donne pas le millésime de cette version : "
            "précisez-le avec --cog-year (l'année du COG ; les populations légales sont de "
            "l'année moins 3)."
        )
    population_urls = re.findall(r"\[Population légale\]\((\S+?)\)", readme)
    provenance = {
        "package": PACKAGE,
        "version": args.version,
        "tarball": info.get("filename"),
        "integrity": info.get("integrity"),
        "shasum": sha1,
        "extracted_at": datetime.now(UTC).date().isoformat(),
        "cog_year": year,
        # INSEE's populations légales of year N-3 take effect on 1 January N (the millésime).
        "population_year": year - 3,
        "population": "population municipale (INSEE, populations légales)",
        "population_source": population_urls[0] if population_urls else None,
        "sources": "INSEE Code officiel géographique; DGCL EPCI à fiscalité propre; La Poste",
        "licence": "Licence Ouverte (données), MIT (code du paquet)",
        "kept": "départements 22, 29, 35, 56, et les membres hors Bretagne des EPCI bretons",
        "counts": {
            "communes": len(data["communes"]),
            "epci": len(data["epci"]),
            "former_names": len(data["former_names"]),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    # mtime=0: the same data gives the same bytes (no spurious diff in git)
    (args.out / DATA_FILE.name).write_bytes(gzip.compress(payload, 9, mtime=0))
    (args.out / PROVENANCE_FILE.name).write_text(
        json.dumps(provenance, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    print(json.dumps(provenance["counts"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
