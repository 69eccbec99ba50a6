"""Retrieval: question analysis (stems, concepts, typo correction) and scoring.

Two kinds of units are scored: curated topics (their question variants, label and answer)
and raw passages of the sources (fallback when no topic fits). A question must first pass a
domain gate: enough ESP/CPTS vocabulary once generic words ("soins", "santé", "comment"…)
are set aside.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz, process

from bot.qa.classifier import TopicClassifier, train
from bot.qa.intent import dimensions_of
from bot.qa.knowledge import KnowledgeBase, Topic
from bot.qa.segment import Passage
from bot.qa.semantic import WordVectors, load_vectors
from bot.qa.textnorm import STOP_WORDS, fold, raw_tokens, stem

# weights of the parts of a topic in its "bag" of words (coverage of the question)
_BAG_VARIANT = 1.0
_BAG_LABEL = 1.0
_BAG_ANSWER = 0.7
_BAG_PASSAGE = 0.45
# domain strength of a plain corpus word (neither strong nor generic)
_DOMAIN_PLAIN = 0.35
_STRONG = 0.7
_CORRECTED_FACTOR = 0.85
_GENERIC_FACTOR = 0.35
_LIGHT_FACTOR = 0.25  # auxiliaries and light verbs ("utiliser", "mener", "passer")
_PLAIN_FACTOR = 0.6  # corpus words that are neither concepts nor strong domain terms
_UNKNOWN_WEIGHT = 1.5
_ENTITY_MISMATCH = 0.7
_EXTRA_STRUCTURE = 0.9
_STRUCTURES = frozenset({"_esp", "_cpts", "_msp", "_pta"})
_REGION_MISMATCH = 0.9
_ANSWER_VARIANT = 0.8
_GLOSSARY_FACTOR = 0.85
_FOCUS_MIN_WEIGHT = 1.4
# a topic whose label and variants ask about the question's dimension (funding, steps, who…)
# is preferred; one about other dimensions only is set back
_DIM_MATCH = 1.06
_DIM_MISMATCH = 0.86
_DIM_SHARE = 0.1  # a topic has a dimension when its label or a tenth of its variants ask about it
# word vectors (bot/qa/semantic.py): the question's sentence similarity with a topic's
# variants is fused with the lexical score with this weight (measured in docs/qa.md)
_SEM_WEIGHT = 0.25
# how much the classifier's probability (relative to its best topic) re-weights a topic's
# score: score * (1 - w + w * p / p_max); measured at 0.15-0.9 in docs/qa.md
_CLF_WEIGHT = 0.5
_SENTENCE_END = re.compile(r"(?<=[.;!?])\s+(?=[A-ZÀ-Ý«(])")
# the objects people ask about: a topic that never names the one asked about is penalised
_ENTITIES = frozenset(
    {"_esp", "_cpts", "_msp", "_pta", "_ami", "_aci", "_fir", "_sas", "_urps"}
)  # words the corpus never uses: dilute the match, do not dominate it


@dataclass
class Analysis:
    """A question as the index sees it."""

    terms: dict[str, float]  # term -> query weight
    unknown: list[str]  # words unknown to the corpus (after correction)
    corrected: dict[str, str]  # typo -> corrected word
    domain_mass: float
    tokens: list[str] = field(default_factory=list)  # folded tokens (before stop words)
    anchor: float = 0.0  # strongest domain weight among the terms
    foreign: int = 0  # terms the texts never use, or generic health/everyday words
    dims: frozenset[str] = frozenset()  # what the question asks about (funding, steps…)
    embedding: np.ndarray | None = None  # IDF-weighted mean word vector of the question
    ungrounded: list[str] = field(
        default_factory=list
    )  # words the texts never use (variants aside)
    # the folded words written with a capital (« Quimper »), or None when the question is typed
    # without capitals beyond its first letter (then a name cannot be told by its case)
    capitalized: frozenset[str] | None = None
    # the folded words written in capitals as acronyms are (« RPPS », « CPOM »)
    acronyms: frozenset[str] = frozenset()
    # the classifier's probabilities, computed once per question (`Index.probabilities`)
    class_probs: np.ndarray | None = field(default=None, repr=False)


@dataclass
class Hit:
    kind: str  # "topic" or "passage"
    key: str  # topic id or passage id
    score: float
    cosine: float
    coverage: float


_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]{1,6}\b")


def _capitalized(question: str) -> frozenset[str] | None:
    """The folded words a question writes with a capital, first word aside; None when it has
    no capital there at all (« a quimper c ou »: SMS style, case tells nothing)."""
    words = re.findall(r"[^\W\d_][\w'’-]*", question)[1:]
    if not any(ch.isupper() for w in words for ch in w):
        return None
    return frozenset(t for w in words if w[0].isupper() for t in raw_tokens(w))


class Analyzer:
    """Turns text into weighted terms: stems, concept tokens ("_esp"), typo correction."""

    def __init__(self, lexicon: dict) -> None:
        self.concept_weight: dict[str, float] = {}
        self.exact: dict[str, str] = {}  # folded word -> concept token
        # first stem -> list of (stem tuple, concept token), longest first
        self.phrases: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for name, spec in (lexicon.get("concepts") or {}).items():
            token = f"_{name}"
            self.concept_weight[token] = float(spec.get("weight", 1.0))
            for phrase in spec.get("phrases") or []:
                if phrase.startswith("="):  # exact word, when stemming would conflate
                    self.exact[phrase[1:]] = token  # ("coordinateur" vs "coordination")
                    continue
                stems = tuple(stem(t) for t in raw_tokens(phrase))
                if stems:
                    self.phrases.setdefault(stems[0], []).append((stems, token))
        for lst in self.phrases.values():
            lst.sort(key=lambda x: -len(x[0]))
        self.core = {stem(t) for w in lexicon.get("core_terms") or [] for t in raw_tokens(w)}
        self.strong = {stem(t) for w in lexicon.get("strong_terms") or [] for t in raw_tokens(w)}
        self.generic = {stem(t) for w in lexicon.get("generic_terms") or [] for t in raw_tokens(w)}
        self.light = {stem(t) for w in lexicon.get("light_words") or [] for t in raw_tokens(w)}
        self.generic |= self.light  # never a domain word, never distinctive
        self.off_domain = {
            stem(t) for w in lexicon.get("off_domain_terms") or [] for t in raw_tokens(w)
        }
        self.vocabulary: set[str] = set()  # folded surface words known to the corpus
        self.grounded: set[str] = set()  # … of which the texts themselves use (not variants)
        self._fuzzy_choices: list[str] = []
        self.known_terms: set[str] = set()

    def set_vocabulary(self, words: set[str], grounded: set[str] | None = None) -> None:
        self.vocabulary = {w for w in words if w not in STOP_WORDS}
        self.grounded = self.vocabulary if grounded is None else grounded
        self._fuzzy_choices = sorted(w for w in self.vocabulary if len(w) >= 4 and w.isalpha())
        self._correct.cache_clear()

    @lru_cache(maxsize=16384)  # noqa: B019 - one analyzer per service, lives as long as it
    def _correct(self, word: str) -> str | None:
        """Closest corpus word for a misspelt word, or None."""
        n = len(word)
        if n < 5 or not word.isalpha():
            return None
        rooted = self._by_root(word)
        if rooted is not None:
            return rooted
        cutoff = 90.0 if n == 5 else 84.0 if n <= 7 else 80.0
        best = process.extractOne(word, self._fuzzy_choices, scorer=fuzz.ratio, score_cutoff=cutoff)
        if best is None:
            return None
        cand = best[0]
        # the first letters are rarely wrong; a big length difference is not a typo
        if cand[:2] != word[:2] or abs(len(cand) - n) > 2:
            return None
        return cand

    def _by_root(self, word: str) -> str | None:
        """Inflected forms the stemmer misses ("rejoins" -> "rejoindre"): the word less its
        last one or two letters must begin a corpus word."""
        choices = self._fuzzy_choices
        for cut in (1, 2):
            root = word[:-cut]
            if len(root) < 5:
                break
            i = bisect.bisect_left(choices, root)
            if i < len(choices) and choices[i].startswith(root):
                return choices[i]
        # a corpus word that the unknown word extends: "tacitement" -> "tacite"
        n = len(word)
        for size in range(n - 1, max(5, n - 5) - 1, -1):
            prefix = word[:size]
            i = bisect.bisect_left(choices, prefix)
            if i < len(choices) and choices[i] == prefix:
                return prefix
        return None

    def terms(self, text: str, correct: bool = False) -> tuple[list[str], list[str], dict]:
        """(terms, unknown words, corrections) of a text."""
        tokens = raw_tokens(text)
        names = (_capitalized(text) or frozenset()) if correct else frozenset()
        corrected: dict[str, str] = {}
        unknown: list[str] = []
        words: list[str] = []
        for tok in tokens:
            if correct and tok not in self.vocabulary and tok not in STOP_WORDS:
                # a word of another field (« recette ») is not a typo of a word of the texts,
                # nor is a name written with its capital (« la vallée du Léguer »)
                known_elsewhere = tok.isdigit() or stem(tok) in self.off_domain or tok in names
                fixed = None if known_elsewhere else self._correct(tok)
                if fixed is not None:
                    corrected[tok] = fixed
                    tok = fixed
            words.append(tok)
        stems = [stem(w) for w in words]
        out: list[str] = []
        i = 0
        while i < len(stems):
            if words[i] in self.exact:
                out.append(self.exact[words[i]])
                i += 1
                continue
            match = None
            for phrase, token in self.phrases.get(stems[i], ()):
                if tuple(stems[i : i + len(phrase)]) == phrase:
                    match = (phrase, token)
                    break
            if match is not None:
                out.append(match[1])
                i += len(match[0])
                continue
            w = words[i]
            if w not in STOP_WORDS and not (len(w) == 1 and not w.isdigit()):
                out.append(stems[i])
                if correct and w not in self.vocabulary and w not in corrected.values():
                    unknown.append(w)
            i += 1
        return out, unknown, corrected

    def domain_weight(self, term: str) -> float:
        if term.startswith("_"):
            return self.concept_weight.get(term, 0.5)
        if term in self.generic:
            return 0.0
        if term in self.core:
            return 1.0
        if term in self.strong:
            return _STRONG
        if term.isdigit():
            # article numbers and key figures the texts use (1434, 6327, 15000) anchor a question
            return 0.8 if len(term) >= 4 and term in self.known_terms else 0.2
        return _DOMAIN_PLAIN if term in self.known_terms else 0.0


class Index:
    """Inverted index over topic variants, topic bags and passages."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.analyzer = Analyzer(kb.lexicon)
        vocab: set[str] = set()

        memo: dict[str, list[str]] = {}

        def words_of(text: str) -> list[str]:
            if text not in memo:
                vocab.update(raw_tokens(text))
                memo[text] = self.analyzer.terms(text)[0]
            return memo[text]

        # --- documents for IDF: one per topic, one per passage
        self.topic_ids: list[str] = []
        topic_variants: list[list[list[str]]] = []
        topic_bags: list[dict[str, float]] = []
        for t in kb.topics.values():
            variants = [words_of(q) for q in (t.label, *t.questions)]
            bag: dict[str, float] = {}
            for v in variants:
                for term in v:
                    bag[term] = max(bag.get(term, 0.0), _BAG_VARIANT)
            for term in words_of(t.answer):
                bag[term] = max(bag.get(term, 0.0), _BAG_ANSWER)
            for s in t.sources:
                p = kb.passages.get(s.passage_id)
                if p is not None:
                    for term in words_of(p.text):
                        bag[term] = max(bag.get(term, 0.0), _BAG_PASSAGE)
            self.topic_ids.append(t.id)
            topic_variants.append(variants)
            topic_bags.append(bag)
        self.passage_ids: list[str] = []
        passage_bags: list[dict[str, float]] = []
        for p in kb.passages.values():
            if p.hidden:
                continue
            bag = {}
            for term in words_of(p.section) + words_of(p.context):
                bag[term] = 0.5
            for term in words_of(p.text):
                bag[term] = 1.0
            self.passage_ids.append(p.id)
            passage_bags.append(bag)
        # the words of the texts themselves (passages, curated answers, lexicon, glossary),
        # without the question variants: a word only a variant uses (« Quimper » in « je suis
        # kiné à Quimper ») is still a word the texts never use
        grounded: set[str] = set()
        for p in kb.passages.values():
            grounded.update(raw_tokens(p.text))
            grounded.update(raw_tokens(p.section))
        for t in kb.topics.values():
            grounded.update(raw_tokens(t.answer))
        for concept_phrases in (kb.lexicon.get("concepts") or {}).values():
            for phrase in concept_phrases.get("phrases") or []:
                vocab.update(raw_tokens(phrase))
        for g in kb.glossary:
            vocab.update(raw_tokens(g.expansion))
        for concept_phrases in (kb.lexicon.get("concepts") or {}).values():
            for phrase in concept_phrases.get("phrases") or []:
                grounded.update(raw_tokens(phrase.lstrip("=")))
        for g in kb.glossary:
            grounded.update(raw_tokens(g.expansion))
            grounded.add(g.acronym.lower())
        self.analyzer.set_vocabulary(vocab, grounded)

        # IDF
        df: dict[str, int] = {}
        for bag in topic_bags + passage_bags:
            for term in bag:
                df[term] = df.get(term, 0) + 1
        n_docs = len(topic_bags) + len(passage_bags)
        self.idf = {t: math.log(1.0 + n_docs / c) for t, c in df.items()}
        self.max_idf = math.log(1.0 + n_docs)
        self.analyzer.known_terms = set(df)

        # word vectors: every variant's embedding
        self.vectors: WordVectors | None = load_vectors()
        self.sem_matrix: np.ndarray | None = None
        self.sem_topic: np.ndarray | None = None
        self.sem_starts: np.ndarray | None = None  # first variant of each topic's run
        self.sem_owners: np.ndarray | None = None  # the topic of each run
        if self.vectors is not None:
            embs: list[np.ndarray] = []
            owners: list[int] = []
            for ti, t in enumerate(kb.topics.values()):
                for q in (t.label, *t.questions):
                    e = self._embed(raw_tokens(q))
                    if e is not None:
                        embs.append(e)
                        owners.append(ti)
            if embs:
                self.sem_matrix = np.stack(embs)
                self.sem_topic = np.asarray(owners, dtype=np.int32)
                starts = [0] + [i for i in range(1, len(owners)) if owners[i] != owners[i - 1]]
                self.sem_starts = np.asarray(starts, dtype=np.intp)
                self.sem_owners = self.sem_topic[self.sem_starts]

        # a classifier trained on every topic's label and variants (never on evaluation
        # questions): P(topic | wording) re-weights the search
        texts: list[str] = []
        labels: list[int] = []
        for ti, t in enumerate(kb.topics.values()):
            for q in (t.label, *t.questions):
                texts.append(q)
                labels.append(ti)
        self.classifier: TopicClassifier | None = train(texts, labels, len(kb.topics))

        # variant vectors (binary tf * idf), with norms, in an inverted index
        self.variant_topic: list[int] = []
        self.variant_norm: list[float] = []
        self.postings: dict[str, list[tuple[int, float]]] = {}
        for ti, variants in enumerate(topic_variants):
            answer_terms = words_of(kb.topics[self.topic_ids[ti]].answer)
            # the answer itself is one more "variant", worth a little less than a question
            for v, factor in [(v, 1.0) for v in variants] + [(answer_terms, _ANSWER_VARIANT)]:
                terms = set(v)
                if not terms:
                    continue
                vi = len(self.variant_topic)
                self.variant_topic.append(ti)
                norm = math.sqrt(sum(self._w(term) ** 2 for term in terms))
                self.variant_norm.append(norm)
                for term in terms:
                    self.postings.setdefault(term, []).append((vi, self._w(term) * factor))
        # the same postings as numpy arrays, and each topic's run of variants (they are
        # stored topic by topic), so that a question's cosines are a few vector operations
        self.posting_arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {
            t: (
                np.asarray([vi for vi, _ in plist], dtype=np.intp),
                np.asarray([w for _, w in plist], dtype=np.float64),
            )
            for t, plist in self.postings.items()
        }
        self.variant_norm_array = np.asarray(self.variant_norm, dtype=np.float64)
        vt = self.variant_topic
        self.variant_starts = np.asarray(
            [0] + [i for i in range(1, len(vt)) if vt[i] != vt[i - 1]], dtype=np.intp
        )
        self.variant_owners = np.asarray(vt, dtype=np.intp)[self.variant_starts]
        self.topic_bags = topic_bags
        self._topic_pos = {tid: i for i, tid in enumerate(self.topic_ids)}
        # what a topic's ANSWER says (answer text and verbatim quotes), without its variants:
        # a topic found through its variants may still not give what the question asks for
        self.topic_answer_terms = [
            frozenset(
                words_of(kb.topics[tid].answer)
                + [t for s in kb.topics[tid].sources for t in words_of(s.quote)]
            )
            for tid in self.topic_ids
        ]
        self.topic_entities = [
            frozenset(_ENTITIES.intersection(t for v in variants for t in v))
            for variants in topic_variants
        ]
        self.topic_dims: list[frozenset[str]] = []
        for t in kb.topics.values():
            label_dims = dimensions_of(t.label)
            counts: dict[str, int] = {}
            for q in t.questions:
                for d in dimensions_of(q):
                    counts[d] = counts.get(d, 0) + 1
            n = max(len(t.questions), 1)
            shared = {d for d, c in counts.items() if c >= _DIM_SHARE * n}
            self.topic_dims.append(frozenset(label_dims | shared | set(t.dimensions)))
        self.topic_is_glossary = [
            kb.topics[tid].origin == "glossary.yaml" for tid in self.topic_ids
        ]
        self.passage_bags = passage_bags
        self.passage_norm = [
            math.sqrt(sum((self._w(t) * b) ** 2 for t, b in bag.items())) or 1.0
            for bag in passage_bags
        ]
        # each passage cut into sentences with their terms (plus the section's), for the
        # sentence that gives what a curated answer lacks
        self.passage_sentences: dict[str, list[tuple[str, frozenset[str]]]] = {}
        for pid in self.passage_ids:
            p = kb.passages[pid]
            head = set(words_of(p.section))
            self.passage_sentences[pid] = [
                (sent.strip(), frozenset(words_of(sent)) | head)
                for sent in _SENTENCE_END.split(p.text)
                if sent.strip()
            ]
        self.topic_postings: dict[str, list[int]] = {}
        for ti, bag in enumerate(topic_bags):
            for term in bag:
                self.topic_postings.setdefault(term, []).append(ti)
        self.passage_postings: dict[str, list[int]] = {}
        for pi, bag in enumerate(passage_bags):
            for term in bag:
                self.passage_postings.setdefault(term, []).append(pi)

    def _w(self, term: str) -> float:
        return self.idf.get(term, self.max_idf)

    def _embed(self, tokens: list[str]) -> np.ndarray | None:
        """IDF-weighted mean word vector of a text's content words (None: no vectors)."""
        if self.vectors is None:
            return None
        pairs = [
            (w, self._w(stem(w)) * (_LIGHT_FACTOR if stem(w) in self.analyzer.light else 1.0))
            for w in tokens
            if w not in STOP_WORDS and len(w) > 1
        ]
        return self.vectors.embed(pairs)

    # --- queries ----------------------------------------------------------------------------

    def analyze(self, question: str) -> Analysis:
        terms, unknown, corrected = self.analyzer.terms(question, correct=True)
        corrected_stems = {stem(w) for w in corrected.values()}
        weights: dict[str, float] = {}
        for t in terms:
            if t not in self.idf:
                w = _UNKNOWN_WEIGHT
            else:
                w = self._w(t)
                if t in self.analyzer.light:
                    w *= _LIGHT_FACTOR
                elif t in self.analyzer.generic:
                    w *= _GENERIC_FACTOR
                elif self.analyzer.domain_weight(t) < 0.5:
                    w *= _PLAIN_FACTOR
            if t in corrected_stems:
                w *= _CORRECTED_FACTOR
            weights[t] = max(weights.get(t, 0.0), w)
        doms = [self.analyzer.domain_weight(t) for t in weights]
        mass = sum(doms)
        anchor = max(doms, default=0.0)
        foreign = sum(
            1
            for t in weights
            if (t not in self.idf and t not in self.analyzer.generic)
            or t in self.analyzer.off_domain
        )
        tokens = raw_tokens(question)
        return Analysis(
            weights, unknown, corrected, mass, tokens, anchor, foreign,
            dimensions_of(question), self._embed(tokens),
            [w for w in tokens if w not in self.analyzer.grounded and w not in STOP_WORDS],
            _capitalized(question), frozenset(fold(w) for w in _ACRONYM.findall(question)),
        )  # fmt: skip

    def focus_term(self, a: Analysis) -> str | None:
        """The question's most distinctive word: the heaviest known term that is not one of
        the objects (ESP, CPTS…) nor a generic word; None when nothing stands out."""
        best, best_w = None, _FOCUS_MIN_WEIGHT
        for t, w in a.terms.items():
            if t in _ENTITIES or t in self.analyzer.generic or t not in self.idf:
                continue
            if w > best_w:
                best, best_w = t, w
        return best

    def search_topics(self, a: Analysis, limit: int = 5) -> list[Hit]:
        q = a.terms
        if not q:
            return []
        q_norm = math.sqrt(sum(w * w for w in q.values()))
        q_sq = sum(w * w for w in q.values())
        n_variants = len(self.variant_norm_array)
        dots = np.zeros(n_variants, dtype=np.float64)
        for t, qw in q.items():
            posting = self.posting_arrays.get(t)
            if posting is not None:
                dots += np.bincount(posting[0], posting[1] * qw, minlength=n_variants)
        per_topic = np.maximum.reduceat(
            dots / (q_norm * self.variant_norm_array), self.variant_starts
        )
        best_cos: dict[int, float] = {
            int(ti): float(c) for ti, c in zip(self.variant_owners, per_topic, strict=True) if c > 0
        }
        candidates: set[int] = set(best_cos)
        for t in q:
            candidates.update(self.topic_postings.get(t, ()))
        sem: dict[int, float] = {}
        if (
            a.embedding is not None
            and self.sem_matrix is not None
            and self.sem_starts is not None
            and self.sem_owners is not None
        ):
            # variants are stored topic by topic: one maximum per contiguous run
            best = np.maximum.reduceat(self.sem_matrix @ a.embedding, self.sem_starts)
            sem = {int(ti): float(v) for ti, v in zip(self.sem_owners, best, strict=True)}
        probs = self.probabilities(a)
        if probs is not None:
            probs = probs / max(float(probs.max()), 1e-9)
        q_entities = _ENTITIES.intersection(q)
        hits: list[Hit] = []
        for ti in candidates:
            bag = self.topic_bags[ti]
            cov = sum(w * w * bag.get(t, 0.0) for t, w in q.items()) / q_sq
            cos = best_cos.get(ti, 0.0)
            score = 0.55 * cos + 0.45 * cov
            if sem:
                score = (1.0 - _SEM_WEIGHT) * score + _SEM_WEIGHT * sem.get(ti, 0.0)
            if probs is not None:
                score *= 1.0 - _CLF_WEIGHT + _CLF_WEIGHT * float(probs[ti])
            entities = self.topic_entities[ti]
            if q_entities and entities and not (q_entities & entities):
                score *= _ENTITY_MISMATCH  # asks about an ESP, topic is about the AMI…
            if len(q_entities & _STRUCTURES) >= 2 and (entities & _STRUCTURES) - q_entities:
                score *= _EXTRA_STRUCTURE  # « ESP et CPTS, la différence ? »: not the PTA's too
            if "_bretagne" in q and "_bretagne" not in self.topic_bags[ti]:
                score *= _REGION_MISMATCH  # "en Bretagne": prefer what the AMI says
            if self.topic_is_glossary[ti] and len(q) > 2:
                score *= _GLOSSARY_FACTOR  # definitions win only for short questions
            tdims = self.topic_dims[ti]
            if a.dims and tdims:
                score *= _DIM_MATCH if a.dims & tdims else _DIM_MISMATCH
            hits.append(Hit("topic", self.topic_ids[ti], score, cos, cov))
        hits.sort(key=lambda h: -h.score)
        return hits[:limit]

    def probabilities(self, a: Analysis) -> np.ndarray | None:
        """The classifier's P(topic | question), once per analysis (None without it)."""
        if self.classifier is None or not a.tokens:
            return None
        if a.class_probs is None:
            a.class_probs = self.classifier.probabilities(" ".join(a.tokens))
        return a.class_probs

    def classifier_choice(self, a: Analysis) -> str | None:
        """The topic the classifier finds likeliest for the question (None without it)."""
        probs = self.probabilities(a)
        return None if probs is None else self.topic_ids[int(probs.argmax())]

    def search_passages(self, a: Analysis, limit: int = 5) -> list[Hit]:
        q = a.terms
        if not q:
            return []
        q_norm = math.sqrt(sum(w * w for w in q.values()))
        q_sq = sum(w * w for w in q.values())
        candidates: set[int] = set()
        for t in q:
            candidates.update(self.passage_postings.get(t, ()))
        hits: list[Hit] = []
        for pi in candidates:
            bag = self.passage_bags[pi]
            dot = sum(w * self._w(t) * bag.get(t, 0.0) for t, w in q.items())
            cos = dot / (q_norm * self.passage_norm[pi])
            cov = sum(w * w * bag.get(t, 0.0) for t, w in q.items()) / q_sq
            score = 0.3 * cos + 0.7 * cov
            hits.append(Hit("passage", self.passage_ids[pi], score, cos, cov))
        hits.sort(key=lambda h: -h.score)
        return hits[:limit]

    def distinct(self, a: Analysis) -> dict[str, float]:
        """The question's terms that say WHAT is asked: the objects (ESP, CPTS…) and generic
        words set aside, each weighted by its squared query weight (IDF × domain factor), so
        rare nouns dominate and common verbs ("utiliser", "mener") weigh little."""
        return {
            t: w * w
            for t, w in a.terms.items()
            if t not in _ENTITIES and t not in self.analyzer.generic and t in self.idf
        }

    def answer_coverage(
        self, a: Analysis, topic_id: str, d: dict[str, float] | None = None
    ) -> float:
        """Share of the question's distinctive weight that the topic's answer and quotes
        contain."""
        d = self.distinct(a) if d is None else d
        total = sum(d.values())
        if not total:
            return 1.0
        terms = self.topic_answer_terms[self._topic_pos[topic_id]]
        return sum(w for t, w in d.items() if t in terms) / total

    def topic(self, topic_id: str) -> Topic | None:
        return self.kb.topics.get(topic_id)

    def passage(self, passage_id: str) -> Passage | None:
        return self.kb.passages.get(passage_id)
