"""The audit's configuration: one dataclass, every field with a default and help text.

Attribution: min_score, query_answer_weight. Metrics: saturation_window, saturation_gain, position_bins,
groundedness_threshold, duplicate_threshold, instruction_threshold, copy_ngram, boilerplate_majority.
Input: include_rejected, chunk_size. Report: heatmap_documents, curve_points.
"""

from __future__ import annotations

from dataclasses import dataclass

from robustqa.config_base import ConfigBase, option


@dataclass
class AuditConfig(ConfigBase):
    """Thresholds and sizes of `robustqa audit`; every metric's meaning is in docs/audit.md."""

    min_score: float = option(
        0.1,
        "Retrieval attribution: a record whose best sentence has a TF-IDF cosine below this is "
        "unattributable (an off-document question shares only incidental words with any sentence).",
    )
    query_answer_weight: float = option(
        1.0,
        "Retrieval attribution: weight of the (unit) answer vector against the (unit) question vector in the query.",
    )
    retrieval_max_df: float = option(
        0.5,
        "Document retrieval (rows naming no document) ignores terms found in more than this share of the "
        "documents, when there are 20 or more: they barely rank documents but make the search dense.",
    )
    saturation_window: int = option(50, "Saturation point: the window of further questions that is looked ahead.")
    saturation_gain: float = option(
        0.01,
        "Saturation point: coverage gain (absolute, 0.01 = one percentage point) below which it saturates.",
    )
    position_bins: int = option(10, "Bins of the position histogram over the relative position in the document.")
    groundedness_threshold: float = option(
        0.5,
        "An answer is supported when at least this share of its distinct content words occurs in its "
        "attributed sentences.",
    )
    duplicate_threshold: float = option(0.9, "Two questions are near-duplicates at this TF-IDF cosine or above.")
    instruction_threshold: float = option(0.5, "A sentence is instruction-like when the scorer gives it this or more.")
    copy_ngram: int = option(
        8,
        "An answer carries text of a payload or flagged span when it shares a run of this many words with it.",
    )
    boilerplate_majority: float = option(
        0.5,
        "A sentence is boilerplate when more than this share of its characters lies in boilerplate regions.",
    )
    include_rejected: bool = option(False, "Audit records with kept=false too (by default they are counted, skipped).")
    workers: int = option(0, "Processes that segment a large corpus (0: one per available core, at most 4; 1: none).")
    chunk_size: int = option(4096, "Records read and encoded at a time while streaming the input.")
    heatmap_documents: int = option(6, "Documents drawn as shaded text in the report (those with the most questions).")
    curve_points: int = option(400, "At most this many points of each coverage curve are stored in audit.json.")
