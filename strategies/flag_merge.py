"""Merging flagged ranges: one flag per run of ranges that touch or are separated only by whitespace."""

from __future__ import annotations

from collections.abc import Sequence

from robustqa.components import SpanFlag

MAX_REASONS = 3


def merge_adjacent(text: str, flags: Sequence[SpanFlag]) -> list[SpanFlag]:
    """Flags of the same filter that overlap or are separated only by whitespace become one; a merged flag
    lists its first `MAX_REASONS` distinct reasons and counts the rest; its score is the run's maximum."""
    runs: list[tuple[int, int, str, float, list[str]]] = []
    for flag in sorted(flags, key=lambda f: (f.start, f.end)):
        if runs and runs[-1][2] == flag.filter and not text[runs[-1][1] : flag.start].strip():
            start, end, name, score, reasons = runs[-1]
            runs[-1] = (start, max(end, flag.end), name, max(score, flag.score), reasons + [flag.reason])
        else:
            runs.append((flag.start, flag.end, flag.filter, flag.score, [flag.reason]))
    return [SpanFlag(start, end, name, score, join_reasons(reasons)) for start, end, name, score, reasons in runs]


def join_reasons(reasons: Sequence[str]) -> str:
    distinct = list(dict.fromkeys(reasons))
    more = len(distinct) - MAX_REASONS
    return "; ".join(distinct[:MAX_REASONS]) + (f"; and {more} more" if more > 0 else "")
