"""The agreement rule of benchmarks/engine_compare.py (issue 16): an engine difference counts as noise only when it
is within the seed-to-seed range of either engine, or below the tolerance."""

from __future__ import annotations

import sys

from conftest import REPO

if str(REPO / "benchmarks") not in sys.path:
    sys.path.append(str(REPO / "benchmarks"))

from engine_compare import AGREEMENT, REPORTED, compare  # noqa: E402


def _row(engine: str, seed: int, **figures) -> dict:
    base = {name: 0.5 for name in AGREEMENT + REPORTED}
    return {"engine": engine, "strategy": "naive", "seed": seed, **base, **figures}


def test_a_difference_within_the_seed_range_agrees_and_one_beyond_it_differs():
    rows = [
        _row("hf", 0, coverage=0.30, groundedness=0.10),
        _row("hf", 1, coverage=0.40, groundedness=0.12),
        _row("ct2", 0, coverage=0.35, groundedness=0.40),
        _row("ct2", 1, coverage=0.45, groundedness=0.42),
    ]
    figures = compare(rows, ["hf", "ct2"], tolerance=0.02)["naive"]
    assert figures["coverage"]["difference"] == 0.05 and figures["coverage"]["seed_range"] == 0.1
    assert figures["coverage"]["agrees"] is True
    assert figures["groundedness"]["agrees"] is False  # 0.30 apart, seeds move it by 0.02
    assert figures["kept_share"]["agrees"] is True  # equal everywhere
    assert "agrees" not in figures["seconds"]  # reported, not judged


def test_a_figure_that_never_varies_agrees_only_below_the_tolerance():
    rows = [_row("hf", 0, kept_share=1.0), _row("ct2", 0, kept_share=0.99)]
    assert compare(rows, ["hf", "ct2"], tolerance=0.02)["naive"]["kept_share"]["agrees"] is True
    rows = [_row("hf", 0, kept_share=1.0), _row("ct2", 0, kept_share=0.9)]
    assert compare(rows, ["hf", "ct2"], tolerance=0.02)["naive"]["kept_share"]["agrees"] is False
