"""Which curated topic a question's wording resembles: a linear classifier over character and
word n-grams, trained on the knowledge base's own question variants.

Why: the lexical search scores a topic by its single best variant and the words it shares; a
question in SMS style (« c quoi l interet d une cpts »), or one whose incidental words happen to
match another topic's variant, then lands on a neighbouring topic. A classifier trained on all
the variants of every topic at once learns which words and word pieces tell the topics apart
(character n-grams also absorb typos and missing accents). Its probability re-weights the
lexical and semantic score (`retrieval.TopicIndex.search_topics`); measured in docs/qa.md.

Training uses scikit-learn's `LogisticRegression` (well kept, deterministic with the lbfgs
solver) and happens only while the index is built, like spaCy's vectors; the weights are then
kept as numpy arrays in the pickled index, and a question is classified with a few numpy
operations, without importing scikit-learn (its import alone costs about 1 s and 100 MB).

Training data: the topic labels and question variants of `knowledge/` only — never an
evaluation question.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from bot.qa.textnorm import fold

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")
CHAR_SIZES = (2, 3, 4, 5)  # character n-grams inside each word, padded with spaces
REGULARISATION_C = 10.0  # inverse L2 strength; 3 to 30 measured alike (docs/qa.md)


def _words(text: str) -> list[str]:
    return _WORD.findall(fold(text).replace("\u2019", "'"))


def features(text: str) -> tuple[Counter[str], Counter[str]]:
    """A text's character n-grams (within words) and word uni- and bigrams, counted."""
    words = _words(text)
    chars: Counter[str] = Counter()
    for w in words:
        padded = f" {w} "
        for n in CHAR_SIZES:
            for i in range(len(padded) - n + 1):
                chars[padded[i : i + n]] += 1
    grams: Counter[str] = Counter(words)
    grams.update(f"{a} {b}" for a, b in pairwise(words))
    return chars, grams


@dataclass
class _Block:
    """One family of features: its columns and inverse document frequencies."""

    columns: dict[str, int]
    idf: np.ndarray  # float32

    def vector(self, counts: Counter[str], offset: int) -> tuple[list[int], list[float]]:
        """Sublinear tf-idf of the known features, L2-normalised within the block."""
        cols: list[int] = []
        vals: list[float] = []
        for feat, count in counts.items():
            col = self.columns.get(feat)
            if col is not None:
                cols.append(offset + col)
                vals.append((1.0 + math.log(count)) * float(self.idf[col]))
        norm = math.sqrt(sum(v * v for v in vals))
        if norm > 0:
            vals = [v / norm for v in vals]
        return cols, vals


def _block(docs: Sequence[Counter[str]]) -> _Block:
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d.keys())
    columns = {feat: i for i, feat in enumerate(sorted(df))}
    n = len(docs)
    idf = np.zeros(len(columns), dtype=np.float32)
    for feat, col in columns.items():
        idf[col] = math.log((1 + n) / (1 + df[feat])) + 1.0  # smoothed, as scikit-learn does
    return _Block(columns, idf)


@dataclass
class TopicClassifier:
    """Multinomial logistic regression over n-gram features: P(topic | question)."""

    chars: _Block
    words: _Block
    weights: np.ndarray  # float32, (n_features, n_topics)
    bias: np.ndarray  # float32, (n_topics,)

    def _vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        c, w = features(text)
        c_cols, c_vals = self.chars.vector(c, 0)
        w_cols, w_vals = self.words.vector(w, len(self.chars.columns))
        return (
            np.asarray(c_cols + w_cols, dtype=np.intp),
            np.asarray(c_vals + w_vals, dtype=np.float32),
        )

    def probabilities(self, text: str) -> np.ndarray:
        """One probability per topic (in training order), summing to 1."""
        cols, vals = self._vector(text)
        logits = self.bias + vals @ self.weights[cols] if len(cols) else self.bias.copy()
        logits = logits - logits.max()
        exp = np.exp(logits)
        return np.asarray(exp / exp.sum(), dtype=np.float64)


def train(texts: Sequence[str], labels: Sequence[int], n_topics: int) -> TopicClassifier | None:
    """Fit the classifier on (variant, topic index) pairs; None without scikit-learn (the
    search then works without it, and says so in the log)."""
    try:  # imported here: only while the index is built
        from scipy.sparse import csr_matrix
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        log.warning("scikit-learn is not installed: topic search without the classifier")
        return None
    feats = [features(t) for t in texts]
    chars = _block([c for c, _ in feats])
    words = _block([w for _, w in feats])
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for r, (c, w) in enumerate(feats):
        for block, counts, offset in ((chars, c, 0), (words, w, len(chars.columns))):
            bc, bv = block.vector(counts, offset)
            rows += [r] * len(bc)
            cols += bc
            vals += bv
    n_features = len(chars.columns) + len(words.columns)
    matrix = csr_matrix((vals, (rows, cols)), shape=(len(texts), n_features))
    model = LogisticRegression(C=REGULARISATION_C, max_iter=3000, tol=1e-3)
    model.fit(matrix, list(labels))
    # scikit-learn orders classes by value: spread them over every topic index
    weights = np.zeros((n_features, n_topics), dtype=np.float32)
    bias = np.full(n_topics, -1e4, dtype=np.float32)  # a topic without variants: never
    classes = [int(c) for c in model.classes_]
    if len(classes) == 2:  # a binary model has one row: the second class against the first
        weights[:, classes[1]] = model.coef_[0]
        bias[classes[0]], bias[classes[1]] = 0.0, model.intercept_[0]
    else:
        for k, cls in enumerate(classes):
            weights[:, cls] = model.coef_[k]
            bias[cls] = model.intercept_[k]
    return TopicClassifier(chars, words, weights, bias)
