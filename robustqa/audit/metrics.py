"""The audit's metric formulas, as small pure functions over numpy arrays (their meaning: docs/audit.md)."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np


def gini(counts: np.ndarray) -> float | None:
    """Gini coefficient of non-negative counts: 0 when all equal, (n - 1) / n when one item holds everything.
    G = sum_i sum_j |x_i - x_j| / (2 n^2 mean), computed from the sorted values."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total <= 0:
        return None
    ranks = np.arange(1, n + 1)
    return float(2.0 * np.sum(ranks * x) / (n * total) - (n + 1) / n)


def normalised_entropy(counts: np.ndarray) -> float | None:
    """Shannon entropy of the count distribution divided by log(n): 1 when uniform over all n items."""
    x = np.asarray(counts, dtype=np.float64)
    n, total = len(x), x.sum()
    if n == 0 or total <= 0:
        return None
    if n == 1:
        return 1.0
    p = x[x > 0] / total
    return float(-(p * np.log(p)).sum() / math.log(n))


def top_share(counts: np.ndarray, fraction: float = 0.1) -> float | None:
    """Share of the total held by the top ceil(fraction * n) items (at least one)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    total = x.sum()
    if len(x) == 0 or total <= 0:
        return None
    k = max(1, math.ceil(fraction * len(x) - 1e-9))
    return float(x[:k].sum() / total)


def coverage_curve(first_question: np.ndarray, n_items: int, n_questions: int) -> np.ndarray:
    """Coverage after 0..n_questions questions: `first_question[i]` is the 0-based generation index of the
    first question on item i (any value >= n_questions when it has none); `n_items` is the denominator."""
    if n_items == 0:
        return np.zeros(n_questions + 1)
    firsts = np.sort(first_question[first_question < n_questions])
    after = np.searchsorted(firsts, np.arange(n_questions + 1), side="left")  # questions 0..k-1 asked
    return after / n_items


def saturation_applicable(window: int, gain: float, n_items: int) -> bool:
    """Could `window` questions add `gain` coverage at all (each on a new item)? Not on a large corpus (more
    than window / gain items): there the point would be reached at once whatever the generator does, so it is
    not reported; the per-document points are."""
    return n_items > 0 and window >= gain * n_items - 1e-9


def saturation_point(curve: np.ndarray, window: int, gain: float) -> int | None:
    """The smallest number of questions k after which `window` more add less than `gain` coverage; None when
    the data has fewer than k + window questions for every such k (not saturated within the data)."""
    n_questions = len(curve) - 1
    if n_questions < window:
        return None
    gains = curve[window:] - curve[: n_questions - window + 1]
    below = np.flatnonzero(gains < gain - 1e-12)
    return int(below[0]) if len(below) else None


def jaccard(a: set | np.ndarray, b: set | np.ndarray) -> float | None:
    a, b = set(np.asarray(list(a)).tolist()), set(np.asarray(list(b)).tolist())
    union = a | b
    return len(a & b) / len(union) if union else None


def pairwise_jaccard(sets: dict[str, set]) -> dict:
    """Jaccard of every pair of named sets, and their mean."""
    pairs = []
    for (name_a, a), (name_b, b) in combinations(sets.items(), 2):
        pairs.append({"a": name_a, "b": name_b, "jaccard": jaccard(a, b)})
    values = [p["jaccard"] for p in pairs if p["jaccard"] is not None]
    return {"pairs": pairs, "mean_jaccard": float(np.mean(values)) if values else None}


def histogram(positions: np.ndarray, bins: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Counts of relative positions in [0, 1] over `bins` equal bins (1.0 falls in the last bin)."""
    idx = np.minimum((np.asarray(positions) * bins).astype(np.int64), bins - 1)
    return np.bincount(idx, weights=weights, minlength=bins).astype(np.float64)


def share(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator else None


def total_variation(p: np.ndarray, q: np.ndarray) -> float | None:
    """Half the L1 distance between two distributions given as counts (0 = same shape, 1 = disjoint)."""
    sp, sq = p.sum(), q.sum()
    if sp <= 0 or sq <= 0:
        return None
    return float(0.5 * np.abs(p / sp - q / sq).sum())
