"""Attribution: which sentences of which document each QA pair is about, with a score, vectorised
over all rows.

1. Rows with target offsets: the sentences overlapping the target (score 1), found for all rows at once by one
   searchsorted in global character coordinates.
2. Rows with no (known) document: the document whose TF-IDF vector is closest to the question + answer, among
   all documents or the candidates the row's title names.
3. Other rows: the sentence of their document with the highest TF-IDF cosine to the query, searched first in
   the row's context window when it has one (robustqa records: the text the question was written from); below
   `min_score` the row is unattributable (counted, with its best score kept).
Step 3 is a single sparse product over (term, document) keyed columns, so no row is compared with another
document's sentences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .corpus import CorpusIndex

METHODS = ("none", "target", "sentence", "document+sentence", "sentence-in-context")
STATUS = ("attributed", "low_score", "no_shared_words", "target_between_sentences", "no_document")
DOC_CHUNK_ROWS = 1024


@dataclass
class Attribution:
    """Per row: document, attributed sentences (sents[ptr[i]:ptr[i + 1]]), score, method and status codes."""

    doc: np.ndarray
    ptr: np.ndarray
    sents: np.ndarray
    score: np.ndarray
    doc_score: np.ndarray
    method: np.ndarray
    status: np.ndarray

    @property
    def attributed(self) -> np.ndarray:
        return self.status == 0

    def row_of_pairs(self) -> np.ndarray:
        """The row index of each entry of `sents`."""
        return np.repeat(np.arange(len(self.doc)), np.diff(self.ptr))


def attribute(
    corpus: CorpusIndex,
    doc: np.ndarray,
    group: np.ndarray,
    groups: list[tuple[int, ...]],
    target_start: np.ndarray,
    target_end: np.ndarray,
    context_start: np.ndarray,
    context_end: np.ndarray,
    query: sp.csr_matrix,
    query_counts: sp.csr_matrix,
    min_score: float,
) -> Attribution:
    n = len(doc)
    doc = doc.astype(np.int64).copy()
    score = np.full(n, np.nan, dtype=np.float32)
    doc_score = np.full(n, np.nan, dtype=np.float32)
    method = np.zeros(n, dtype=np.int8)
    status = np.zeros(n, dtype=np.int8)
    pair_rows: list[np.ndarray] = []
    pair_sents: list[np.ndarray] = []

    # 1. Targets.
    has_target = (target_start >= 0) & (doc >= 0)
    rows = np.flatnonzero(has_target)
    if len(rows):
        r, s = _target_sentences(corpus, doc[rows], target_start[rows], target_end[rows])
        pair_rows.append(rows[r])
        pair_sents.append(s)
        method[rows] = 1
        score[rows] = 1.0
        hit = np.zeros(n, dtype=bool)
        hit[rows[r]] = True
        status[rows[~hit[rows]]] = 3

    # 2. Documents for rows that name none (or a title with several paragraphs).
    need_doc = np.flatnonzero(doc < 0)
    if len(need_doc):
        best, best_score = _retrieve_documents(corpus, group[need_doc], groups, query_counts[need_doc])
        doc[need_doc] = best
        doc_score[need_doc] = best_score
        method[need_doc] = 3
        status[need_doc[best < 0]] = 4

    # 3. Sentences within the document.
    rows = np.flatnonzero(~has_target & (doc >= 0))
    if len(rows):
        # A row's context window (the text its question came from) limits the search if it holds a match.
        lo = np.full(len(rows), -1, dtype=np.int64)
        hi = np.full(len(rows), -1, dtype=np.int64)
        windowed = np.flatnonzero(context_start[rows] >= 0)
        if len(windowed):
            r = rows[windowed]
            lo[windowed], hi[windowed] = _overlap_range(corpus, doc[r], context_start[r], context_end[r])
        best_sent, best, in_window = _retrieve_sentences(corpus, doc[rows], query[rows], lo, hi)
        method[rows] = np.where(method[rows] == 3, 3, np.where(in_window, 4, 2))
        score[rows] = best
        ok = best >= min_score
        status[rows[(best_sent < 0)]] = 2
        status[rows[(best_sent >= 0) & ~ok]] = 1
        keep = ok & (best_sent >= 0)
        pair_rows.append(rows[keep])
        pair_sents.append(best_sent[keep])

    rows_all = np.concatenate(pair_rows) if pair_rows else np.zeros(0, dtype=np.int64)
    sents_all = np.concatenate(pair_sents) if pair_sents else np.zeros(0, dtype=np.int64)
    order = np.lexsort((sents_all, rows_all))
    rows_all, sents_all = rows_all[order], sents_all[order]
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(ptr, rows_all + 1, 1)
    return Attribution(doc, np.cumsum(ptr), sents_all.astype(np.int64), score, doc_score, method, status)


def _overlap_range(
    corpus: CorpusIndex, doc: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the global sentence indices [first, last) overlapping [start, end) of its document."""
    base = corpus.doc_base[doc]
    g_start, g_end = base + start, base + np.maximum(end, start + 1)  # an empty range names its position
    s_start = corpus.doc_base[corpus.sent_doc] + corpus.sent_start
    s_end = corpus.doc_base[corpus.sent_doc] + corpus.sent_end
    first = np.searchsorted(s_end, g_start, side="right")  # first sentence ending after the range starts
    last = np.searchsorted(s_start, g_end, side="left")  # sentences starting before the range ends
    return np.maximum(first, corpus.sent_ptr[doc]), np.minimum(last, corpus.sent_ptr[doc + 1])


def _target_sentences(
    corpus: CorpusIndex, doc: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(row, sentence) pairs of every sentence overlapping each row's target."""
    first, last = _overlap_range(corpus, doc, start, end)
    counts = np.maximum(last - first, 0)
    rows = np.repeat(np.arange(len(doc)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return rows, np.repeat(first, counts) + offsets


def _retrieve_documents(
    corpus: CorpusIndex, group: np.ndarray, groups: list[tuple[int, ...]], counts: sp.csr_matrix
) -> tuple[np.ndarray, np.ndarray]:
    # Terms in most documents barely rank them but make the product dense: drop them (cf. sklearn's max_df).
    query = corpus.document_idf.transform(counts @ corpus.retrieval_term_mask).tocsr().astype(np.float32)
    best = np.full(len(group), -1, dtype=np.int64)
    best_score = np.zeros(len(group), dtype=np.float32)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        candidates = np.arange(len(corpus.documents)) if g < 0 else np.array(groups[g], dtype=np.int64)
        matrix_t = (corpus.doc_tfidf if g < 0 else corpus.doc_tfidf[candidates]).T.tocsr()
        for lo in range(0, len(rows), DOC_CHUNK_ROWS):
            chunk = rows[lo : lo + DOC_CHUNK_ROWS]
            sims = (query[chunk] @ matrix_t).toarray()
            arg = sims.argmax(axis=1)
            top = sims[np.arange(len(chunk)), arg]
            best[chunk] = np.where(top > 0, candidates[arg], -1)
            best_score[chunk] = top
    return best, best_score


def _retrieve_sentences(
    corpus: CorpusIndex, doc: np.ndarray, query: sp.csr_matrix, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the best sentence (or -1 when no word is shared), its cosine, and whether it lies in the row's
    window [lo, hi) of sentences. A row with a window takes its best sentence there when any shares a word.

    Terms are keyed by (term, document), so one sparse product only ever pairs a row with its own document's
    sentences: no work is spent on other documents' sentences that share common words.
    """
    n = len(doc)
    best_sent = np.full(n, -1, dtype=np.int64)
    best = np.zeros(n, dtype=np.float32)
    in_window = np.zeros(n, dtype=bool)
    keys, sentences_by_key = corpus.doc_term_index()
    row_of_entry = np.repeat(np.arange(n), np.diff(query.indptr))
    wanted = query.indices.astype(np.int64) * len(corpus.documents) + doc[row_of_entry]
    col = np.searchsorted(keys, wanted)
    found = col < len(keys)
    found[found] = keys[col[found]] == wanted[found]  # terms of the row's document only
    q = sp.csr_matrix(
        (query.data[found], col[found], np.r_[0, np.cumsum(np.bincount(row_of_entry[found], minlength=n))]),
        shape=(n, len(keys)),
    )
    scores = (q @ sentences_by_key).tocoo()  # rows x sentences, non-zero only within the row's document
    rows, sents, values = scores.row, scores.col, scores.data
    if not len(rows):
        return best_sent, best, in_window
    inside = (sents >= lo[rows]) & (sents < hi[rows])
    has_inside = np.zeros(n, dtype=bool)
    has_inside[rows[inside]] = True
    keep = inside | ~has_inside[rows]
    rows, sents, values, inside = rows[keep], sents[keep], values[keep], inside[keep]
    pick = np.lexsort((sents, -values, rows))  # per row: highest score, then the earliest sentence
    firsts = pick[np.flatnonzero(np.r_[True, rows[pick][1:] != rows[pick][:-1]])]
    best_sent[rows[firsts]] = sents[firsts]
    best[rows[firsts]] = values[firsts]
    in_window[rows[firsts]] = inside[firsts]
    return best_sent, best, in_window
