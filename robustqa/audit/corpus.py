"""The corpus side of the audit: every document's sentences in one set of flat arrays, with their TF-IDF
vectors, boilerplate and instruction flags, built once and shared by every audited dataset.

One vectorizer is fitted on all sentences of all documents (IDF over sentences), so retrieval within any
document is one sparse product; document vectors (for rows that name no document) are the sum of their
sentences' counts, weighted by an IDF over documents. Sentences of document d are the contiguous rows
sent_ptr[d]:sent_ptr[d + 1].
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from robustqa.doc_ids import unique_documents
from robustqa.errors import InputError
from robustqa.segment import sentences
from robustqa.text_match import stop_words
from robustqa.types import Document, stripped_text_hash

from .boilerplate import BoilerplateProvider, sentence_fractions
from .instructions import InstructionScorer, heuristic_instruction_scores, score_all

log = logging.getLogger(__name__)
MIN_DOCS_FOR_MAX_DF = 20
# Segmenting runs in worker processes from this many characters on (below, starting them costs more).
PARALLEL_MIN_CHARS = 2_000_000
_ALNUM = re.compile(r"[^\W_]")


@dataclass
class DocMatch:
    """How a row's document name resolved: one document, a group of candidates (a SQuAD title), or none."""

    doc: int = -1
    group: tuple[int, ...] | None = None
    unknown_name: bool = False


class CorpusIndex:
    """Sentences, vectors and flags of a document collection (see the module docstring)."""

    def __init__(
        self,
        documents: Sequence[Document],
        boilerplate: BoilerplateProvider | None = None,
        instruction_scorer: InstructionScorer | None = None,
        instruction_threshold: float = 0.5,
        boilerplate_majority: float = 0.5,
        retrieval_max_df: float = 0.5,
        workers: int = 0,
        instruction_regions: BoilerplateProvider | None = None,
    ) -> None:
        if not documents:
            raise InputError("no documents to audit against")
        given = list(documents)
        self.documents = list(unique_documents(given, lambda: iter(given)))
        self.doc_ids = [d.id for d in self.documents]
        self.doc_index = {doc_id: i for i, doc_id in enumerate(self.doc_ids)}
        self.doc_lengths = np.array([len(d.text) for d in self.documents], dtype=np.int64)
        self._doc_term: tuple[np.ndarray, sp.csr_matrix] | None = None
        self._segment(workers)
        texts = self.sentence_texts()
        self._vectorise(texts, retrieval_max_df)
        self._flag_boilerplate(texts, boilerplate, boilerplate_majority)
        if instruction_regions is not None:
            # A span filter judged whole documents: a sentence's score is its share inside flagged regions.
            self.instruction_scorer_name = f"regions: {_name(instruction_regions)}"
            self.instruction_score = self._region_fractions(instruction_regions).astype(np.float32)
            self.instruction_like = self.instruction_score > 0.5
        else:
            self.instruction_scorer_name = _name(instruction_scorer) if instruction_scorer else "builtin-heuristic"
            scorer = instruction_scorer or heuristic_instruction_scores
            self.instruction_score = np.array(score_all(scorer, texts), dtype=np.float32)
            self.instruction_like = self.instruction_score >= instruction_threshold
        self._build_name_lookup()

    # -- building ------------------------------------------------------------------------------------------
    def _segment(self, workers: int) -> None:
        texts = [d.text for d in self.documents]
        starts, ends, counts = _segment_all(texts, workers)
        self.sent_start, self.sent_end = starts, ends
        self.sent_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.sent_doc = np.repeat(np.arange(len(self.documents), dtype=np.int64), counts)
        # Global character coordinates (documents laid end to end) make target lookup one searchsorted.
        self.doc_base = np.concatenate([[0], np.cumsum(self.doc_lengths + 1)[:-1]]).astype(np.int64)
        self.n_sentences = len(starts)

    def sentence_text(self, s: int) -> str:
        return self.documents[self.sent_doc[s]].text[self.sent_start[s] : self.sent_end[s]]

    def sentence_texts(self) -> list[str]:
        return [self.sentence_text(s) for s in range(self.n_sentences)]

    def _vectorise(self, texts: list[str], retrieval_max_df: float) -> None:
        self.counter = CountVectorizer(stop_words=sorted(stop_words()), dtype=np.float32)
        try:
            counts = self.counter.fit_transform(texts).tocsr()
        except ValueError:
            raise InputError("the documents contain no words to attribute questions to") from None
        self.analyzer = self.counter.build_analyzer()
        self.vocabulary: dict[str, int] = self.counter.vocabulary_
        self.sentence_idf = TfidfTransformer(sublinear_tf=True).fit(counts)
        self.sent_tfidf = self.sentence_idf.transform(counts).tocsr().astype(np.float32)
        self.sent_bin = counts.copy()
        self.sent_bin.data[:] = 1.0
        membership = sp.csr_matrix(
            (np.ones(self.n_sentences, dtype=np.float32), (self.sent_doc, np.arange(self.n_sentences))),
            shape=(len(self.documents), self.n_sentences),
        )
        doc_counts = (membership @ counts).tocsr()
        self.document_idf = TfidfTransformer(sublinear_tf=True).fit(doc_counts)
        self.doc_tfidf = self.document_idf.transform(doc_counts).tocsr().astype(np.float32)
        # Document retrieval ignores terms found in more than retrieval_max_df of the documents (20 or more).
        doc_freq = np.bincount(doc_counts.indices, minlength=doc_counts.shape[1])
        keep = np.ones(doc_counts.shape[1], dtype=np.float32)
        if len(self.documents) >= MIN_DOCS_FOR_MAX_DF:
            keep[doc_freq > retrieval_max_df * len(self.documents)] = 0.0
        self.retrieval_term_mask = sp.diags(keep, format="csr")
        self.has_word = np.diff(counts.indptr) > 0

    def _region_fractions(self, provider: BoilerplateProvider, known: np.ndarray | None = None) -> np.ndarray:
        """Each sentence's share of characters inside the provider's regions (0 where it does not know the
        document)."""
        fractions = np.zeros(self.n_sentences)
        for d, doc in enumerate(self.documents):
            regions = provider(doc)
            if regions is None:
                continue
            if known is not None:
                known[d] = True
            lo, hi = self.sent_ptr[d], self.sent_ptr[d + 1]
            fractions[lo:hi] = sentence_fractions(self.sent_start[lo:hi], self.sent_end[lo:hi], regions, len(doc.text))
        return fractions

    def _flag_boilerplate(self, texts: list[str], provider: BoilerplateProvider | None, majority: float) -> None:
        self.boilerplate_known = np.zeros(len(self.documents), dtype=bool)
        if provider is None:
            self.boilerplate = np.zeros(self.n_sentences, dtype=bool)
        else:
            self.boilerplate = self._region_fractions(provider, self.boilerplate_known) > majority
        alnum = np.array([_ALNUM.search(t) is not None for t in texts], dtype=bool)
        # Content: what a generator should ask about, so the denominator of coverage.
        self.content = ~self.boilerplate & alnum

    def _build_name_lookup(self) -> None:
        groups: dict[str, list[int]] = {}
        for d, doc in enumerate(self.documents):
            prefix, sep, _ = doc.id.rpartition("/")
            names = {prefix} if sep else set()
            title = doc.meta.get("title") if isinstance(doc.meta, dict) else None
            if isinstance(title, str) and title.strip():
                names.add(title)
            for name in names:
                groups.setdefault(name, []).append(d)
        self.name_groups = {k: tuple(v) for k, v in groups.items()}
        self.text_hashes = {stripped_text_hash(doc.text): d for d, doc in enumerate(self.documents)}

    # -- lookups -------------------------------------------------------------------------------------------
    def resolve(self, name: str | None) -> DocMatch:
        """A row's document name -> a document (by id, or by its full text), a title's paragraphs, or
        nothing."""
        if name is None:
            return DocMatch()
        if name in self.doc_index:
            return DocMatch(doc=self.doc_index[name])
        group = self.name_groups.get(name)
        if group is not None:
            return DocMatch(doc=group[0]) if len(group) == 1 else DocMatch(group=group)
        by_text = self.text_hashes.get(stripped_text_hash(name))
        if by_text is not None:
            return DocMatch(doc=by_text)
        return DocMatch(unknown_name=True)

    def encode(self, texts: Sequence[str]) -> tuple[sp.csr_matrix, np.ndarray]:
        """Term counts of texts over the corpus vocabulary, and each text's number of distinct content words
        (words outside the vocabulary included: they count against groundedness)."""
        indptr, indices, values = [0], [], []
        distinct = np.zeros(len(texts), dtype=np.int32)
        vocab = self.vocabulary
        for i, text in enumerate(texts):
            tokens = self.analyzer(text)
            counts: dict[int, int] = {}
            seen = set()
            for tok in tokens:
                seen.add(tok)
                j = vocab.get(tok)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            distinct[i] = len(seen)
            indices.extend(counts)
            values.extend(counts.values())
            indptr.append(len(indices))
        matrix = sp.csr_matrix(
            (
                np.array(values, dtype=np.float32),
                np.array(indices, dtype=np.int32),
                np.array(indptr, dtype=np.int64),
            ),
            shape=(len(texts), len(vocab)),
        )
        matrix.sort_indices()
        return matrix, distinct

    @property
    def n_terms(self) -> int:
        return len(self.vocabulary)

    def doc_term_index(self) -> tuple[np.ndarray, sp.csr_matrix]:
        """Sorted keys term * n_documents + document of every (term, document) in some sentence, and the matrix
        keys x sentences of the sentences' TF-IDF weights (built on first use).

        Built from the term-major (CSC) copy of the sentence vectors, in which a term's sentences come in order
        and so do their documents: each (term, document) key is a run of consecutive entries, and the matrix
        reuses that copy's arrays. No sort and no per-entry 64-bit key (a 200 MB document has 25M entries)."""
        if self._doc_term is None:
            csc = self.sent_tfidf.tocsc()
            csc.sort_indices()
            nnz = csc.nnz
            doc_of = self.sent_doc.astype(np.int32)[csc.indices]
            starts = np.ones(nnz, dtype=bool)
            if nnz:
                starts[1:] = doc_of[1:] != doc_of[:-1]
                starts[csc.indptr[:-1][np.diff(csc.indptr) > 0]] = True  # each term's first entry
            firsts = np.flatnonzero(starts)
            del starts
            term = np.searchsorted(csc.indptr, firsts, side="right") - 1
            keys = term.astype(np.int64) * len(self.documents) + doc_of[firsts]
            del doc_of, term
            indptr = np.append(firsts, nnz).astype(csc.indptr.dtype)
            matrix = sp.csr_matrix((csc.data, csc.indices, indptr), shape=(len(keys), self.n_sentences), copy=False)
            self._doc_term = (keys, matrix)
        return self._doc_term

    def describe(self) -> dict:
        known = self.boilerplate_known
        return {
            "documents": len(self.documents),
            "characters": int(self.doc_lengths.sum()),
            "sentences": int(self.n_sentences),
            "content_sentences": int(self.content.sum()),
            "boilerplate_sentences": int(self.boilerplate.sum()),
            "documents_with_known_boilerplate": int(known.sum()),
            "instruction_like_sentences": int(self.instruction_like.sum()),
            "instruction_scorer": self.instruction_scorer_name,
            "vocabulary": len(self.vocabulary),
        }


def _name(obj: object) -> str:
    if isinstance(getattr(obj, "source", None), str):
        return obj.source
    owner = getattr(obj, "__self__", None)
    target = owner if owner is not None else obj
    module = getattr(target, "__module__", "") or ""
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}:{qualname}" if module else qualname


def _segment_texts(texts: list[str]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    starts, ends, counts = [], [], []
    for text in texts:
        spans = sentences(text)
        starts.extend(s.start for s in spans)
        ends.extend(s.end for s in spans)
        counts.append(len(spans))
    return np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64), counts


# A document this long is cut into pieces of about this many characters, segmented in parallel.
PIECE_CHARS = 4_000_000
_SHARED_TEXTS: list[str] = []  # what forked workers read pieces from (inherited, never pickled)


def pieces(text: str, size: int | None = None) -> list[tuple[int, int]]:
    """Cut points of `text` right after a blank line ("\\n\\n"), about `size` apart. Sentences never span a
    blank line, so segmenting the pieces and shifting their offsets gives exactly the sentences of the whole."""
    size = PIECE_CHARS if size is None else size
    out, pos = [], 0
    while len(text) - pos > size:
        cut = text.find("\n\n", pos + size)
        if cut < 0:
            break
        out.append((pos, cut + 2))
        pos = cut + 2
    out.append((pos, len(text)))
    return out


def _segment_piece(task: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    index, start, end = task
    spans = sentences(_SHARED_TEXTS[index][start:end])
    return (
        np.fromiter((s.start + start for s in spans), dtype=np.int64, count=len(spans)),
        np.fromiter((s.end + start for s in spans), dtype=np.int64, count=len(spans)),
    )


def _segment_all(texts: list[str], workers: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Sentence offsets of every text; on Linux, large corpora are split over forked worker processes, a long
    document in pieces cut at blank lines (see `pieces`)."""
    global _SHARED_TEXTS
    if workers <= 0:
        workers = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if workers < 2 or sum(map(len, texts)) < PARALLEL_MIN_CHARS or not sys.platform.startswith("linux"):
        return _segment_texts(texts)
    if max(map(len, texts)) > PIECE_CHARS:
        tasks = [(i, a, b) for i, text in enumerate(texts) for a, b in pieces(text)]
        _SHARED_TEXTS = texts
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                results = list(pool.map(_segment_piece, tasks))
        finally:
            _SHARED_TEXTS = []
        counts = [0] * len(texts)
        for (i, _, _), (found, _) in zip(tasks, results, strict=True):
            counts[i] += len(found)
        return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results]), counts
    size = -(-len(texts) // (workers * 4))
    batches = [texts[i : i + size] for i in range(0, len(texts), size)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        parts = list(pool.map(_segment_texts, batches))
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        [c for p in parts for c in p[2]],
    )
