"""`stratified` selector: every question is tied to one fixed target span chosen by the strategy, not by
the model.

1. Segment the document into sentence (or paragraph) spans with exact offsets.
2. Eligible targets: content spans (at least `min_target_words` words) that overlap no flagged span.
3. Budget over documents: in proportion to their number of content spans (`weight_by: units`, the default), so
   that one question per content span across a corpus reaches every span; `weight_by: chars` weighs by content
   length instead (a document of long sentences then gets more questions than it has targets, and a document
   of short ones fewer).
4. Strata: Markdown section x position bucket of the document. The budget is spread over strata in
   proportion to their content length (largest remainder), without replacement: no span gets a second
   question before every eligible span has one; then a new round starts. Spans within a stratum are drawn in
   a seeded order.
5. Each item's target is the span; its context is a local window of `window` units either side (cut to
   `max_context_chars`), which the question writer and the answerer see.
No LM call; deterministic in (doc, n, seed).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from robustqa.components import Selector, SpanFlag
from robustqa.errors import ConfigError
from robustqa.segment import paragraphs, sections, sentences
from robustqa.types import Document, Span, WorkItem, derive_seed, stable_hash

UNITS = ("sentence", "paragraph")
WEIGHTS = ("units", "chars")


class StratifiedSelector(Selector):
    """Fixed-target stratified sampling over sentences or paragraphs.

    Parameters:
        unit: "sentence" or "paragraph": what a target is.
        position_buckets: how many equal parts of the document (by character position) form strata.
        use_sections: Markdown sections are strata too (section x position bucket).
        window: units of context either side of the target.
        max_context_chars: the window shrinks (far units first) until it fits; the target always stays.
        min_target_words: shorter spans (headings, menu items, captions) are not targets.
        weight_by: "units" (a document's share of the budget is its number of content spans) or "chars" (its
            content length).
    """

    name = "stratified"

    def __init__(
        self,
        unit: str = "sentence",
        position_buckets: int = 4,
        use_sections: bool = True,
        window: int = 2,
        max_context_chars: int = 1500,
        min_target_words: int = 5,
        weight_by: str = "units",
    ) -> None:
        self.unit = unit
        self.position_buckets = position_buckets
        self.use_sections = use_sections
        self.window = window
        self.max_context_chars = max_context_chars
        self.min_target_words = min_target_words
        self.weight_by = weight_by

    def validate(self) -> None:
        if self.unit not in UNITS:
            raise ConfigError(f"stratified unit must be one of {', '.join(UNITS)}, got {self.unit!r}")
        if self.weight_by not in WEIGHTS:
            raise ConfigError(f"stratified weight_by must be one of {', '.join(WEIGHTS)}, got {self.weight_by!r}")
        if self.position_buckets < 1 or self.window < 0 or self.max_context_chars < 1:
            raise ConfigError("stratified needs position_buckets >= 1, window >= 0 and max_context_chars >= 1")

    # -- eligibility -----------------------------------------------------------------------------------------
    def units(self, doc: Document) -> list[Span]:
        return sentences(doc.text, doc.id) if self.unit == "sentence" else paragraphs(doc.text, doc.id)

    def is_content(self, span: Span) -> bool:
        return len(span.text.split()) >= self.min_target_words

    def eligible(self, doc: Document, blocked: Sequence[SpanFlag] = ()) -> list[int]:
        """Indices (into `units(doc)`) of the spans that may be targets."""
        spans = self.units(doc)
        ranges = sorted((f.start, f.end) for f in blocked)
        return [i for i, s in enumerate(spans) if self.is_content(s) and not _overlaps_any(s, ranges)]

    def weight(self, doc: Document) -> float:
        # Content only: a page of navigation earns no more questions than its article. Targets are spans, so
        # by default every content span weighs the same, wherever it is.
        content = [s for s in self.units(doc) if self.is_content(s)]
        return float(len(content)) if self.weight_by == "units" else float(sum(len(s.text) for s in content))

    # -- planning --------------------------------------------------------------------------------------------
    def select(self, doc: Document, n: int, seed: int, blocked: Sequence[SpanFlag], fingerprint: str) -> list[WorkItem]:
        spans = self.units(doc)
        eligible = self.eligible(doc, blocked)
        if n <= 0 or not eligible:
            return []
        strata = self._strata(doc, spans, eligible)
        picks: list[tuple[int, int, str]] = []  # (round, span index, stratum label)
        for round_no in range((n + len(eligible) - 1) // len(eligible)):
            want = min(n - len(picks), len(eligible))
            rng_seed = derive_seed(seed, doc.id, "round", round_no)
            picks.extend((round_no, i, label) for i, label in _draw(strata, spans, want, rng_seed))
        items = []
        for index, (round_no, i, label) in enumerate(picks):
            start, end = self._window(spans, i)
            items.append(
                WorkItem(
                    id=stable_hash(fingerprint, seed, doc.id, index),
                    doc_id=doc.id,
                    index=index,
                    seed=derive_seed(seed, doc.id, index),
                    context=(start, end),
                    target=spans[i],
                    meta={"stratum": label, "round": round_no},
                )
            )
        return items

    def _strata(self, doc: Document, spans: list[Span], eligible: list[int]) -> dict[str, list[int]]:
        bounds = [s.start for s in sections(doc.text, doc.id)] if self.use_sections else []
        strata: dict[str, list[int]] = {}
        length = max(len(doc.text), 1)
        for i in eligible:
            section = sum(1 for b in bounds[1:] if b <= spans[i].start)
            bucket = min(self.position_buckets - 1, spans[i].start * self.position_buckets // length)
            strata.setdefault(f"section{section}/pos{bucket}", []).append(i)
        return strata

    def _window(self, spans: list[Span], i: int) -> tuple[int, int]:
        lo, hi = max(0, i - self.window), min(len(spans) - 1, i + self.window)
        # Shrink from the side farther from the target until the window fits.
        while spans[hi].end - spans[lo].start > self.max_context_chars and (lo < i or hi > i):
            if hi - i >= i - lo and hi > i:
                hi -= 1
            else:
                lo += 1
        return spans[lo].start, spans[hi].end


def _overlaps_any(span: Span, ranges: list[tuple[int, int]]) -> bool:
    return any(start < span.end and end > span.start for start, end in ranges)


def _draw(strata: dict[str, list[int]], spans: list[Span], want: int, seed: int) -> list[tuple[int, str]]:
    """`want` distinct spans spread over strata by content length (largest remainder, capped by size)."""
    rng = random.Random(seed)
    labels = sorted(strata)
    sizes = {label: sum(len(spans[i].text) for i in strata[label]) for label in labels}
    quota = {label: 0 for label in labels}
    remaining = want
    while remaining > 0:  # re-spread what full strata cannot take
        open_labels = [label for label in labels if quota[label] < len(strata[label])]
        total = sum(sizes[label] for label in open_labels)
        exact = {label: remaining * sizes[label] / total for label in open_labels}
        given = {label: min(int(exact[label]), len(strata[label]) - quota[label]) for label in open_labels}
        left = remaining - sum(given.values())
        by_remainder = sorted(open_labels, key=lambda label: (-(exact[label] - int(exact[label])), label))
        for label in by_remainder:
            if left == 0:
                break
            if quota[label] + given[label] < len(strata[label]):
                given[label] += 1
                left -= 1
        for label in open_labels:
            quota[label] += given[label]
        remaining = left
    picked = []
    for label in labels:
        order = list(strata[label])
        rng.shuffle(order)
        picked.extend((i, label) for i in order[: quota[label]])
    # Document order within a round reads naturally in the output and keeps batches local.
    return sorted(picked)
