"""The generator interface every strategy implements, and the composed strategy built from components.

The strategy contract (checked for every registered strategy by tests/test_strategy_contract.py):

1. `__init__` only stores its keyword arguments under same-named attributes (`get_params()` returns them); no
   model is loaded, no file read, no random state drawn. `validate()` checks them, once, when the strategy is
   built (a bad parameter is a ConfigError before any document is read), and the components' with them.
2. `plan(doc, n, seed, fingerprint)` returns exactly `n` work items (fewer only when the document has fewer
   eligible targets, never more), with unique ids, without any LM call, and is deterministic: the same arguments
   give the same items in every process. Every item's `context` lies inside the document, and so does its
   `target`, when it has one.
3. `run(items, docs, lm)` returns exactly one `QARecord` per item, in order, kept or rejected, each carrying the
   item's id, document, target and context offsets, the strategy name, the model id, and every decision taken.
   Nothing is dropped silently: a pair a filter rejects comes back with `kept == False` and the reason.
4. `weight(doc)` is the document's share of a run's budget (default: its length).
5. Randomness only from seeds passed in (`robustqa.types.derive_seed`), never from global state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from .components import (
    Answerer,
    Answers,
    Candidate,
    Component,
    QAFilter,
    QuestionWriter,
    Selector,
    SpanFilter,
    SpanFlag,
)
from .context import masked_ranges, render_context
from .errors import ConfigError
from .lm.base import LM
from .params import Configurable
from .response import RESPONSES, answer_with_evidence
from .types import Decision, Document, QARecord, WorkItem, derive_seed, span_dict


class Strategy(Configurable):
    """Base class of generation strategies. See the module docstring for the contract."""

    name = "strategy"

    def weight(self, doc: Document) -> float:
        return float(len(doc.text))

    def check_backend(self, lm: LM) -> None:
        """Fail before any work when the strategy cannot run on `lm` (a component needs scoring, say)."""

    def plan(self, doc: Document, n: int, seed: int, fingerprint: str = "") -> list[WorkItem]:
        raise NotImplementedError

    def run(self, items: Sequence[WorkItem], docs: Mapping[str, Document], lm: LM) -> list[QARecord]:
        raise NotImplementedError


class ComposedStrategy(Strategy):
    """A strategy made of components: span filters, a selector, a question writer, an answerer and QA filters.

    LM calls per planned pair: one for the question, one for the answer (its k samples come from one request),
    plus whatever the QA filters spend (the verifier's round trip is one more).
    """

    def __init__(
        self,
        selector: Selector,
        question_writer: QuestionWriter,
        answerer: Answerer,
        span_filters: Sequence[SpanFilter] = (),
        filters: Sequence[QAFilter] = (),
        name: str = "composed",
        attempts: int = 1,
        response: str = "answer",
    ) -> None:
        self.selector = selector
        self.question_writer = question_writer
        self.answerer = answerer
        self.span_filters = span_filters
        self.filters = filters
        self.name = name
        self.attempts = attempts
        self.response = response

    def weight(self, doc: Document) -> float:
        return self.selector.weight(doc)

    def components(self) -> list[Component]:
        return [*self.span_filters, self.selector, self.question_writer, self.answerer, *self.filters]

    def validate(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"attempts must be >= 1, got {self.attempts}")
        if self.response not in RESPONSES:
            raise ConfigError(f"response must be one of {', '.join(RESPONSES)}, got {self.response!r}")
        for component in self.components():
            component.validate()

    def check_backend(self, lm: LM) -> None:
        for component in self.components():
            component.check_backend(lm)

    def flag_spans(self, doc: Document) -> list[SpanFlag]:
        flags: list[SpanFlag] = []
        for span_filter in self.span_filters:
            flags.extend(span_filter.flag(doc))
        return sorted(flags, key=lambda f: (f.start, f.end))

    def plan(self, doc: Document, n: int, seed: int, fingerprint: str = "") -> list[WorkItem]:
        flags = self.flag_spans(doc) if self.span_filters else []
        items = self.selector.select(doc, n, seed, flags, fingerprint or self.fingerprint())
        for item in items:
            # Flags are kept on the item so the answerer never sees them and the record says what was cut.
            item.masked = tuple(masked_ranges(flags, *item.context))
        return items

    def run(self, items: Sequence[WorkItem], docs: Mapping[str, Document], lm: LM) -> list[QARecord]:
        """One record per item. With `attempts` > 1 a rejected pair is tried again on the SAME target with a
        derived seed (the fixed target is the point: retrying must not drift to easier spans); the record is
        the first kept attempt or the last one, and the earlier attempts ride along in its meta."""
        items = list(items)
        final: list[Candidate | None] = [None] * len(items)
        earlier: list[list[dict]] = [[] for _ in items]
        pending = list(range(len(items)))
        for attempt in range(self.attempts):
            tries = [items[i] if attempt == 0 else _retry(items[i], attempt) for i in pending]
            still = []
            for i, cand in zip(pending, self._attempt(tries, docs, lm), strict=True):
                if cand.kept or attempt == self.attempts - 1:
                    final[i] = cand
                else:
                    earlier[i].append(_attempt_summary(cand, attempt))
                    still.append(i)
            pending = still
            if not pending:
                break
        records = []
        for cand, history in zip(final, earlier, strict=True):
            assert cand is not None
            if self.attempts > 1:
                cand.meta["attempt"] = len(history)
                cand.meta["earlier_attempts"] = history
            records.append(self._record(cand, lm, docs))
        return records

    def _attempt(self, items: list[WorkItem], docs: Mapping[str, Document], lm: LM) -> list[Candidate]:
        """One pass of question -> answer -> filters over `items`."""
        # 1. What the models see: the item's context with flagged spans cut out.
        contexts = [render_context(docs[it.doc_id], *it.context, [(m.start, m.end) for m in it.masked]) for it in items]
        # 2. One question per item (with who wrote it, and the answer span it was written for, if any).
        written = self.question_writer.write_questions(items, contexts, docs, lm)
        questions = [q.text.strip() for q in written]
        # 3. Answers (k samples per item come back from one request; the first is the answer).
        has_question = [i for i, q in enumerate(questions) if q]
        answered: dict[int, Answers] = {}
        if has_question:
            answers = self.answerer.answer_questions(
                [items[i] for i in has_question],
                [questions[i] for i in has_question],
                [contexts[i] for i in has_question],
                docs,
                lm,
            )
            answered = dict(zip(has_question, answers, strict=True))
        candidates = []
        for i, item in enumerate(items):
            got = answered.get(i)
            samples = [s.strip() for s in got.samples] if got is not None else []
            cand = Candidate(
                item,
                contexts[i],
                questions[i],
                samples,
                samples[0] if samples else "",
                meta=dict(written[i].meta),
                question_source=written[i].source,
                planned=written[i].planned,
                question_raw=written[i].raw,
                answer_prompt=got.prompt if got is not None else None,
            )
            cand.decisions.extend(m.decision() for m in item.masked)
            cand.decisions.append(_format_decision(cand))
            candidates.append(cand)
        # 4. QA filters score, then keep or reject, in order; a rejected pair meets no later filter.
        for qa_filter in self.filters:
            alive = [c for c in candidates if c.kept]
            if not alive:
                break
            for cand, decision in zip(alive, qa_filter.judge(alive, docs, lm), strict=True):
                cand.decisions.append(decision)
        return candidates

    def _record(self, cand: Candidate, lm: LM, docs: Mapping[str, Document]) -> QARecord:
        item = cand.item
        meta = dict(item.meta)
        if cand.question_raw is not None:
            meta["question_raw"] = cand.question_raw
        if cand.answer_prompt is not None:  # teacher logprobs and the exports read it
            meta["answer_prompt"] = cand.answer_prompt
        meta.update(cand.meta)
        meta["item_seed"] = item.seed
        meta["index"] = item.index
        meta["question_source"] = cand.question_source
        meta["answer_source"] = cand.answer_source
        if cand.planned is not None:
            meta["planned_answer"] = cand.planned.to_dict()
        if len(cand.samples) > 1:
            meta["samples"] = cand.samples
        response = self._response(cand, docs[item.doc_id])
        if response is not None:
            meta["evidence"] = {"start": item.target.start, "end": item.target.end}
        return QARecord(
            id=item.id,
            doc_id=item.doc_id,
            question=cand.question,
            answer=cand.answer,
            target=span_dict(item.target),
            context={"start": item.context[0], "end": item.context[1]},
            strategy=self.name,
            model=lm.model_id,
            seed=item.seed if item.run_seed is None else item.run_seed,
            fingerprint=self.fingerprint() if item.fingerprint is None else item.fingerprint,
            decisions=cand.decisions,
            meta=meta,
            answer_span=None if cand.answer_span is None else cand.answer_span.to_dict(),
            response=response,
        )

    def _response(self, cand: Candidate, doc: Document) -> str | None:
        """With response "answer+evidence": the answer, then its target as the models saw it (flagged spans cut)."""
        target = cand.item.target
        if self.response != "answer+evidence" or target is None:
            return None
        evidence = render_context(doc, target.start, target.end, [(m.start, m.end) for m in cand.item.masked])
        return answer_with_evidence(cand.answer, evidence)


def _retry(item: WorkItem, attempt: int) -> WorkItem:
    """The same item (id, target, context) with a seed derived for this attempt."""
    return replace(item, seed=derive_seed(item.seed, "attempt", attempt), meta=dict(item.meta))


def _attempt_summary(cand: Candidate, attempt: int) -> dict:
    return {
        "attempt": attempt,
        "seed": cand.item.seed,
        "question": cand.question,
        "answer": cand.answer,
        "decisions": [d.to_dict() for d in cand.decisions],
        "question_source": cand.question_source,
        "answer_source": cand.answer_source,
    }


def _format_decision(cand: Candidate) -> Decision:
    """Empty output is real model output, never patched: the pair is rejected and says why."""
    if not cand.question:
        why = cand.meta.get("template")  # a question writer that could not template says why
        return Decision("format", 0.0, False, f"empty question (template {why})" if why else "empty question")
    if not cand.answer:
        return Decision("format", 0.0, False, "empty answer")
    return Decision("format", 1.0, True, "non-empty question and answer")
