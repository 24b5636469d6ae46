"""Near-duplicate questions: every pair with TF-IDF cosine >= threshold, without comparing all pairs.

Exact repeats (same lower-cased, whitespace-normalised text) are grouped first. For the distinct texts, an
all-pairs similarity search with prefix filtering (after Bayardo et al., 2007) finds the candidates: features
are put in one global rare-first order, and each unit vector's "prefix" is what precedes its longest tail of
squared norm < t^2. If two vectors' prefixes are disjoint, every shared feature lies in the suffix of the one
whose prefix ends first, so their cosine is below sqrt(t^2) * 1 = t. Every pair at or above t therefore shares
a prefix feature, and the sparse product of the prefixes (rare features only, for most questions) yields all
candidates, which are then scored exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import TfidfVectorizer

_SPACE = re.compile(r"\s+")
ROW_CHUNK = 2048
PAIR_CHUNK = 500_000


@dataclass
class DuplicateResult:
    """Near-duplicate pairs (counted with multiplicity), the questions having one, and the redundancy."""

    pairs: int
    questions_with_duplicate: int
    clusters: int
    redundant: int
    examples: list[tuple[int, int, float]]


def near_duplicates(questions: list[str], threshold: float = 0.9, max_examples: int = 10) -> DuplicateResult:
    n = len(questions)
    keys = [_SPACE.sub(" ", q.strip().lower()) for q in questions]
    first_of: dict[str, int] = {}
    unique_of = np.empty(n, dtype=np.int64)
    representatives: list[int] = []
    for i, key in enumerate(keys):
        u = first_of.setdefault(key, len(representatives))
        if u == len(representatives):
            representatives.append(i)
        unique_of[i] = u
    multiplicity = np.bincount(unique_of, minlength=len(representatives)).astype(np.int64)
    a, b, sims = _similar_pairs([keys[i] for i in representatives], threshold)

    pairs = int((multiplicity * (multiplicity - 1) // 2).sum() + (multiplicity[a] * multiplicity[b]).sum())
    graph = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(len(representatives),) * 2)
    n_components, labels = connected_components(graph, directed=False)
    component_size = np.bincount(labels, weights=multiplicity)
    with_dup = int(component_size[labels[unique_of]].__gt__(1).sum())
    examples = _examples(representatives, multiplicity, a, b, sims, max_examples)
    return DuplicateResult(pairs, with_dup, int(n_components), n - int(n_components), examples)


def _similar_pairs(texts: list[str], threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
    if len(texts) < 2:
        return empty
    vectorizer = TfidfVectorizer(sublinear_tf=True, dtype=np.float32, token_pattern=r"(?u)\b\w+\b")
    try:
        x = vectorizer.fit_transform(texts).tocsr()
    except ValueError:  # no word in any question
        return empty
    # Rare-first feature order: reorder columns by document frequency, then each row's entries by column.
    df = np.bincount(x.indices, minlength=x.shape[1])
    rank = np.empty_like(df)
    rank[np.argsort(df, kind="stable")] = np.arange(len(df))
    x = sp.csr_matrix((x.data, rank[x.indices], x.indptr), shape=x.shape)
    x.sort_indices()
    prefix = _prefixes(x, threshold * threshold)
    prefix_t = prefix.T.tocsr()
    found_a, found_b = [], []
    for lo in range(0, x.shape[0], ROW_CHUNK):
        cand = sp.triu(prefix[lo : lo + ROW_CHUNK] @ prefix_t, k=1 + lo).tocoo()  # each pair once, i < j
        found_a.append(cand.row + lo)
        found_b.append(cand.col)
    a, b = np.concatenate(found_a), np.concatenate(found_b)
    if not len(a):
        return empty
    sims = np.concatenate(
        [_row_dots(x, a[i : i + PAIR_CHUNK], b[i : i + PAIR_CHUNK]) for i in range(0, len(a), PAIR_CHUNK)]
    )
    keep = sims >= threshold - 1e-6
    return a[keep].astype(np.int64), b[keep].astype(np.int64), sims[keep]


def _prefixes(x: sp.csr_matrix, tail_bound: float) -> sp.csr_matrix:
    """Binary matrix of each row's entries before its longest tail of squared norm < tail_bound."""
    cumulative = np.concatenate([[0.0], np.cumsum(x.data.astype(np.float64) ** 2)])
    row_end = np.repeat(cumulative[x.indptr[1:]], np.diff(x.indptr))
    tail = row_end - cumulative[:-1]  # squared norm from this entry to the end of its row
    data = (tail >= tail_bound - 1e-6).astype(np.float32)
    prefix = sp.csr_matrix((data, x.indices.copy(), x.indptr.copy()), shape=x.shape)  # eliminate_zeros works in place
    prefix.eliminate_zeros()
    return prefix


def _row_dots(x: sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(x[a].multiply(x[b]).sum(axis=1)).ravel().astype(np.float32)


def _examples(representatives, multiplicity, a, b, sims, k) -> list[tuple[int, int, float]]:
    """Up to k example pairs of row indices: exact repeats first (most repeated), then the closest near
    pairs."""
    out: list[tuple[int, int, float]] = []
    for u in np.argsort(-multiplicity, kind="stable")[:k]:
        if multiplicity[u] > 1:
            out.append((representatives[u], -1, 1.0))  # -1: "and its exact repeats"
    for i in np.argsort(-sims, kind="stable")[: k - len(out)]:
        out.append((representatives[a[i]], representatives[b[i]], float(sims[i])))
    return out
