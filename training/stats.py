"""Paired differences between students with a two-level bootstrap over seeds and questions.

Every student answers the same questions, so the difference of two strategies is taken per (seed,
question) and then averaged. The 95% interval resamples seeds and questions with replacement (both sources
of variance: a different training run, a different question set), as a percentile bootstrap."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def paired_bootstrap(
    a: Sequence[Sequence[float]],
    b: Sequence[Sequence[float]],
    samples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Mean of a - b with a bootstrap interval; `a`, `b` are [seed][question] arrays over the same questions.

    Seeds pair by position (the same training seed); when `b` has a single seed (a control), it is compared
    with every seed of `a`. Questions with a missing value (NaN/None) in any student are left out.
    """
    a_arr = np.asarray(a, dtype=float)
    b_arr = np.asarray(b, dtype=float)
    if a_arr.ndim != 2 or b_arr.ndim != 2 or a_arr.shape[1] != b_arr.shape[1]:
        raise ValueError(f"need [seed][question] arrays over the same questions, got {a_arr.shape}, {b_arr.shape}")
    if b_arr.shape[0] == 1 and a_arr.shape[0] > 1:
        b_arr = np.repeat(b_arr, a_arr.shape[0], axis=0)
    elif a_arr.shape[0] == 1 and b_arr.shape[0] > 1:
        a_arr = np.repeat(a_arr, b_arr.shape[0], axis=0)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"seed counts differ: {a_arr.shape[0]} vs {b_arr.shape[0]}")
    diff = a_arr - b_arr
    diff = diff[:, ~np.isnan(diff).any(axis=0)]
    n_seeds, n_questions = diff.shape
    if n_questions == 0:
        return {"diff": None, "low": None, "high": None, "n_seeds": n_seeds, "n_questions": 0, "samples": 0}
    rng = np.random.default_rng(seed)
    question_idx = rng.integers(0, n_questions, size=(samples, n_questions))
    seed_weights = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=samples) / n_seeds
    # per_seed_means[s, k]: mean difference of seed s over the k-th resampled question set.
    per_seed_means = diff[:, question_idx].mean(axis=2)
    boot = (seed_weights * per_seed_means.T).sum(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return {
        "diff": float(diff.mean()),
        "low": float(low),
        "high": float(high),
        "n_seeds": n_seeds,
        "n_questions": n_questions,
        "samples": samples,
    }
