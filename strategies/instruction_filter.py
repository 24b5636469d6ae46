"""`instruction` span filter: quarantines sentences that read as instructions to a language model.

1. Segment the document into sentences; HTML comments, /* */ and // comments and fenced code blocks are
   regions judged as a whole (an instruction hidden in a comment is quarantined with its comment).
2. Cues per sentence (`instruction_cues`): strong ones (role tags, "ignore previous instructions", addressing
   an AI, directing "your response", encoded payloads) and shape cues (imperative, question, second person,
   request, link) that only count in proportion to how OUT OF PLACE they are in this document: an imperative
   in a recipe is the register; in an encyclopaedia article it is not. The register is the share of the
   document's other sentences (outside the sentence's own short run) with that shape.
3. Optionally, topical drift: the MiniLM cosine of the sentence to the rest of the document (planted
   instructions are about something else); and a language shift against an English vocabulary.
4. A small logistic model with hand-set, documented weights turns cues into a probability; sentences at or
   over `threshold` are flagged, and neighbours that look like more of the same (or a "Note to AI:"-style
   header before one, or the payload after a sentence ending in ":") join the block, so a multi-sentence
   attack goes as a whole.
No LM call. Weights can be overridden (`weights: {response_reference: 4.0}` in YAML).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robustqa.components import SpanFilter, SpanFlag
from robustqa.errors import ConfigError
from robustqa.segment import sentences
from robustqa.types import Document, Span

from .flag_merge import merge_adjacent
from .instruction_cues import TASK_VERBS, Cues, find_cues, vocabulary_share

# Log-odds contributions. One strong cue alone crosses the 0.5 threshold; shape cues need each other (or
# topical drift) to cross it, and only count as far as they are out of place in the document.
DEFAULT_WEIGHTS: dict[str, float] = {
    "bias": -4.0,
    "role_tag": 6.0,
    "override": 6.0,
    "ai_address": 5.0,
    "response_reference": 5.0,
    "invisible_unicode": 5.0,
    "chat_role": 3.0,
    "output_directive": 2.5,
    "encoded_payload": 2.5,
    "ai_mention": 0.5,
    "imperative": 2.8,
    "task_verb": 1.0,
    "question": 3.0,
    "second_person": 1.0,
    "request": 1.5,
    "url": 1.0,
    "hidden": 1.5,
    "payload_header": 1.5,
    "off_topic": 3.0,
    "language_shift": 2.0,
}
# Cues that are evidence the text is written TO a language model (its prompt format, speaking to it, overriding
# or directing its response, a hidden or encoded channel, handing over a payload: a sentence ending in ":" right
# before a code block or comment). Everything else (an imperative, question, request or
# "you" out of the document's register, drift off its topic, another language, a link, a mention of AI) only
# says the sentence does not match its host: real documents (emails, manuals, forums, quotations) are full of
# such sentences. With `require_evidence`, suspicion alone never quarantines; it only adds to evidence.
EVIDENCE_CUES = frozenset(
    {
        "role_tag",
        "override",
        "ai_address",
        "response_reference",
        "invisible_unicode",
        "chat_role",
        "output_directive",
        "encoded_payload",
        "hidden",
        "payload_header",
    }
)
CUE_LABELS = {
    "role_tag": "prompt role tag",
    "override": "override of previous instructions",
    "ai_address": "addresses an AI",
    "response_reference": "directs the response",
    "invisible_unicode": "invisible Unicode",
    "chat_role": "chat role line",
    "output_directive": "output directive",
    "encoded_payload": "encoded payload",
    "ai_mention": "mentions AI",
    "imperative": "imperative out of register",
    "task_verb": "asks for text to be produced",
    "question": "question out of register",
    "second_person": "second person out of register",
    "request": "request out of register",
    "url": "link in a directive",
    "hidden": "hidden in a comment",
    "payload_header": "announces a code block or quote",
    "off_topic": "off the document's topic",
    "language_shift": "not in the document's language",
}
_REGION = re.compile(
    r"<!--.*?(?:-->|$)|/\*.*?(?:\*/|$)|(?:^[ \t]*//[^\n]*(?:\n|$))+"
    r"|^[ \t]{0,3}(```|~~~)[^\n]*\n.*?(?:^[ \t]{0,3}\1|\Z)",
    re.S | re.M,
)
_HEADER_END = re.compile(r"[:\u2014-]\s*(?:\*+|#+|\*\*\*)?\s*$")


@dataclass
class UnitScore:
    span: Span
    probability: float
    cues: dict[str, float]
    evidence: dict[str, str]
    region: int | None


class InstructionFilter(SpanFilter):
    """Parameters:
    threshold: probability at or over which a sentence is quarantined.
    block_threshold: a neighbour of a quarantined sentence joins the block at or over this probability
        (or with an instruction cue of strength >= 0.5 of its own, or off topic).
    use_embeddings: add topical drift from MiniLM embeddings (about 0.8 GB, loaded once).
    register_share: a shape (imperative, question, you) used by this share of the other sentences is the
        document's register, not out of place.
    max_block_units: a run of more sentences of one shape than this is the document's register, not planted.
    off_topic_cosine: cosine to the rest of the document below which a sentence counts as off topic; the cue
        grows linearly to full strength at `off_topic_full` (clean sentences: 99% above 0.14 on the shared
        XQuAD and web articles; planted BIPIA attacks: 90% below 0.1).
    off_topic_full: cosine at or below which the off-topic cue has full strength.
    language_shift: the share of words found in an English vocabulary at which a sentence starts to count as
        another language, below the document's median share; full strength 0.3 lower.
    min_topic_units: topical drift and language shift need this many other sentences to compare with.
    require_evidence: a sentence is quarantined on its own only with at least one cue of EVIDENCE_CUES (it is
        written to a model); shape and mismatch cues raise its probability but never suffice. Off, any
        sentence at or over `threshold` is quarantined (the filter before issue 15: it over-blocked benign
        prompts and requests planted into unrelated paragraphs).
    max_gap: a block bridges up to this many units without cues of their own to reach another unit at or over
        `threshold` (a multi-sentence attack with a plain sentence inside stays one block; clean host
        sentences never score that high, so the bridge does not cross into the host).
    weights: overrides of DEFAULT_WEIGHTS (log-odds per cue).
    """

    name = "instruction"

    def __init__(
        self,
        threshold: float = 0.5,
        block_threshold: float = 0.25,
        use_embeddings: bool = True,
        register_share: float = 0.1,
        max_block_units: int = 4,
        off_topic_cosine: float = 0.25,
        off_topic_full: float = 0.05,
        language_shift: float = 0.3,
        min_topic_units: int = 2,
        require_evidence: bool = True,
        max_gap: int = 2,
        weights: dict | None = None,
    ) -> None:
        self.threshold = threshold
        self.block_threshold = block_threshold
        self.use_embeddings = use_embeddings
        self.register_share = register_share
        self.max_block_units = max_block_units
        self.off_topic_cosine = off_topic_cosine
        self.off_topic_full = off_topic_full
        self.language_shift = language_shift
        self.min_topic_units = min_topic_units
        self.require_evidence = require_evidence
        self.max_gap = max_gap
        self.weights = weights

    def validate(self) -> None:
        unknown = set(self.weights or {}) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ConfigError(
                f"instruction filter: unknown weight(s) {sorted(unknown)}; known: {list(DEFAULT_WEIGHTS)}"
            )

    # -- scoring ---------------------------------------------------------------------------------------------
    def _weights(self) -> dict[str, float]:
        return {**DEFAULT_WEIGHTS, **{k: float(v) for k, v in (self.weights or {}).items()}}

    def score(self, doc: Document) -> list[UnitScore]:
        """Every sentence's probability of being an instruction to a model, with the cues behind it."""
        weights = self._weights()
        units = split_at_regions(doc.text, sentences(doc.text, doc.id))
        if not units:
            return []
        regions = _region_of(doc.text, units)
        found = [find_cues(u.text) for u in units]
        content = [len(u.text.split()) >= 3 for u in units]
        out_of_place = {
            shape: self._out_of_place([getattr(c.shape, shape) for c in found], content)
            for shape in ("imperative", "question", "second_person", "request")
        }
        drift = self._off_topic(units, content) if self.use_embeddings else np.zeros(len(units))
        foreign = self._language_shift(units, content)
        scores = []
        for i, (unit, cues) in enumerate(zip(units, found, strict=True)):
            strengths = _strengths(cues, {k: v[i] for k, v in out_of_place.items()}, regions[i] is not None)
            if drift[i] > 0:
                strengths["off_topic"] = float(drift[i])
            if foreign[i] > 0:
                strengths["language_shift"] = foreign[i]
            if _opens_payload(unit.text) and i + 1 < len(units) and regions[i + 1] not in (None, regions[i]):
                strengths["payload_header"] = 1.0
            logit = weights["bias"] + sum(weights[k] * v for k, v in strengths.items())
            evidence = dict(cues.strong)
            if cues.shape.verb:
                evidence["imperative"] = cues.shape.verb
            scores.append(UnitScore(unit, 1.0 / (1.0 + math.exp(-logit)), strengths, evidence, regions[i]))
        # A comment or code block is judged as one: its sentences take the region's highest probability.
        best: dict[int, float] = {}
        for s in scores:
            if s.region is not None:
                best[s.region] = max(best.get(s.region, 0.0), s.probability)
        for s in scores:
            if s.region is not None:
                s.probability = best[s.region]
        return scores

    def _out_of_place(self, has: list[bool], content: list[bool]) -> list[float]:
        """Per unit: 1 when its shape is absent from the rest of the document, 0 when it is the register.

        The register is the share of the other content units (outside the unit's own run) with the shape,
        smoothed towards half of `register_share` with the weight of one unit: a one-sentence document's
        register is unknown (factor 0.5), a long one's is measured.
        """
        n = len(has)
        out = [0.0] * n
        prior = self.register_share / 2
        i = 0
        while i < n:
            if not has[i]:
                i += 1
                continue
            j = i
            while j + 1 < n and has[j + 1]:
                j += 1
            run = j - i + 1
            others = [k for k in range(n) if (k < i or k > j) and content[k]]
            if run > self.max_block_units:
                factor = 0.0
            else:
                share = (sum(has[k] for k in others) + prior) / (len(others) + 1)
                factor = max(0.0, 1.0 - share / self.register_share)
            out[i : j + 1] = [factor] * run
            i = j + 1
        return out

    def _off_topic(self, units: list[Span], content: list[bool]) -> np.ndarray:
        from .embeddings import embed

        drift = np.zeros(len(units))
        idx = [k for k in range(len(units)) if content[k]]
        if len(idx) < self.min_topic_units + 1:
            return drift
        vectors = embed([units[k].text for k in idx])
        total = vectors.sum(axis=0)
        for row, k in enumerate(idx):
            rest = total - vectors[row]
            norm = float(np.linalg.norm(rest))
            cosine = float(vectors[row] @ rest / norm) if norm > 0 else 1.0
            span = max(self.off_topic_cosine - self.off_topic_full, 1e-6)
            drift[k] = min(1.0, max(0.0, (self.off_topic_cosine - cosine) / span))
        return drift

    def _language_shift(self, units: list[Span], content: list[bool]) -> list[float]:
        shares = [vocabulary_share(u.text) for u in units]
        measured = [share for (share, words), ok in zip(shares, content, strict=True) if ok and words >= 5]
        if len(measured) < self.min_topic_units + 1:
            return [0.0] * len(units)
        start = float(np.median(measured)) - self.language_shift
        return [min(1.0, max(0.0, (start - share) / 0.3)) if words >= 5 else 0.0 for share, words in shares]

    def prefetch(self, docs: Sequence[Document]) -> None:
        """Embed the sentences of many documents in large batches up front (the cache then serves `flag`)."""
        if not self.use_embeddings:
            return
        from .embeddings import embed

        texts = []
        for doc in docs:
            texts.extend(
                u.text for u in split_at_regions(doc.text, sentences(doc.text, doc.id)) if len(u.text.split()) >= 3
            )
        embed(list(dict.fromkeys(texts)))

    # -- flagging --------------------------------------------------------------------------------------------
    def flag(self, doc: Document) -> list[SpanFlag]:
        scores = self.score(doc)
        flagged = self._blocks(scores)
        flags = []
        for i, joined in sorted(flagged.items()):
            s = scores[i]
            flags.append(SpanFlag(s.span.start, s.span.end, self.name, round(s.probability, 4), _reason(s, joined)))
        # Whole regions go: a flagged sentence inside a comment or code block takes the block with it.
        regions = {scores[i].region for i in flagged if scores[i].region is not None}
        for match_start, match_end, region in _regions(doc.text):
            if region in regions:
                flags.append(SpanFlag(match_start, match_end, self.name, 1.0, "comment or code block around it"))
        return merge_adjacent(doc.text, flags)

    def _blocks(self, scores: Sequence[UnitScore]) -> dict[int, bool]:
        """Indices of quarantined units -> whether they joined a block (rather than crossing the threshold).

        From each unit over `threshold`, the block grows over neighbours that look like more of the same (at
        or over `block_threshold`, or with an instruction cue of strength >= 0.5 of their own: an imperative,
        "you", off topic...), over a header announcing it ("Note to AI assistants:"), over the payload
        after a unit ending in ":", and over up to `max_gap` units to another unit at or over `threshold`.
        """
        n = len(scores)
        flagged = {i: False for i, s in enumerate(scores) if self.crosses(s)}
        for seed in sorted(flagged):
            for step in (-1, 1):
                k = seed
                while 0 <= k + step < n:
                    nxt = k + step
                    header_before = step == -1 and _is_header(scores[nxt].span.text)
                    payload_after = step == 1 and _opens_payload(scores[k].span.text)
                    if self._joins(scores[nxt]) or header_before or payload_after:
                        flagged.setdefault(nxt, True)
                        k = nxt
                        continue
                    bridge = self._bridge(scores, k, step)
                    if not bridge:
                        break
                    for j in bridge:
                        flagged.setdefault(j, True)
                    k = bridge[-1]
        return flagged

    def _bridge(self, scores: Sequence[UnitScore], k: int, step: int) -> list[int]:
        """The units from k (exclusive) to the nearest unit at or over `threshold` within `max_gap` + 1 steps,
        or [] when there is none."""
        for gap in range(1, self.max_gap + 1):
            far = k + step * (gap + 1)
            if not 0 <= far < len(scores):
                return []
            if scores[far].probability >= self.threshold:
                return [k + step * j for j in range(1, gap + 2)]
        return []

    def crosses(self, score: UnitScore) -> bool:
        """Is this unit quarantined on its own (not only as part of a block)?"""
        if score.probability < self.threshold:
            return False
        return not self.require_evidence or has_evidence(score)

    def _joins(self, score: UnitScore) -> bool:
        if score.probability >= self.block_threshold:
            return True
        return any(strength >= 0.5 for name, strength in score.cues.items() if name != "hidden")


def has_evidence(score: UnitScore) -> bool:
    """Does the unit carry a cue that it is written to a model (EVIDENCE_CUES)?"""
    return any(name in EVIDENCE_CUES and strength > 0 for name, strength in score.cues.items())


def _strengths(cues: Cues, out_of_place: dict[str, float], hidden: bool) -> dict[str, float]:
    strengths = {name: 1.0 for name in cues.strong}
    shape = cues.shape
    if shape.imperative and out_of_place["imperative"] > 0:
        strengths["imperative"] = out_of_place["imperative"]
        if shape.verb in TASK_VERBS:
            strengths["task_verb"] = out_of_place["imperative"]
    if shape.question and out_of_place["question"] > 0:
        strengths["question"] = out_of_place["question"]
    if shape.second_person and out_of_place["second_person"] > 0:
        strengths["second_person"] = out_of_place["second_person"]
    if shape.request and out_of_place["request"] > 0:
        strengths["request"] = out_of_place["request"]
    if shape.url and (shape.imperative or shape.request or shape.second_person):
        strengths["url"] = 1.0
    if hidden:
        strengths["hidden"] = 1.0
    return strengths


def _regions(text: str) -> list[tuple[int, int, int]]:
    return [(m.start(), m.end(), k) for k, m in enumerate(_REGION.finditer(text))]


def split_at_regions(text: str, units: list[Span]) -> list[Span]:
    """Sentences cut where a comment or code block starts or ends, so no unit straddles a region's edge
    ("--> Next sentence." becomes "-->" and "Next sentence.")."""
    cuts = sorted({pos for start, end, _ in _regions(text) for pos in (start, end)})
    out = []
    for unit in units:
        inner = [c for c in cuts if unit.start < c < unit.end]
        for start, end in zip([unit.start, *inner], [*inner, unit.end], strict=True):
            piece = text[start:end]
            left = len(piece) - len(piece.lstrip())
            stripped = piece.strip()
            if stripped:
                out.append(Span(unit.doc_id, start + left, start + left + len(stripped), stripped, unit.kind))
    return out


def _region_of(text: str, units: list[Span]) -> list[int | None]:
    regions = _regions(text)
    out: list[int | None] = []
    for u in units:
        hit = next((k for start, end, k in regions if start < u.end and end > u.start), None)
        out.append(hit)
    return out


def _is_header(text: str) -> bool:
    """A short line that announces what follows: "Note to AI assistants:", "### Instruction:"."""
    return len(text.split()) <= 12 and bool(_HEADER_END.search(text))


def _opens_payload(text: str) -> bool:
    """A sentence ending in a colon announces what follows ("... use the following code:")."""
    return text.rstrip().endswith(":")


def _reason(score: UnitScore, joined: bool) -> str:
    parts = []
    for name, _ in sorted(score.cues.items(), key=lambda kv: -DEFAULT_WEIGHTS.get(kv[0], 0) * kv[1]):
        label = CUE_LABELS.get(name, name)
        evidence = score.evidence.get(name)
        parts.append(f"{label} {evidence!r}" if evidence else label)
    head = "joined to an instruction block" if joined else "instruction-like"
    return f"{head} (p={score.probability:.2f}): " + (", ".join(parts) or "no cue of its own")
