"""Responses on the same territory (two CPTS cannot share a territory).

A response's territory is a set of communes (INSEE codes): the communes its territory was
understood to be (`bot.territory`), else its actors' communes. Two responses overlap when these
sets intersect; the overlap names the communes in common and their population. Only what was
not understood (a « Pays de Brocéliande » the data does not know) is still compared as words,
exactly, and a vague word alone (« Pays de », « secteur ») is no place at all.

Two ways to find them, with the same keys:
- `overlaps_in_index(session, sub)`: through the `submission_commune` / `submission_place_word`
  tables written with each submission: the e-mail (rendered while SQLite's writer lock is held),
  the staff's detail and the digest never read the other responses, only the rows they share;
- `OverlapIndex(submissions)`: in memory over responses already loaded (exports of them all).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from bot.storage.models import Submission, SubmissionCommune, SubmissionPlaceWord
from bot.territory import load_data, territory_keys

# Generic words around a place name, removed before comparing (already normalised).
GENERIC = re.compile(
    r"\b(communaute de communes|communaute d agglomeration|communaute urbaine|communaute|"
    r"agglomeration|metropole|pays|territoire|secteur|bassin de vie|bassin|canton|"
    r"region|cc|ca|cu)\b"
)
LEADING_ARTICLES = re.compile(r"^((de|du|des|d|la|le|les|l)\s+)+")
TRAILING_ARTICLES = re.compile(r"(\s+(de|du|des|d|la|le|les|l|et))+$")
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
    parts: dict[str, None] = {}
    if not text:
        return []
    for part in SPLIT.split(text.replace("[", "(").replace("]", ")")):
        key = place_key(part)
        if len(key) >= 3:
            parts.setdefault(key, None)
    return list(parts)


@dataclass(frozen=True)
class Overlap:
    """Another response whose territory shares communes (or a place name) with this one."""

    reference: str
    territory: str
    first_actor: str
    places: tuple[str, ...]  # what is shared: commune names, else the place words
    created_at: str
    submission_id: int
    communes: tuple[str, ...] = ()  # the communes in common, by name
    population: int = 0  # their population (INSEE, populations légales)

    def shared(self) -> str:
        """« Ploërmel, Josselin — 12 747 habitants » or « commun : broceliande »."""
        if self.communes:
            shown = ", ".join(self.communes[:10])
            more = len(self.communes) - 10
            if more > 0:
                shown += f" … et {more} autre(s)"
            count = len(self.communes)
            noun = "commune" if count == 1 else "communes"
            people = f"{self.population:,}".replace(",", " ")
            return f"{count} {noun} en commun : {shown} — {people} habitants"
        return f"commun : {', '.join(self.places)}"

    def describe(self) -> str:
        where = self.territory or "territoire non précisé"
        return f"{self.reference} — {where} — {self.first_actor} ({self.shared()})"


def first_actor(answers: dict[str, Any]) -> str:
    actors = answers.get("actors") or []
    return str(actors[0].get("name") or "") if actors else ""


def _overlap(other: Submission, codes: Iterable[str], words: Iterable[str]) -> Overlap:
    data = load_data()
    known = sorted(
        (c for c in set(codes) if c in data.communes),
        key=lambda c: (-data.communes[c].population, c),
    )
    names = tuple(data.communes[c].name for c in known)
    answers = other.answers or {}
    assert other.id is not None
    return Overlap(
        reference=other.reference,
        territory=str(answers.get("territory") or ""),
        first_actor=first_actor(answers),
        places=names or tuple(sorted(set(words))),
        created_at=other.created_at.isoformat() if other.created_at else "",
        submission_id=other.id,
        communes=names,
        population=sum(data.communes[c].population for c in known),
    )


# --------------------------------------------------------------------------- the index
def overlaps_in_index(
    session: Session, submission: Submission, earlier_only: bool = True
) -> list[Overlap]:
    """The responses sharing communes (or an understood-less place word) with `submission`,
    read from the index tables: only the rows it shares are read, then those responses."""
    overlaps, _ = top_overlaps(session, submission, earlier_only=earlier_only, limit=None)
    return overlaps


def top_overlaps(
    session: Session, submission: Submission, earlier_only: bool = True, limit: int | None = 20
) -> tuple[list[Overlap], int]:
    """The `limit` responses sharing the most communes (then place words) with `submission`,
    and how many share any: what an e-mail can list without growing with the database."""
    sid = submission.id
    assert sid is not None
    mine = SubmissionCommune.__table__.alias("mine")  # type: ignore[attr-defined]
    theirs = SubmissionCommune.__table__.alias("theirs")  # type: ignore[attr-defined]
    stmt = (
        select(theirs.c.submission_id, theirs.c.code)
        .join(mine, mine.c.code == theirs.c.code)
        .where(mine.c.submission_id == sid, theirs.c.submission_id != sid)
    )
    my_words = SubmissionPlaceWord.__table__.alias("my_words")  # type: ignore[attr-defined]
    their_words = SubmissionPlaceWord.__table__.alias("their_words")  # type: ignore[attr-defined]
    words_stmt = (
        select(their_words.c.submission_id, their_words.c.word)
        .join(my_words, my_words.c.word == their_words.c.word)
        .where(my_words.c.submission_id == sid, their_words.c.submission_id != sid)
    )
    if earlier_only:
        stmt = stmt.where(theirs.c.submission_id < sid)
        words_stmt = words_stmt.where(their_words.c.submission_id < sid)
    codes: dict[int, list[str]] = defaultdict(list)
    for other_id, code in session.execute(stmt):
        codes[int(other_id)].append(str(code))
    words: dict[int, list[str]] = defaultdict(list)
    for other_id, word in session.execute(words_stmt):
        words[int(other_id)].append(str(word))
    ids = sorted(set(codes) | set(words))
    total = len(ids)
    if not ids:
        return [], 0
    if limit is not None and total > limit:
        # the most communes in common first, then place words, then the earliest
        ids = sorted(ids, key=lambda i: (-len(codes.get(i, ())), -len(words.get(i, ())), i))
        ids = sorted(ids[:limit])
    others = session.execute(select(Submission).where(Submission.id.in_(ids))).scalars()  # type: ignore[union-attr]
    by_id = {o.id: o for o in others}
    found = [_overlap(by_id[i], codes.get(i, ()), words.get(i, ())) for i in ids if i in by_id]
    return found, total


# --------------------------------------------------------------------------- in memory
class OverlapIndex:
    """The same keys in memory, over responses already loaded (exports, tests)."""

    def __init__(self, submissions: Iterable[Submission]) -> None:
        self.subs: dict[int, Submission] = {}
        self.codes: dict[int, set[str]] = {}
        self.words: dict[int, set[str]] = {}
        self.by_code: dict[str, set[int]] = defaultdict(set)
        self.by_word: dict[str, set[int]] = defaultdict(set)
        for sub in submissions:
            self.add(sub)

    def add(self, sub: Submission) -> None:
        assert sub.id is not None
        keys = territory_keys(sub.answers or {})
        self.subs[sub.id] = sub
        self.codes[sub.id] = set(keys.communes)
        self.words[sub.id] = set(keys.words)
        for code in keys.communes:
            self.by_code[code].add(sub.id)
        for word in keys.words:
            self.by_word[word].add(sub.id)

    def _shared(self, sub: Submission, earlier_only: bool) -> dict[int, tuple[set[str], set[str]]]:
        assert sub.id is not None
        if sub.id not in self.subs:
            self.add(sub)
        found: dict[int, tuple[set[str], set[str]]] = {}
        for code in self.codes[sub.id]:
            for other in self.by_code[code]:
                found.setdefault(other, (set(), set()))[0].add(code)
        for word in self.words[sub.id]:
            for other in self.by_word[word]:
                found.setdefault(other, (set(), set()))[1].add(word)
        found.pop(sub.id, None)
        return {i: v for i, v in found.items() if not earlier_only or i < sub.id}

    def overlap_ids(self, sub: Submission, earlier_only: bool = True) -> list[int]:
        """Ids of the other responses sharing communes (or a place word) with `sub`."""
        return sorted(self._shared(sub, earlier_only))

    def overlaps_of(self, sub: Submission, earlier_only: bool = True) -> list[Overlap]:
        """Other responses sharing communes with `sub` (by default only earlier ones)."""
        shared = self._shared(sub, earlier_only)
        return [_overlap(self.subs[i], *shared[i]) for i in sorted(shared)]


def find_overlaps(sub: Submission, others: Iterable[Submission]) -> list[Overlap]:
    """Earlier responses among `others` whose territory shares communes with `sub`'s."""
    return OverlapIndex([*others, sub]).overlaps_of(sub, earlier_only=True)
