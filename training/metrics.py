"""SQuAD answer scoring (the official v1.1 normalisation), answer-position buckets and summaries."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

POSITIONS = ("early", "middle", "late")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and the articles a/an/the, squeeze whitespace (SQuAD v1.1)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(g) for g in golds))


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """The best token-overlap F1 of the prediction against any gold answer."""
    pred_tokens = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        gold_tokens = normalize_answer(gold).split()
        if not pred_tokens or not gold_tokens:
            best = max(best, float(pred_tokens == gold_tokens))
            continue
        common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
        if common:
            precision, recall = common / len(pred_tokens), common / len(gold_tokens)
            best = max(best, 2 * precision * recall / (precision + recall))
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


def summarize(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = ("em", "f1", "nll")) -> dict[str, Any]:
    """Mean of each metric over the rows, overall and by answer position (rows carry a `position` key)."""
    summary: dict[str, Any] = {"n": len(rows)}
    summary.update({m: _mean(r.get(m) for r in rows) for m in metrics})
    by_position = {}
    for position in POSITIONS:
        part = [r for r in rows if r.get("position") == position]
        by_position[position] = {"n": len(part), **{m: _mean(r.get(m) for r in part) for m in metrics}}
    summary["by_position"] = by_position
    return summary
