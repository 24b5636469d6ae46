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
    return bootstrap_mean(difference_matrix(a_arr, b_arr), samples, seed, confidence)


def bootstrap_mean(
    diff: Sequence[Sequence[float]] | np.ndarray, samples: int = 2000, seed: int = 0, confidence: float = 0.95
) -> dict[str, Any]:
    """Mean of a [seed][question] matrix of paired differences, with its two-level bootstrap interval."""
    diff = np.asarray(diff, dtype=float)
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


def _broadcast(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair a single-seed student (a control) with every seed of the other side."""
    if b.shape[0] == 1 and a.shape[0] > 1:
        b = np.repeat(b, a.shape[0], axis=0)
    elif a.shape[0] == 1 and b.shape[0] > 1:
        a = np.repeat(a, b.shape[0], axis=0)
    if a.shape != b.shape:
        raise ValueError(f"seed counts differ: {a.shape[0]} vs {b.shape[0]}")
    return a, b


def difference_matrix(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> np.ndarray:
    """[seed][question] of a - b, seeds paired by position (a single-seed side is paired with every seed)."""
    a_arr, b_arr = _broadcast(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    return a_arr - b_arr


def power_estimate(
    diff: Sequence[Sequence[float]], effect: float, alpha: float = 0.05, power: float = 0.8
) -> dict[str, Any]:
    """What a [seed][question] matrix of paired differences can resolve, from its variance components.

    A two-way random-effects decomposition (seed, question, residual) gives the variance of the mean difference
    at any size: var = s2_seed / S + s2_question / Q + s2_residual / (S Q). The minimum detectable effect at the
    measured size is (z_{1-alpha/2} + z_power) * se; `questions_needed` is the question count at which `effect`
    becomes detectable with the same seeds (None when seed variance alone already makes it impossible).
    """
    from statistics import NormalDist

    d = np.asarray(diff, dtype=float)
    d = d[:, ~np.isnan(d).any(axis=0)]
    n_seeds, n_questions = d.shape
    if n_questions < 2:
        raise ValueError("need at least two questions to estimate power")
    grand = d.mean()
    seed_means, question_means = d.mean(axis=1), d.mean(axis=0)
    if n_seeds > 1:
        residual = d - seed_means[:, None] - question_means[None, :] + grand
        s2_res = float((residual**2).sum() / ((n_seeds - 1) * (n_questions - 1)))
        s2_seed = max(0.0, float(((seed_means - grand) ** 2).sum() / (n_seeds - 1)) - s2_res / n_questions)
        s2_q = max(0.0, float(((question_means - grand) ** 2).sum() / (n_questions - 1)) - s2_res / n_seeds)
    else:  # one seed: seed and residual variance cannot be told apart from question variance
        s2_res, s2_seed = 0.0, 0.0
        s2_q = float(((question_means - grand) ** 2).sum() / (n_questions - 1))
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)

    def se(seeds: int, questions: int) -> float:
        return float(np.sqrt(s2_seed / seeds + s2_q / questions + s2_res / (seeds * questions)))

    room = (effect / z) ** 2 - s2_seed / n_seeds
    per_question = s2_q + s2_res / n_seeds
    needed = int(np.ceil(per_question / room)) if room > 0 else None
    return {
        "effect": effect,
        "alpha": alpha,
        "power": power,
        "n_seeds": n_seeds,
        "n_questions": n_questions,
        "var_seed": s2_seed,
        "var_question": s2_q,
        "var_residual": s2_res,
        "se": se(n_seeds, n_questions),
        "detectable_effect": z * se(n_seeds, n_questions),
        "questions_needed": needed,
    }
