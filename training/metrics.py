"""SQuAD answer scoring (the official v1.1 normalisation, from robustqa.text_match), answer-position buckets and
summaries."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from robustqa.text_match import normalize_answer, overlap_f1

POSITIONS = ("early", "middle", "late")


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(g) for g in golds))


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """The best token-overlap F1 of the prediction against any gold answer (1 when both normalise to nothing)."""
    pred_tokens = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        gold_tokens = normalize_answer(gold).split()
        if not pred_tokens or not gold_tokens:
            best = max(best, float(pred_tokens == gold_tokens))
        else:
            best = max(best, overlap_f1(pred_tokens, gold_tokens))
    return best


def position_bucket(answer_start: int, context_length: int) -> str:
    """Which third of the paragraph the gold answer starts in: early, middle or late."""
    if context_length <= 0:
        return "early"
    third = min(2, max(0, int(3 * answer_start / context_length)))
    return POSITIONS[third]


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return sum(kept) / len(kept) if kept else None


# choice: the gold answer preferred to the paragraph's other answers; margin: their mean NLL minus the gold's.
METRICS = ("em", "f1", "nll", "choice", "margin")


def summarize(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = METRICS) -> dict[str, Any]:
    """Mean of each metric over the rows, overall and by answer position (rows carry a `position` key)."""
    summary: dict[str, Any] = {"n": len(rows)}
    summary.update({m: _mean(r.get(m) for r in rows) for m in metrics})
    by_position = {}
    for position in POSITIONS:
        part = [r for r in rows if r.get("position") == position]
        by_position[position] = {"n": len(part), **{m: _mean(r.get(m) for r in part) for m in metrics}}
    summary["by_position"] = by_position
    return summary
