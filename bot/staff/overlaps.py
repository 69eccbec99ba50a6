"""Responses naming the same territory or communes (two CPTS cannot share a territory)."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz, process

from bot.storage.models import Submission

THRESHOLD = 90  # fuzz.ratio on normalised names: "Lanion" ≈ "Lannion", "Redon" ≠ "Rennes"

# Generic words around a place name, removed before comparing (already normalised).
GENERIC = re.compile(
    r"\b(communaute de communes|communaute d agglomeration|communaute urbaine|communaute|"
    r"agglomeration|metropole|pays|territoire|secteur|bassin de vie|bassin|canton|"
    r"region|cc|ca|cu)\b"
)
LEADING_ARTICLES = re.compile(r"^((de|du|des|d|la|le|les|l)\s+)+")
TRAILING_ARTICLES = re.compile(r"(\s+(de|du|des|d|la|le|les|l|et))+$")
# First words too common to stand for a whole place ("Saint", "Plou…" stays: it is a name).
WEAK_HEADS = {"saint", "sainte", "pont", "val", "ile", "port", "mont", "bourg", "notre", "la"}
SPLIT = re.compile(r"[(),;/+]|\bet\b|\n")


def normalise(text: str) -> str:
    """Lower case, no accents, hyphens as spaces, St→saint, Ste→sainte, CC→communauté…"""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[-'’`´.]", " ", text)
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    text = re.sub(r"\bste\b", "sainte", text)
    text = re.sub(r"\bst\b", "saint", text)
    return re.sub(r"\s+", " ", text).strip()


def place_key(name: str) -> str:
    """A place name without its generic words: "Pays de Redon" → "redon"."""
    key = GENERIC.sub(" ", normalise(name))
    key = re.sub(r"\s+", " ", key).strip()
    key = LEADING_ARTICLES.sub("", key)
    return TRAILING_ARTICLES.sub("", key).strip()


def split_places(text: str | None) -> list[str]:
    """ "Pays de Redon (Redon, Allaire, Saint-Nicolas-de-Redon)" → its places, as keys."""
    return list(_parts(text))


def _parts(text: str | None) -> dict[str, str]:
    """Place key → the part of `text` it comes from, as typed."""
    parts: dict[str, str] = {}
    if not text:
        return parts
    for part in SPLIT.split(text.replace("[", "(").replace("]", ")")):
        key = place_key(part)
        if len(key) >= 3 and key not in parts:
            parts[key] = part.strip()
    return parts


def head_of(key: str) -> str | None:
    """The main town a territory is named after: "lannion tregor" → "lannion"."""
    words = key.split()
    if len(words) > 1 and len(words[0]) >= 4 and words[0] not in WEAK_HEADS:
        return words[0]
    return None


def places_of(answers: dict[str, Any]) -> dict[str, str]:
    """Every place a response names, key → what was typed (territory first, then communes)."""
    places = _parts(str(answers.get("territory") or ""))
    for actor in answers.get("actors") or []:
        for key, typed in _parts(str(actor.get("commune") or "")).items():
            places.setdefault(key, typed)
    return places


@dataclass(frozen=True)
class Overlap:
    """Another response naming a place this one names."""

    reference: str
    territory: str
    first_actor: str
    places: tuple[str, ...]  # what matched, as typed in the other response
    created_at: str
    submission_id: int

    def describe(self) -> str:
        where = self.territory or "territoire non précisé"
        return (
            f"{self.reference} — {where} — {self.first_actor} (commun : {', '.join(self.places)})"
        )


def first_actor(answers: dict[str, Any]) -> str:
    actors = answers.get("actors") or []
    return str(actors[0].get("name") or "") if actors else ""


class OverlapIndex:
    """All responses' places, matched once (exact keys, fuzzy keys, main-town heads)."""

    def __init__(self, submissions: Iterable[Submission]) -> None:
        self.subs: dict[int, Submission] = {}
        self.places: dict[int, dict[str, str]] = {}
        self.owners: dict[str, set[int]] = defaultdict(set)
        for sub in submissions:
            assert sub.id is not None
            self.subs[sub.id] = sub
            self.places[sub.id] = places_of(sub.answers or {})
            for key in self.places[sub.id]:
                self.owners[key].add(sub.id)
        keys = list(self.owners)
        self.similar: dict[str, set[str]] = {k: {k} for k in keys}
        for key in keys:
            for other, _score, _ in process.extract(
                key, keys, scorer=fuzz.ratio, score_cutoff=THRESHOLD, limit=None
            ):
                self.similar[key].add(other)
        for key in keys:
            head = head_of(key)
            if head and head in self.owners:
                self.similar[key].add(head)
                self.similar[head].add(key)

    def overlap_ids(self, sub: Submission, earlier_only: bool = True) -> list[int]:
        """Ids of the other responses sharing a place with `sub` (fast: set unions only)."""
        assert sub.id is not None
        ids: set[int] = set()
        for key in self.places.get(sub.id) or places_of(sub.answers or {}):
            for other_key in self.similar.get(key, {key}):
                ids |= self.owners.get(other_key, set())
        ids.discard(sub.id)
        return sorted(i for i in ids if not earlier_only or i < sub.id)

    def overlaps_of(self, sub: Submission, earlier_only: bool = True) -> list[Overlap]:
        """Other responses sharing a place with `sub` (by default only earlier ones)."""
        assert sub.id is not None
        places = self.places.get(sub.id)
        if places is None:
            places = places_of(sub.answers or {})
        found: dict[int, list[str]] = defaultdict(list)
        for key in places:
            for other_key in self.similar.get(key, {key}):
                for other_id in self.owners.get(other_key, ()):
                    if other_id == sub.id or (earlier_only and other_id > sub.id):
                        continue
                    label = self.places[other_id][other_key][:80]
                    if label not in found[other_id]:
                        found[other_id].append(label)
        result = []
        for other_id in sorted(found):
            other = self.subs[other_id]
            answers = other.answers or {}
            result.append(
                Overlap(
                    reference=other.reference,
                    territory=str(answers.get("territory") or ""),
                    first_actor=first_actor(answers),
                    places=tuple(found[other_id]),
                    created_at=other.created_at.isoformat() if other.created_at else "",
                    submission_id=other_id,
                )
            )
        return result


def find_overlaps(sub: Submission, others: Iterable[Submission]) -> list[Overlap]:
    """Earlier responses among `others` that name a place `sub` names."""
    return OverlapIndex([*others, sub]).overlaps_of(sub, earlier_only=True)
