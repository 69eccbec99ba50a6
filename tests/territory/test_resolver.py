"""The territory resolver against the official data: the bars of the issue, our phrasing set,
the data file's checks and the `territory` command."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ROOT
from bot.territory import Resolver, TerritoryDataError, default_resolver, load_data
from bot.territory.data import DATA_FILE, load_file, parse
from bot.territory.refresh import build, millesime
from bot.territory.understand import about, territory_keys
from tests.territory.phrasings import PHRASINGS, ROUND2, judge, load_cases

ACCURACY_BAR = 0.95


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    return default_resolver()


def codes(resolver: Resolver, text: str) -> list[str]:
    return resolver.resolve(text).codes


# --------------------------------------------------------------------------- the bars
def test_ploermel_josselin_malestroit_are_three_communes_with_their_population(resolver) -> None:
    result = resolver.resolve("Ploërmel, Josselin, Malestroit")
    assert result.codes == ["56091", "56124", "56165"]
    data = load_data()
    assert result.population == sum(data.communes[c].population for c in result.codes)
    assert result.population == 10163 + 2584 + 2558
    assert result.departements == ["56"] and result.unresolved == []


def test_cc_ploermel_communaute_is_its_member_communes(resolver) -> None:
    result = resolver.resolve("CC Ploërmel Communauté")
    members = load_data().epci["200066777"].members
    assert set(result.codes) == set(members) and len(members) == 30
    assert result.epci() == [
        {"code": "200066777", "name": "CC Ploërmel Communauté", "complete": True}
    ]


def test_st_brieuc_resolves_to_22278(resolver) -> None:
    assert codes(resolver, "St Brieuc") == ["22278"]


def test_ploermel_et_environs_reports_environs_unresolved(resolver) -> None:
    result = resolver.resolve("Ploermel et environs")
    assert "56165" in result.codes
    assert result.unresolved == ["environs"]


def test_short_commune_names_are_taken_only_when_they_stand_alone(resolver) -> None:
    assert codes(resolver, "Bais") == ["35014"]
    assert codes(resolver, "Gaël, Bais") == ["35014", "35117"]
    assert codes(resolver, "parce que le secteur est à définir") == []  # Parcé
    assert codes(resolver, "la maison de santé de Brie") == ["35041"]


def test_homonyms_are_ambiguities_with_their_candidates(resolver) -> None:
    result = resolver.resolve("Plouhinec")
    assert result.codes == []
    [ambiguity] = result.as_dict()["ambiguities"]
    assert [(c["code"], c["departement"]) for c in ambiguity["candidates"]] == [
        ("29197", "29"),
        ("56169", "56"),
    ]
    assert codes(resolver, "Plouhinec (56)") == ["56169"]
    result.choose(0, 0)
    assert result.codes == ["29197"] and not result.ambiguities


@pytest.mark.parametrize(
    ("text", "siren"),
    [
        ("Lanion Trégor Communauté", "200065928"),
        ("Ploermel Comunauté", "200066777"),
        ("Renne Métropole", "243500139"),
        ("Golf du Morbihan Vannes Agglo", "200067932"),
    ],
)
def test_misspelt_epci_names_are_the_epci_with_nothing_left_over(resolver, text, siren) -> None:
    result = resolver.resolve(text)
    assert [(m.kind, m.code) for m in result.matches] == [("epci", siren)]
    assert result.unresolved == []


def test_epci_members_outside_brittany_count_in_its_population(resolver) -> None:
    result = resolver.resolve("Redon Agglomération")
    assert result.departements == ["35", "44", "56"]
    assert len(result.codes) == 31


def test_odd_input_never_raises(resolver) -> None:
    for text in ["", " ", "\n\n", "😀" * 50, "<b>Rennes</b>", "x" * 5000, "0" * 40, "’'-,;"]:
        result = resolver.resolve(text)
        assert isinstance(result.as_dict(), dict)
    assert codes(resolver, "<b>Rennes</b>") == ["35238"]


def test_populations_are_rounded_to_three_significant_digits() -> None:
    assert about(15305) == "15 300" and about(473973) == "474 000" and about(589) == "589"


# --------------------------------------------------------------------------- our phrasings
@pytest.mark.parametrize("path", [PHRASINGS, ROUND2], ids=["phrasings", "round2"])
def test_our_phrasings_are_understood_at_least_95_percent(resolver, path: Path) -> None:
    cases = load_cases(path)
    assert len(cases) >= (60 if path == PHRASINGS else 40)
    wrong = {c["text"]: p for c in cases if (p := judge(c, resolver.resolve(c["text"])))}
    accuracy = 1 - len(wrong) / len(cases)
    assert accuracy >= ACCURACY_BAR, wrong


@pytest.mark.parametrize(
    "sentence",
    [
        "Les infirmiers servent de relais auprès des patients",  # Sérent
        "une plainte a été déposée",  # Plaintel
        "au cours de l'année",  # Le Cours
        "la feuille de route de la CPTS",  # La Feuillée
        "grâce à la MSP",  # Grâce-Uzel
        "quel est le rôle du médecin traitant ?",
    ],
)
def test_ordinary_sentences_name_no_place(resolver, sentence: str) -> None:
    assert resolver.resolve(sentence).matches == []


# --------------------------------------------------------------------------- submissions
def test_a_response_without_territory_takes_its_departements_from_its_actors() -> None:
    answers = {"territory": None, "actors": [{"commune": "Lanion"}, {"commune": "Vannes"}]}
    keys = territory_keys(answers)
    assert keys.communes == ["22113", "56260"] and keys.departements == ["22", "56"]
    assert keys.source == "actors"


def test_a_territory_kept_as_typed_keeps_only_its_place_words() -> None:
    keys = territory_keys({"territory": "Pays de Brocéliande", "territory_understood": None})
    assert keys.communes == [] and keys.words == ["broceliande"]
    assert territory_keys({"territory": "Pays de", "territory_understood": None}).words == []


# --------------------------------------------------------------------------- the data file
def test_the_shipped_data_has_brittany_and_its_provenance() -> None:
    data = load_data()
    brittany = [c for c in data.communes.values() if not c.outside]
    assert {c.departement for c in brittany} == {"22", "29", "35", "56"}
    assert len(brittany) == 1202
    assert data.provenance["package"] == "@etalab/decoupage-administratif"
    assert data.provenance["integrity"].startswith("sha512-")
    assert data.population_year == data.provenance["cog_year"] - 3


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda raw: raw.update(schema=99), "schema"),
        (lambda raw: raw["communes"][0].update(pop="beaucoup"), "communes[0]"),
        (lambda raw: raw["communes"][1].update(code="123"), "communes[1]"),
        (lambda raw: raw["epci"][0]["members"].append("99999"), "epci[0]"),
        (lambda raw: raw.pop("communes"), "communes"),
    ],
)
def test_a_malformed_data_file_is_refused_with_a_clear_message(mutate, where) -> None:
    raw = json.loads(gzip.decompress(DATA_FILE.read_bytes()))
    mutate(raw)
    with pytest.raises(
        TerritoryDataError, match=re.escape(f"données de territoires invalides ({where})")
    ):
        parse(raw)


def test_an_unreadable_data_file_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "territories.json.gz"
    broken.write_bytes(b"\x1f\x8bnot gzip")
    with pytest.raises(TerritoryDataError, match="illisible"):
        load_file(broken, None)
    with pytest.raises(TerritoryDataError, match="absent"):
        load_file(tmp_path / "missing.json.gz", None)


def test_the_refresh_keeps_current_communes_and_names_former_ones() -> None:
    communes = [
        {"code": "56165", "nom": "Ploërmel", "departement": "56", "type": "commune-actuelle",
         "population": 10163, "codesPostaux": ["56800"]},
        {"code": "56091", "nom": "Josselin", "departement": "56", "type": "commune-actuelle",
         "population": 2584, "codesPostaux": ["56120"]},
        {"code": "56999", "nom": "Ancienne", "departement": "56", "type": "commune-deleguee",
         "chefLieu": "56165"},
        {"code": "44185", "nom": "Saint-Nicolas-de-Redon", "departement": "44",
         "type": "commune-actuelle", "population": 3000, "codesPostaux": ["44460"]},
        {"code": "44001", "nom": "Ailleurs", "departement": "44", "type": "commune-actuelle",
         "population": 10, "codesPostaux": []},
    ]  # fmt: skip
    epcis = [
        {"code": "1", "nom": "CC Test", "type": "CC", "membres": [{"code": "56165"}, {"code": "44185"}]},
        {"code": "2", "nom": "CC Ailleurs", "type": "CC", "membres": [{"code": "44001"}]},
    ]  # fmt: skip
    deps = [{"code": "56", "nom": "Morbihan"}, {"code": "44", "nom": "Loire-Atlantique"}]
    data = parse(build(communes, epcis, deps))
    assert set(data.communes) == {"56165", "56091", "44185"}
    assert data.communes["44185"].outside and data.communes["56165"].epci == "1"
    assert data.former_names == [("Ancienne", "56165")]
    assert list(data.epci) == ["1"]
    assert millesime("| 2026  | 6.0.0 | x |", "6.0.0") == 2026


# --------------------------------------------------------------------------- the command
def test_the_territory_command_prints_one_json_object() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "territory", "Ploërmel, Josselin, Malestroit"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    [line] = done.stdout.splitlines()
    out = json.loads(line)
    assert [c["code"] for c in out["communes"]] == ["56091", "56124", "56165"]
    assert {"code": "56165", "name": "Ploërmel", "population": 10163}.items() <= next(
        c for c in out["communes"] if c["code"] == "56165"
    ).items()
    assert out["population"] == 15305 and out["departements"] == ["56"]
    assert {"code", "name"} <= set(out["epci"][0]) and out["unresolved"] == []
    assert out["ambiguities"] == []
