"""The parts a strategy is composed of: span filters, a selector, a question writer, an answerer, QA filters.

Data flows one way: document -> spans -> span flags (boilerplate, instruction-like) -> work items (what to ask
about) -> questions -> answers -> QA filters (score, then keep or reject) -> records.

Every component follows the constructor contract of `robustqa.params.Configurable`: `__init__` only stores its
keyword arguments; segmentation, model calls and scoring happen in the methods below. Every method is batched: it
takes the whole batch of items so LM backends can batch and parallelise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .lm.base import LM
from .params import Configurable
from .types import AnswerSpan, Decision, Document, SpanFlag, WorkItem


@dataclass
class WrittenQuestion:
    """A question writer's output for one item: the question, who wrote it (`model` or `template`), the answer
    span it was written for (answer-aware writers), and what the writer wants recorded."""

    text: str
    source: str = "model"
    planned: AnswerSpan | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # The writer's raw output when the question was parsed out of it (recorded as `meta.question_raw`).
    raw: str | None = None


@dataclass
class Answers:
    """An answerer's output for one item: its samples (the first is the answer) and the prompt they were
    answered with (`{"system": ..., "chat_template_kwargs": ...}`), which the record carries as
    `meta.answer_prompt` so teacher logprobs and exports read data, not code."""

    samples: list[str]
    prompt: dict[str, Any] | None = None


@dataclass
class Candidate:
    """A QA pair under judgement. Filters may read everything and may replace `answer` (e.g. by a majority);
    one that replaces it by a span of the document sets `answer_span` and `answer_source` and says so."""

    item: WorkItem
    context: str
    question: str
    samples: list[str]
    answer: str
    decisions: list[Decision] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    question_source: str = "model"
    planned: AnswerSpan | None = None
    answer_source: str = "abstractive"
    answer_span: AnswerSpan | None = None
    question_raw: str | None = None
    answer_prompt: dict[str, Any] | None = None

    @property
    def kept(self) -> bool:
        return all(d.kept for d in self.decisions)


class Component(Configurable):
    """What every component may add to the constructor contract."""

    def check_backend(self, lm: LM) -> None:
        """Fail at start-up (before any output is written) when this component cannot work with `lm`, e.g.
        because it needs scoring (`robustqa.lm.base.require_scoring`). Default: any backend will do."""


class SpanFilter(Component):
    """Flags spans of a document before any question is asked (sanitiser, instruction-span filter)."""

    name = "span_filter"

    def flag(self, doc: Document) -> list[SpanFlag]:
        raise NotImplementedError


class Selector(Component):
    """Decides what to ask about: plans `n` work items for a document, without any model call.

    `blocked` are the flagged spans: a selector never targets them. Items must be deterministic in
    (doc, n, seed) and their ids unique: `robustqa.types.stable_hash(fingerprint, seed, doc.id, index)` is
    the usual id.
    """

    name = "selector"

    def select(self, doc: Document, n: int, seed: int, blocked: Sequence[SpanFlag], fingerprint: str) -> list[WorkItem]:
        raise NotImplementedError

    def weight(self, doc: Document) -> float:
        """Share of the run's budget this document gets, relative to others (default: its length)."""
        return float(len(doc.text))


class QuestionWriter(Component):
    """Writes one question (the user turn) per item from the item's rendered context. Writers that say more
    than the text (its source, the answer it was written for) override `write_questions`."""

    name = "question_writer"

    def write_questions(
        self, items: Sequence[WorkItem], contexts: Sequence[str], docs: Mapping[str, Document], lm: LM
    ) -> list[WrittenQuestion]:
        return [WrittenQuestion(q) for q in self.write(items, contexts, docs, lm)]

    def write(
        self, items: Sequence[WorkItem], contexts: Sequence[str], docs: Mapping[str, Document], lm: LM
    ) -> list[str]:
        if type(self).write_questions is QuestionWriter.write_questions:
            raise NotImplementedError
        return [q.text for q in self.write_questions(items, contexts, docs, lm)]


class Answerer(Component):
    """Answers each question from its context. `answer` returns the samples per item (the first is the answer);
    answerers that record the prompt they answered with override `answer_questions`."""

    name = "answerer"

    def answer_questions(
        self,
        items: Sequence[WorkItem],
        questions: Sequence[str],
        contexts: Sequence[str],
        docs: Mapping[str, Document],
        lm: LM,
    ) -> list[Answers]:
        return [Answers(list(s)) for s in self.answer(items, questions, contexts, docs, lm)]

    def answer(
        self,
        items: Sequence[WorkItem],
        questions: Sequence[str],
        contexts: Sequence[str],
        docs: Mapping[str, Document],
        lm: LM,
    ) -> list[list[str]]:
        if type(self).answer_questions is Answerer.answer_questions:
            raise NotImplementedError
        return [a.samples for a in self.answer_questions(items, questions, contexts, docs, lm)]


class QAFilter(Component):
    """Scores candidate QA pairs, then keeps or rejects each: one Decision per candidate, in order.

    Only candidates still kept reach a filter. A filter may replace `candidate.answer` (the consistency filter keeps
    the majority answer) and must say so in its Decision's reason.
    """

    name = "qa_filter"

    def judge(self, candidates: Sequence[Candidate], docs: Mapping[str, Document], lm: LM) -> list[Decision]:
        raise NotImplementedError
