"""Understand a territory typed in free text: communes, postal codes, EPCI, départements.

    resolver = default_resolver()
    result = resolver.resolve("Ploërmel, Josselin, Malestroit")
    result.codes → ["56091", "56124", "56165"]; result.population → 15305

How it reads a text:
1. words are folded (case, accents, œ, hyphens, apostrophes; « St »/« Ste » → saint/sainte;
   « communauté de communes » → cc); separators (, ; / + parentheses, line breaks, « et »)
   delimit segments;
2. the longest known name starting at each word is taken (communes, their former names,
   EPCI names and their short forms, départements), so « Rennes Métropole » is the EPCI and
   not the commune, « Ille-et-Vilaine » is not split on « et »;
3. a commune whose name is short or an ordinary word (« Bais », « Parcé », « Brie ») is taken
   only when it stands alone in its segment (« Bais, Louvigné » but not « parce que… »);
   Shortened names (« Carhaix » for Carhaix-Plouguer, « Cours » for Le Cours) and EPCI
   acronyms (« LTC », « GMVA ») count only when written as names (capital letter) or alone;
4. what is left is matched with rapidfuzz (typos: « Ploermell », « Lanion », « Lanion Trégor
   Communauté »), only for six letters or more written as a name or alone in their segment,
   against names of the same initial and close length, never for the words of the trade
   (« santé », « maison »…), so the words of a sentence (« servent », « au cours de ») are no
   places;
5. vague words (« pays de », « secteur de », « et environs », « autour de ») are reported as
   unresolved, the place they name is resolved; homonyms (« Plouhinec »: Finistère and
   Morbihan) are ambiguities with their candidates, settled by a département named next to
   them (« Plouhinec (56) ») or by the other communes when all lie in one département.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz, process

from bot.territory.data import BRITTANY, TerritoryData, load_data

MAX_NGRAM = 10
MAX_TEXT = 2000  # longer texts are cut (the form allows 500 characters)
FUZZY_MIN_LEN = 6
FILLERS = {"de", "du", "des", "d", "la", "le", "les", "l", "a", "au", "aux", "en", "sur"}
AND_WORDS = {"et", "ou"}
VAGUE = {
    "pays", "secteur", "secteurs", "environs", "alentours", "autour", "region", "territoire",
    "bassin", "vie", "canton", "zone", "communes", "commune", "limitrophes", "voisines",
    "proches", "alentour", "agglomeration", "agglo", "communaute", "metropole", "cc", "ca",
    "cu", "epci", "interco", "intercommunalite", "centre", "nord", "sud", "est", "ouest",
    "bretagne", "tout", "toute", "tous", "toutes", "partie", "ville", "villes", "quartier",
    "quartiers", "cpts", "pres", "proximite", "grand", "grande", "littoral", "cote",
}  # fmt: skip
EPCI_WORDS = {
    "cc", "ca", "cu", "agglomeration", "agglo", "communaute", "metropole", "epci", "interco",
    "intercommunalite",
}  # fmt: skip
# Words of the trade and of ordinary prose: never fuzzy-matched to a place.
PROSE = {
    "sante", "maison", "maisons", "medecin", "medecins", "medical", "medicale", "infirmier",
    "infirmiers", "infirmiere", "pharmacie", "pharmacien", "cabinet", "hopital", "projet",
    "professionnels", "professionnel", "patients", "habitants", "population", "exercice",
    "coordonne", "structure", "association", "libéraux", "liberaux", "kinesitherapeute",
    "environ", "plusieurs", "quelques", "autres", "ensemble", "ancien", "ancienne", "nouvelle",
    "nouveau", "msp", "esp", "pole", "rurale", "rural", "urbain", "urbaine", "secteur", "precis", "definir", "encore",
    "preciser", "inconnu", "sais", "sait", "savons", "peut", "etre", "notre", "votre", "avec",
    "entre", "jusqu", "vers", "chez", "depuis", "village", "villages", "bourg", "campagne",
}  # fmt: skip
# Quantities after a number: « 22 communes » is not the Côtes-d'Armor.
QUANTITY = {"communes", "commune", "habitants", "hab", "km", "medecins", "professionnels", "000"}
# Commune names that are ordinary words: taken only when alone in their segment.
COMMON_NAMES = {
    "parce", "sains", "brie", "paule", "prat", "bille", "treve", "esse", "melle", "baye",
    "cast", "larre", "sens", "pace", "mece", "trans", "iffs", "bono", "gael", "guer", "bais",
    "noyal", "berne", "argol", "redon", "plus", "ile",
}  # fmt: skip
DEP_ALIASES = {
    "22": ["cotes d armor", "cote d armor", "cotes armor", "cotes du nord"],
    "29": ["finistere", "finistere nord", "finistere sud"],
    "35": ["ille et vilaine", "ille vilaine"],
    "56": ["morbihan"],
}
EXTRA_EPCI_ALIASES = {  # the names people use, by SIREN
    "242900314": ["bmo", "brest metropole oceane"],
    "200067932": ["golfe du morbihan", "vannes agglo", "agglo de vannes"],
    "243500782": ["saint malo agglo", "saint malo agglomeration", "agglo de saint malo"],
    "200069409": ["saint brieuc agglo", "agglo de saint brieuc", "baie d armor"],
    "200042174": ["lorient agglo", "agglo de lorient"],
    "242900835": ["morlaix co"],
    "245600465": ["belle ile", "belle ile en mer"],
    "242900702": ["pays bigouden"],
    "242900710": ["pays bigouden"],
    "200066868": ["presqu ile de crozon", "crozon aulne maritime"],
}
SAINTS = {"saint", "sainte", "saints", "notre"}
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_HARD_SEP = re.compile(r"[,;/+()\[\]\n:]|\s-\s*$")
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"})


def fold(text: str) -> str:
    """Lower case, no accents, ligatures opened, every non-letter a space."""
    text = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return " ".join(_WORD.findall(text))


def fold_words(text: str) -> list[str]:
    words = fold(text).split()
    return [_canon(w) for w in words]


EPCI_SPELLINGS = ("communaute", "agglomeration", "metropole")


@lru_cache(maxsize=8192)
def _canon(word: str) -> str:
    if word == "st":
        return "saint"
    if word == "ste":
        return "sainte"
    if len(word) >= 7 and word[:3] in ("com", "agg", "met") and word not in EPCI_SPELLINGS:
        for right in EPCI_SPELLINGS:  # « comunauté », « aglomération »: the EPCI word meant
            if fuzz.ratio(word, right) >= 85:
                return right
    return word


@lru_cache(maxsize=8192)
def key_of(name: str) -> str:
    """A name's lookup key: « Saint-Brieuc » → "saint brieuc", « CC du Kreiz-Breizh » → …"""
    words = fold_words(name)
    text = " ".join(words)
    text = re.sub(r"\bcommunaute de communes\b", "cc", text)
    text = re.sub(r"\bcommunaute d agglomeration\b", "ca", text)
    return re.sub(r"\bcom ?com\b", "cc", text)


# =========================================================================== the index
@dataclass(frozen=True, slots=True)
class Entry:
    """What a name stands for."""

    kind: str  # "commune", "former", "epci", "departement"
    code: str
    name: str
    weak: bool = False  # a shortened name (« Cours » for Le Cours): capitalised or alone only


class Index:
    """Names → entries, and the fuzzy candidates by initial letter."""

    def __init__(self, data: TerritoryData) -> None:
        self.data = data
        self.names: dict[str, list[Entry]] = defaultdict(list)
        self.acronyms: set[str] = set()  # « LTC », « GMVA »: taken when typed in capitals
        commune_keys: set[str] = set()
        for c in data.communes.values():
            key = key_of(c.name)
            commune_keys.add(key)
            self._add(key, Entry("commune", c.code, c.name))
            bare = _without_article(key)
            if bare != key and len(bare) >= 5 and bare not in VAGUE | SAINTS:
                self._add(bare, Entry("commune", c.code, c.name, weak=True))
            island = re.sub(r"^ile (d |de |du )?", "", key)
            if island != key and len(island) >= 4:
                self._add(island, Entry("commune", c.code, c.name, weak=True))  # « Houat »
        firsts: dict[str, list[str]] = defaultdict(list)
        for c in data.communes.values():
            firsts[key_of(c.name).split()[0]].append(c.code)
        for word, codes in firsts.items():
            # « Carhaix » for Carhaix-Plouguer, « Lamballe » for Lamballe-Armor
            if (
                len(codes) == 1
                and len(word) >= 5
                and word not in commune_keys
                and word not in VAGUE | PROSE | SAINTS
            ):
                c = data.communes[codes[0]]
                self._add(word, Entry("commune", c.code, c.name, weak=True))
        for name, code in data.former_names:
            key = key_of(name)
            if key not in commune_keys:
                self._add(key, Entry("former", code, data.communes[code].name))
        for dep in data.departements.values():
            if not dep.brittany:
                continue
            for alias in [key_of(dep.name), *DEP_ALIASES.get(dep.code, [])]:
                self._add(alias, Entry("departement", dep.code, dep.name))
        dep_keys = self._dep_keys()
        for epci in data.epci.values():
            entry = Entry("epci", epci.code, epci.name)
            for alias in epci_aliases(epci.name):
                if alias in commune_keys or alias in dep_keys:
                    continue  # « Vitré Communauté » → "vitre" stays the commune
                if alias in VAGUE or alias in FILLERS or len(alias) < 3:
                    continue
                self._add(alias, entry)
            for alias in EXTRA_EPCI_ALIASES.get(epci.code, []):
                self._add(alias, entry)
                if " " not in alias and len(alias) <= 4:
                    self.acronyms.add(alias)  # « BMO »
            for acronym in epci_acronyms(epci.name):
                if acronym not in commune_keys:
                    self._add(acronym, entry)
                    self.acronyms.add(acronym)
        self.postal: dict[str, list[str]] = defaultdict(list)
        for c in data.communes.values():
            for cp in c.postal_codes:
                self.postal[cp].append(c.code)
        self.max_words = min(MAX_NGRAM, max(len(k.split()) for k in self.names))
        self.fuzzy: dict[str, list[str]] = defaultdict(list)
        for key in self.names:
            if len(key) >= FUZZY_MIN_LEN - 1:
                self.fuzzy[key[0]].append(key)

    def _dep_keys(self) -> set[str]:
        return {k for k, es in self.names.items() if any(e.kind == "departement" for e in es)}

    def _add(self, key: str, entry: Entry) -> None:
        if key and entry not in self.names[key]:
            self.names[key].append(entry)


def _without_article(key: str) -> str:
    words = key.split()
    if len(words) > 1 and words[0] in ("le", "la", "les", "l"):
        return " ".join(words[1:])
    return key


def epci_aliases(name: str) -> list[str]:
    """« CA Golfe du Morbihan - Vannes Agglomération » → its full name, without « CA », its
    parts around « - », « agglo » for « agglomération », without « Communauté », its
    parenthesis (acronyms: `epci_acronyms`)."""
    aliases: list[str] = []
    main, _, paren = name.partition("(")
    full = key_of(main)
    aliases.append(full)
    words = full.split()
    stripped = words[:]
    if stripped and stripped[0] in ("cc", "ca", "cu"):
        stripped = stripped[1:]
    while stripped and stripped[0] in FILLERS | {"communaute"}:
        stripped = stripped[1:]
    core = " ".join(stripped)
    aliases.append(core)
    if stripped[:1] == ["pays"] and len(stripped) > 2 and stripped[1] in FILLERS:
        aliases.append(" ".join(stripped[2:]))  # « Pays des Abers » → « Abers »
    for part in re.split(r"\s-\s", main):
        part_key = key_of(part)
        pw = part_key.split()
        if pw and pw[0] in ("cc", "ca", "cu"):
            pw = pw[1:]
        while pw and pw[0] in FILLERS:
            pw = pw[1:]
        if len(pw) >= 2 or (pw and len(pw[0]) >= 6):
            aliases.append(" ".join(pw))
    for alias in list(aliases):
        if "agglomeration" in alias.split():
            aliases.append(alias.replace("agglomeration", "agglo"))
            head = alias.split("agglomeration")[0].strip()
            if head:
                aliases.append(head + " agglomeration")
                aliases.append(head + " agglo")
        trimmed = re.sub(r"\s(communaute|agglomeration|metropole)\b.*$", "", alias).strip()
        if trimmed and trimmed != alias and len(trimmed) >= 4:
            aliases.append(trimmed)  # « Brocéliande », « Kreiz Breizh »
    if paren.strip(") "):
        aliases.append(key_of(paren.strip(") ")))
    return list(dict.fromkeys(a for a in aliases if a))


def epci_acronyms(name: str) -> list[str]:
    """« Lannion-Trégor Communauté » → ltc; « CC du Pays d'Iroise » → pi, ccpi."""
    words = key_of(name.partition("(")[0]).split()
    kind = words[0] if words and words[0] in ("cc", "ca") else ""
    stripped = words[1:] if kind else words
    significant = [w for w in stripped if w not in FILLERS and w not in AND_WORDS]
    initials = "".join(w[0] for w in significant)
    out = []
    if len(significant) >= 3:
        out.append(initials)
    if kind and len(significant) >= 2:
        out.append(kind + initials)
    return out


@lru_cache(maxsize=1)
def _default_index() -> Index:
    return Index(load_data())


# =========================================================================== results
@dataclass
class Match:
    """A place recognised in the text."""

    kind: str  # "commune", "epci", "departement", "postal_code", "ambiguous"
    typed: str  # the words as typed
    codes: list[str]  # INSEE codes of the communes it stands for
    name: str = ""
    code: str = ""  # the commune's, EPCI's or département's code; the postal code
    fuzzy: bool = False
    candidates: list[str] = field(default_factory=list)  # ambiguous: INSEE codes
    start: int = 0
    end: int = 0


@dataclass
class Resolution:
    """What a text names: communes (with population), EPCI, départements, what is left."""

    text: str
    matches: list[Match]
    unresolved: list[str]
    data: TerritoryData

    @property
    def codes(self) -> list[str]:
        seen: dict[str, None] = {}
        for m in self.matches:
            if m.kind != "ambiguous":
                seen.update(dict.fromkeys(m.codes))
        return sorted(seen)

    @property
    def ambiguities(self) -> list[Match]:
        return [m for m in self.matches if m.kind == "ambiguous"]

    @property
    def population(self) -> int:
        return sum(self.data.communes[c].population for c in self.codes)

    @property
    def departements(self) -> list[str]:
        return sorted({self.data.communes[c].departement for c in self.codes})

    @property
    def recognised(self) -> bool:
        return bool(self.codes or self.ambiguities)

    def epci(self) -> list[dict[str, Any]]:
        """The EPCI the communes belong to; `complete` when all its members are included."""
        codes = set(self.codes)
        out: dict[str, dict[str, Any]] = {}
        for code in self.codes:
            epci_code = self.data.communes[code].epci
            if epci_code and epci_code not in out:
                epci = self.data.epci[epci_code]
                out[epci_code] = {
                    "code": epci.code,
                    "name": epci.name,
                    "complete": set(epci.members) <= codes,
                }
        return list(out.values())

    def commune_rows(self) -> list[dict[str, Any]]:
        rows = []
        for code in self.codes:
            c = self.data.communes[code]
            rows.append(
                {
                    "code": c.code,
                    "name": c.name,
                    "population": c.population,
                    "departement": c.departement,
                }
            )
        return rows

    def candidate_rows(self, match: Match) -> list[dict[str, Any]]:
        return [
            {
                "code": c,
                "name": self.data.communes[c].name,
                "population": self.data.communes[c].population,
                "departement": self.data.communes[c].departement,
            }
            for c in match.candidates
        ]

    def choose(self, index: int, candidate: int | None) -> None:
        """Settle the `index`-th ambiguity: its `candidate`-th commune, or none (unresolved)."""
        amb = self.ambiguities
        if not 0 <= index < len(amb):
            return
        match = amb[index]
        if candidate is None or not 0 <= candidate < len(match.candidates):
            self.matches.remove(match)
            self.unresolved.append(match.typed)
            return
        code = match.candidates[candidate]
        match.kind, match.codes, match.code = "commune", [code], code
        match.name = self.data.communes[code].name
        match.candidates = []

    def as_dict(self) -> dict[str, Any]:
        """The JSON of `python -m bot territory` and of the stored response."""
        return {
            "communes": self.commune_rows(),
            "population": self.population,
            "departements": self.departements,
            "epci": self.epci(),
            "unresolved": list(self.unresolved),
            "ambiguities": [
                {"text": m.typed, "candidates": self.candidate_rows(m)} for m in self.ambiguities
            ],
            "matches": [
                {"kind": m.kind, "typed": m.typed, "name": m.name, "code": m.code}
                | ({"fuzzy": True} if m.fuzzy else {})
                for m in self.matches
                if m.kind != "ambiguous"
            ],
            "population_year": self.data.population_year,
        }


# =========================================================================== the resolver
@dataclass
class _Token:
    word: str  # folded
    typed: str  # as typed
    start: int
    end: int
    hard_before: bool  # a separator between the previous word and this one
    dash_before: bool = False  # « Vannes - Séné »: a list for short names, not for EPCI names


class Resolver:
    """Reads territory texts against one `TerritoryData` (cheap to call, built once)."""

    def __init__(self, data: TerritoryData | None = None) -> None:
        self.index = Index(data) if data is not None else _default_index()
        self.data = self.index.data

    # ------------------------------------------------------------------ tokens
    def _tokens(self, text: str) -> list[_Token]:
        tokens: list[_Token] = []
        last_end = 0
        for m in _WORD.finditer(text):
            gap = text[last_end : m.start()]
            folded = fold_words(m.group(0))
            hard = bool(re.search(r"[,;/+()\[\]\n:]", gap)) or not tokens
            dash = bool(re.search(r"\s[-–—]\s?|\s?[-–—]\s", gap))
            for i, word in enumerate(folded):
                tokens.append(
                    _Token(word, m.group(0), m.start(), m.end(), hard and i == 0, dash and i == 0)
                )
            last_end = m.end()
        # « communauté de communes » → cc, « communauté d'agglomération » → ca
        out: list[_Token] = []
        i = 0
        while i < len(tokens):
            words = [t.word for t in tokens[i : i + 3]]
            if words[:1] == ["communaute"] and words[1:3] in (
                ["de", "communes"],
                ["d", "agglomeration"],
            ):
                kind = "cc" if words[2] == "communes" else "ca"
                first, last = tokens[i], tokens[i + 2]
                out.append(
                    _Token(
                        kind, text[first.start : last.end], first.start, last.end, first.hard_before
                    )
                )
                i += 3
                continue
            if words[:2] == ["com", "com"] or words[:1] == ["comcom"]:
                n = 1 if words[0] == "comcom" else 2
                first, last = tokens[i], tokens[i + n - 1]
                out.append(
                    _Token(
                        "cc", text[first.start : last.end], first.start, last.end, first.hard_before
                    )
                )
                i += n
                continue
            out.append(tokens[i])
            i += 1
        return out

    # ------------------------------------------------------------------ reading
    def resolve(self, text: str) -> Resolution:
        """Everything `text` names (never raises on odd input)."""
        text = (text or "")[:MAX_TEXT]
        tokens = self._tokens(text)
        matches: list[Match] = []
        used = [False] * len(tokens)
        i = 0
        n = len(tokens)
        while i < n:
            found = self._exact(tokens, i)
            if found is None and tokens[i].word.isdigit():
                found = self._number(tokens, i)
            if found is None:
                found = self._fuzzy(tokens, i)
            if found is None:
                i += 1
                continue
            match, length = found
            for k in range(i, i + length):
                used[k] = True
            matches.append(match)
            i += length
        matches = self._qualify(tokens, matches, used)
        self._absorb_epci_words(tokens, matches, used)
        matches = self._dedupe(matches)
        self._settle_by_context(matches)
        unresolved = self._leftovers(text, tokens, used)
        return Resolution(text, matches, unresolved, self.data)

    def _segment_alone(
        self, tokens: list[_Token], start: int, end: int, prose_ok: bool = True
    ) -> bool:
        """True when tokens[start:end] is all its segment holds, but for vague or small words
        (and words of the trade, « médecins de Baud », unless `prose_ok` is False)."""
        ignorable = FILLERS | AND_WORDS | VAGUE | (PROSE if prose_ok else set())

        def edge(t: _Token) -> bool:
            return t.hard_before or t.dash_before

        k = start - 1
        while k >= 0 and not edge(tokens[k + 1]) and tokens[k].word not in AND_WORDS:
            if tokens[k].word not in ignorable:
                return False
            k -= 1
        k = end
        while k < len(tokens) and not edge(tokens[k]) and tokens[k].word not in AND_WORDS:
            if tokens[k].word not in ignorable and not tokens[k].word.isdigit():
                return False
            k += 1
        return True

    def _named(self, tokens: list[_Token], start: int, end: int) -> bool:
        """Written as a name (capital letter) or standing alone in a list."""
        return tokens[start].typed[:1].isupper() or self._segment_alone(
            tokens, start, end, prose_ok=False
        )

    def _make(
        self, tokens: list[_Token], text_span: tuple[int, int], entries: list[Any], fuzzy: bool
    ) -> Match | None:
        start, end = text_span
        typed = " ".join(t.typed for t in tokens if start <= t.start and t.end <= end)
        communes = [e for e in entries if e.kind == "commune"]
        former = [e for e in entries if e.kind == "former"]
        others = [e for e in entries if e.kind in ("epci", "departement")]
        if others and not communes:
            entry = others[0]
            if entry.kind == "epci":
                # « Pays Bigouden »: the EPCI it names, all of them
                group = [e for e in others if e.kind == "epci"]
                codes = sorted({m for e in group for m in self.data.epci[e.code].members})
                name = " + ".join(e.name for e in group)
                code = ",".join(e.code for e in group)
                return Match("epci", typed, codes, name, code, fuzzy, start=start, end=end)
            codes = self.data.members_of_departement(entry.code)
            return Match(
                entry.kind, typed, codes, entry.name, entry.code, fuzzy, start=start, end=end
            )
        pool = communes or former
        codes = list(dict.fromkeys(e.code for e in pool))
        if not codes:
            return None
        if len(codes) > 1:
            return Match("ambiguous", typed, [], entries[0].name, "", fuzzy, codes, start, end)
        name = self.data.communes[codes[0]].name
        return Match("commune", typed, codes, name, codes[0], fuzzy, start=start, end=end)

    def _exact(self, tokens: list[_Token], i: int) -> tuple[Match, int] | None:
        names = self.index.names
        for length in range(min(self.index.max_words, len(tokens) - i), 0, -1):
            if any(tokens[k].hard_before for k in range(i + 1, i + length)):
                continue
            key = " ".join(t.word for t in tokens[i : i + length])
            entries = names.get(key)
            if not entries:
                continue
            if length == 1 and key in self.index.acronyms and not tokens[i].typed.isupper():
                continue  # « Bmo » in « Territoire Bmo » is no Brest Métropole
            if (
                length == 1
                and (len(key) <= 4 or key in COMMON_NAMES)
                and all(e.kind in ("commune", "former") for e in entries)
            ) and not self._segment_alone(tokens, i, i + 1):
                continue
            if length == 1 and all(e.weak for e in entries) and not self._named(tokens, i, 1 + i):
                continue  # « cours » in a sentence is not Le Cours
            span = (tokens[i].start, tokens[i + length - 1].end)
            match = self._make(tokens, span, entries, fuzzy=False)
            if match is not None:
                return match, length
        return None

    def _number(self, tokens: list[_Token], i: int) -> tuple[Match, int] | None:
        word = tokens[i].word
        span = (tokens[i].start, tokens[i].end)
        if len(word) == 5:
            codes = self.index.postal.get(word)
            if codes:
                return Match(
                    "postal_code", word, sorted(codes), word, word, start=span[0], end=span[1]
                ), 1
            if word in self.data.communes:
                c = self.data.communes[word]
                return Match("commune", word, [word], c.name, word, start=span[0], end=span[1]), 1
            return None
        if word in BRITTANY:
            following = tokens[i + 1].word if i + 1 < len(tokens) else ""
            if following in QUANTITY:
                return None
            dep = self.data.departements.get(word)
            if dep is None:
                return None
            codes = self.data.members_of_departement(word)
            return Match("departement", word, codes, dep.name, word, start=span[0], end=span[1]), 1
        return None

    def _fuzzy(self, tokens: list[_Token], i: int) -> tuple[Match, int] | None:
        first = tokens[i].word
        if first in FILLERS or first in AND_WORDS or first in VAGUE or first in PROSE:
            return None
        if first.isdigit():
            return None
        best: tuple[float, int, str] | None = None
        for length in (3, 2, 1):
            if i + length > len(tokens):
                continue
            window = tokens[i : i + length]
            if any(t.hard_before for t in window[1:]):
                continue
            words = [t.word for t in window]
            if words[-1] in FILLERS or words[-1] in AND_WORDS or any(w in PROSE for w in words):
                continue
            if any(w in VAGUE and w not in EPCI_WORDS for w in words[1:]) and length > 1:
                continue
            if not self._named(tokens, i, i + length):
                continue  # « servent », « plainte » in a sentence: no typo of a place
            query = " ".join(words)
            if len(query.replace(" ", "")) < FUZZY_MIN_LEN:
                continue
            pool = [k for k in self.index.fuzzy.get(query[0], ()) if abs(len(k) - len(query)) <= 2]
            if not pool:
                continue
            cutoff = 90.0 if len(query) < 8 else 87.0  # one wrong letter in « Lesnevan »
            hit = process.extractOne(query, pool, scorer=fuzz.ratio, score_cutoff=cutoff)
            if hit is None:
                continue
            score = float(hit[1])
            if best is None or score > best[0] + 0.01:
                best = (score, length, str(hit[0]))
        if best is None:
            return None
        _score, length, key = best
        entries = self.index.names[key]
        if length == 1 and (len(key) <= 5 or key in COMMON_NAMES):
            return None
        span = (tokens[i].start, tokens[i + length - 1].end)
        match = self._make(tokens, span, entries, fuzzy=True)
        return (match, length) if match is not None else None

    # ------------------------------------------------------------------ after reading
    def _qualify(self, tokens: list[_Token], matches: list[Match], used: list[bool]) -> list[Match]:
        """« Plouhinec (56) », « Le Faouët, Morbihan »: a département right after a commune or
        an ambiguity qualifies it (unless it is the only thing named)."""
        out: list[Match] = []
        for m in matches:
            prev = out[-1] if out else None
            if (
                m.kind == "departement"
                and prev is not None
                and prev.kind in ("commune", "ambiguous")
                and self._adjacent(tokens, prev.end, m.start)
            ):
                inside = [c for c in prev.candidates if self.data.communes[c].departement == m.code]
                if prev.kind == "ambiguous" and len(inside) == 1:
                    prev.kind, prev.codes, prev.code = "commune", inside, inside[0]
                    prev.name = self.data.communes[inside[0]].name
                    prev.candidates = []
                    continue
                if prev.kind == "commune" and self.data.communes[prev.code].departement == m.code:
                    continue
            out.append(m)
        return out

    def _adjacent(self, tokens: list[_Token], end: int, start: int) -> bool:
        between = [t for t in tokens if end <= t.start and t.end <= start]
        return all(t.word in FILLERS for t in between) and len(between) <= 1

    def _absorb_epci_words(
        self, tokens: list[_Token], matches: list[Match], used: list[bool]
    ) -> None:
        """« CC de Josselin », « agglo de Vannes »: an EPCI word next to a commune names that
        commune's EPCI (the one named after it, else the one it belongs to)."""
        for m in matches:
            if m.kind not in ("commune", "epci"):
                continue
            idx = [k for k, t in enumerate(tokens) if m.start <= t.start and t.end <= m.end]
            if not idx:
                continue
            around: list[int] = []
            k = idx[0] - 1
            while k >= 0 and not used[k] and tokens[k].word in (FILLERS | EPCI_WORDS | {"pays"}):
                around.append(k)
                if tokens[k + 1].hard_before:
                    break
                k -= 1
            k = idx[-1] + 1
            while (
                k < len(tokens)
                and not used[k]
                and not tokens[k].hard_before
                and tokens[k].word in (FILLERS | EPCI_WORDS)
            ):
                around.append(k)
                k += 1
            if not any(tokens[k].word in EPCI_WORDS for k in around):
                continue
            if m.kind == "epci":  # « Lanion Trégor » + « Communauté »: part of its name
                for k in around:
                    used[k] = True
                continue
            key = key_of(m.name)
            named = [e for e in self.data.epci.values() if f" {key} " in f" {key_of(e.name)} "]
            epci_code = named[0].code if len(named) == 1 else self.data.communes[m.code].epci
            if not epci_code:
                continue
            epci = self.data.epci[epci_code]
            for k in around:
                used[k] = True
            typed_tokens = sorted([*idx, *around])
            m.kind, m.code, m.name = "epci", epci.code, epci.name
            m.codes = list(epci.members)
            m.typed = " ".join(tokens[k].typed for k in typed_tokens)

    @staticmethod
    def _dedupe(matches: list[Match]) -> list[Match]:
        """One match per place: « Golfe du Morbihan » and « Vannes agglo » are one EPCI."""
        seen: set[tuple[str, str]] = set()
        out = []
        for m in matches:
            key = (m.kind, m.code) if m.kind != "ambiguous" else (m.kind, m.typed)
            if key not in seen:
                seen.add(key)
                out.append(m)
        return out

    def _settle_by_context(self, matches: list[Match]) -> None:
        """An ambiguity among communes all in one département takes that département's."""
        deps = {
            self.data.communes[c].departement
            for m in matches
            if m.kind == "commune"
            for c in m.codes
        }
        if len(deps) != 1:
            return
        (dep,) = deps
        for m in matches:
            if m.kind != "ambiguous":
                continue
            inside = [c for c in m.candidates if self.data.communes[c].departement == dep]
            if len(inside) == 1:
                m.kind, m.codes, m.code = "commune", inside, inside[0]
                m.name = self.data.communes[inside[0]].name
                m.candidates = []

    def _leftovers(self, text: str, tokens: list[_Token], used: list[bool]) -> list[str]:
        """Runs of words not understood, as typed, without the small words around them."""
        runs: list[list[_Token]] = []
        current: list[_Token] = []
        for token, is_used in zip(tokens, used, strict=True):
            if is_used or token.hard_before or token.word in AND_WORDS:
                if current:
                    runs.append(current)
                current = []
            if not is_used and token.word not in AND_WORDS:
                current.append(token)
        if current:
            runs.append(current)
        out: list[str] = []
        for run in runs:
            while run and run[0].word in FILLERS:
                run = run[1:]
            while run and run[-1].word in FILLERS and run[-1].word not in ("de", "d", "du", "des"):
                run = run[:-1]
            if not run or all(t.word.isdigit() and len(t.word) < 5 for t in run):
                continue
            if all(t.word in FILLERS for t in run):
                continue
            phrase = text[run[0].start : run[-1].end].strip()
            if phrase and phrase not in out:
                out.append(phrase)
        return out


@lru_cache(maxsize=1)
def default_resolver() -> Resolver:
    return Resolver()


@lru_cache(maxsize=4096)
def _cached(text: str) -> dict[str, Any]:
    return default_resolver().resolve(text).as_dict()


def resolve_text(text: str) -> dict[str, Any]:
    """`Resolver.resolve(text).as_dict()` with the shipped data, cached per text (a copy)."""
    import copy

    return copy.deepcopy(_cached(text))
