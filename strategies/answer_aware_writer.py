"""`answer_aware` question writer: choose the answer first, then ask the teacher for a question it answers.

After PAQ (answer extraction -> answer-aware question generation -> round-trip filtering): a small model cannot
be trusted to find something worth asking and to ask it, but shown one sentence and one short span of it, with a
few worked examples, it writes usable questions far more often. Per item:

1. The planned answer: a seeded pick among the target's candidate spans, specific facts first, another one on
   each later round over the same target (`answer_spans.candidate_spans`, `choose_answer`). No LM call.
2. The teacher writes a question for it (greedy; a later attempt plans the next answer span of the target, or
   samples with a derived seed when there is no other). With
   `prompt_style: cloze` (the default) it sees the sentence with the answer blanked out and the kind of the
   blank, and turns that into a question (after the cloze translation of Lewis et al., 2019): a 135M teacher
   shown the answer itself mostly repeats it in the question or asks about something else. With `answer`, it
   sees the whole sentence and the answer.
3. Every question passes `question_checks` (a question, about the target, not containing its answer, no
   invented specifics, no near-duplicate of an earlier question on the document in the batch).
4. Round trip, where the backend can score: the teacher answers its own question by scoring the target's
   candidate spans that the question leaves open and that are of the kind it asks for (`answer_types`), with the
   target sentence in context. The planned span must rank first, by `min_lead` nats, else the question is asked
   again; with
   `retarget_margin`, a question that asks for another span keeps that span when the teacher clearly prefers it.
   With `calibrate`, the ranking is by how much the question raises each span's log-probability over a
   content-free question ("N/A"; contextual calibration, Zhao et al., 2021): a weak scorer that prefers one
   span whatever it is asked passes no question on that preference alone.
5. After `attempts` failed tries, a template question built from the sentence and the planned answer stands in
   (`question_templates`), when `templates` is on; else the question is "" and the pair is rejected with the
   reasons.
LM calls: one generation request per attempt, plus one scoring batch of (candidates + 1) continuations sharing
one prompt per checked question (twice that with `calibrate`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from robustqa.components import QuestionWriter, WrittenQuestion
from robustqa.errors import ConfigError
from robustqa.lm.base import LM, ChatRequest, ScoreRequest, require_scoring
from robustqa.types import AnswerSpan, Document, Span, WorkItem, derive_seed

from .answer_spans import candidate_spans, choose_answer
from .question_checks import QuestionChecks, contains_answer
from .question_fidelity import closeness, fidelity_failure
from .question_parsing import parse_question
from .question_templates import BLANK, blanked_sentence, can_template, template_question

SYSTEM_PROMPT = "You write one short quiz question. The given answer must answer it. Reply with the question only."
CLOZE_SYSTEM_PROMPT = (
    "You turn a sentence with a blank into one short question whose answer is the blank. Reply with the question only."
)
# Worked examples written for robustqa (not from any benchmark): (sentence, answer, question, kind of answer).
# Each costs ~50 prompt tokens per request, so there are few.
EXAMPLES = (
    (
        "The bridge over the Tamar was opened by Queen Victoria in 1859 after seven years of work.",
        "1859",
        "In what year was the bridge over the Tamar opened?",
        "date",
    ),
    (
        "Marie Curie shared the 1903 Nobel Prize in Physics with Pierre Curie and Henri Becquerel.",
        "Marie Curie",
        "Who shared the 1903 Nobel Prize in Physics with Pierre Curie and Henri Becquerel?",
        "name",
    ),
    (
        "The monks kept the oldest books of the abbey in a dry cellar to protect them from damp.",
        "in a dry cellar",
        "Where did the monks keep the oldest books of the abbey?",
        "phrase",
    ),
)
USER_PROMPT = "Text: {sentence}\nAnswer: {answer}\nWrite a question about the text whose answer is the answer."
CLOZE_PROMPT = (
    "Sentence: {blanked}\nThe blank is {kind}.\nWrite a question about the sentence whose answer is the blank."
)
PROMPT_STYLES = ("cloze", "answer")
# How the cloze prompt names the kind of the blank (`AnswerSpan.kind`).
KIND_WORDS = {
    "number": "a number",
    "date": "a date or year",
    "name": "a name",
    "phrase": "a few words",
    "clause": "part of a sentence",
    "sentence": "a sentence",
}
SCORE_PROMPT = "Answer the question with words copied from this text.\n\nText: {evidence}"
# The content-free question of contextual calibration (Zhao et al., 2021, "Calibrate before use").
CONTENT_FREE_QUESTION = "N/A"


class AnswerAwareQuestionWriter(QuestionWriter):
    """Parameters:
    attempts: teacher questions tried per item before the template; 0 asks the teacher for none (template
        questions only, for a teacher whose questions cannot be checked well enough; `templates` must be on).
    temperature: of the first attempt (0: greedy); later attempts sample at `retry_temperature`.
    max_tokens: length limit of a question.
    templates: fall back to a template question (else the pair is rejected).
    round_trip: "auto" (when the backend can score), "require" (fail at start-up without scoring) or "off".
    max_candidates: candidate spans per target, the whole sentence included.
    retarget_margin: None (the default) rejects a question whose round trip does not put the planned span first;
        a number of nats lets such a question keep the teacher's first choice (of the kind it asks for) as its
        answer when that span leads the next by the margin. Off by default: on the embedded 135M teacher, 10 of
        12 retargeted pairs read by hand answered the question wrongly (docs/strategies.md).
    min_lead: nats by which the planned span must lead the next open span of the asked kind in the round trip
        (1.0: e times as likely). A weak teacher's near tie says the question does not pin down its answer.
    replan: a later attempt writes a question for the target's next answer span (greedy), not the same one
        again (sampled); the template still asks about the first. A 135M teacher that fails on one span (a
        score, a long title) often writes a good question for another.
    min_overlap, duplicate_jaccard, min_words, max_words: the question checks.
    prompt_style: "cloze" (the sentence with its answer blanked, and the blank's kind) or "answer" (the sentence
        and the answer).
    samples: questions drawn per attempt: the greedy one and `samples - 1` sampled ones (one more request on the
        same prompt). Each is checked; the one closest to the blank that passes goes to the round trip first, the
        next on failure. A weak teacher's greedy question often fails where one of a few samples does not
        (overgenerate and filter, as PAQ does).
    fidelity: the checks that a question is about its planned span (`question_fidelity`: no words the sentence
        lacks, keeps a word next to the blank, no phrase said twice); context_window: the words next to the
        blank that count.
    calibrate: rank the round trip's spans by log p(span | question) - log p(span | a content-free question),
        not by log p(span | question): the question, not the scorer's prior for a span, must pick the planned
        span (one more scoring continuation per span). `min_lead` then applies to the calibrated scores.
    examples: worked (sentence, answer, question[, kind]) examples shown before the target.
    """

    name = "answer_aware"

    def __init__(
        self,
        attempts: int = 2,
        temperature: float = 0.0,
        retry_temperature: float = 0.7,
        max_tokens: int = 40,
        templates: bool = True,
        round_trip: str = "auto",
        max_candidates: int = 6,
        retarget_margin: float | None = None,
        min_lead: float = 1.0,
        replan: bool = True,
        min_overlap: int = 2,
        duplicate_jaccard: float = 0.8,
        min_words: int = 4,
        max_words: int = 40,
        prompt_style: str = "cloze",
        samples: int = 1,
        fidelity: bool = False,
        context_window: int = 2,
        calibrate: bool = False,
        examples: Sequence[Sequence[str]] = EXAMPLES,
        system_prompt: str | None = None,
        user_prompt: str | None = None,
        score_prompt: str = SCORE_PROMPT,
    ) -> None:
        self.attempts = attempts
        self.temperature = temperature
        self.retry_temperature = retry_temperature
        self.max_tokens = max_tokens
        self.templates = templates
        self.round_trip = round_trip
        self.max_candidates = max_candidates
        self.retarget_margin = retarget_margin
        self.min_lead = min_lead
        self.replan = replan
        self.min_overlap = min_overlap
        self.duplicate_jaccard = duplicate_jaccard
        self.min_words = min_words
        self.max_words = max_words
        self.prompt_style = prompt_style
        self.samples = samples
        self.fidelity = fidelity
        self.context_window = context_window
        self.calibrate = calibrate
        self.examples = examples
        cloze = prompt_style == "cloze"
        self.system_prompt = system_prompt or (CLOZE_SYSTEM_PROMPT if cloze else SYSTEM_PROMPT)
        self.user_prompt = user_prompt or (CLOZE_PROMPT if cloze else USER_PROMPT)
        self.score_prompt = score_prompt

    def validate(self) -> None:
        if self.attempts < 0:
            raise ConfigError(f"answer_aware attempts must be >= 0, got {self.attempts}")
        if self.attempts == 0 and not self.templates:
            raise ConfigError("answer_aware attempts 0 needs templates: every question would be empty")
        if self.prompt_style not in PROMPT_STYLES:
            raise ConfigError(f"answer_aware prompt_style must be cloze or answer, got {self.prompt_style!r}")
        if self.samples < 1:
            raise ConfigError(f"answer_aware samples must be >= 1, got {self.samples}")
        if self.context_window < 1:
            raise ConfigError(f"answer_aware context_window must be >= 1, got {self.context_window}")
        if self.round_trip not in ("auto", "require", "off"):
            raise ConfigError(f"answer_aware round_trip must be auto, require or off, got {self.round_trip!r}")

    def check_backend(self, lm: LM) -> None:
        if self.round_trip == "require":
            require_scoring(lm, "the answer_aware question writer (round_trip: require)")

    def write(
        self, items: Sequence[WorkItem], contexts: Sequence[str], docs: Mapping[str, Document], lm: LM
    ) -> list[str]:
        return [q.text for q in self.write_questions(items, contexts, docs, lm)]

    def write_questions(
        self, items: Sequence[WorkItem], contexts: Sequence[str], docs: Mapping[str, Document], lm: LM
    ) -> list[WrittenQuestion]:
        self.check_backend(lm)
        checks = QuestionChecks(self.min_words, self.max_words, self.min_overlap, self.duplicate_jaccard)
        scoring = self.round_trip != "off" and lm.can_score
        plans = [self._plan(item) for item in items]
        out: list[WrittenQuestion | None] = [None] * len(items)
        tries: list[list[dict]] = [[] for _ in items]
        accepted_by_doc: dict[str, list[str]] = {}
        pending = [i for i, plan in enumerate(plans) if plan is not None]
        for i, plan in enumerate(plans):
            if plan is None:
                out[i] = WrittenQuestion("", "model", None, {"question_checks": "no target to ask about"})
        current = list(plans)  # the plan of the attempt under way
        for attempt in range(self.attempts):
            if not pending:
                break
            # Greedy on the first attempt and on one about another answer than before; else sampled.
            greedy = [attempt == 0] * len(pending)
            if attempt and self.replan:
                for k, i in enumerate(pending):
                    candidates = current[i][1]
                    nxt = self._choose(items[i], candidates, attempt)
                    if all(nxt != t["planned"] for t in tries[i]):
                        current[i] = (nxt, candidates)
                        greedy[k] = True
            drawn = self._ask([items[i] for i in pending], [current[i] for i in pending], attempt, lm, greedy)
            # Every drawn question is checked; those that pass wait, best first, for the round trip.
            waiting: dict[int, list[dict]] = {}
            for i, raws in zip(pending, drawn, strict=True):
                item, (planned, _) = items[i], current[i]
                assert item.target is not None
                earlier = accepted_by_doc.get(item.doc_id, [])
                seen: set[str] = set()
                for sample, raw in enumerate(raws):
                    question = parse_question(raw, self.min_words, self.max_words, about=item.target.text)
                    failure = self._failure(checks, question, planned, item, contexts[i], earlier, scoring)
                    if failure is None and question in seen:
                        failure = "the same question as an earlier sample"
                    seen.add(question)
                    entry = {"raw": raw, "question": question, "planned": planned, "failure": failure}
                    if len(raws) > 1:
                        entry["sample"] = sample
                    tries[i].append(entry)
                    if failure is None:
                        waiting.setdefault(i, []).append(entry)
            for i, entries in waiting.items():  # closest to the blank first; ties keep the greedy draw first
                entries.sort(key=lambda e, i=i: -closeness(e["question"], items[i].target, current[i][0]))
            answers: dict[int, AnswerSpan] = {}
            chosen_entry: dict[int, dict] = {}
            if not scoring:
                for i, entries in waiting.items():
                    answers[i], chosen_entry[i] = current[i][0], entries[0]
            while scoring and waiting:
                batch = [(i, entries.pop(0)) for i, entries in waiting.items()]
                trips = self._round_trip([items[i] for i, _ in batch], [current[i] for i, _ in batch],
                                         [e["question"] for _, e in batch], lm)  # fmt: skip
                for (i, entry), trip in zip(batch, trips, strict=True):
                    entry["round_trip"] = trip.ranking
                    entry["round_trip_prompt"] = self.score_prompt
                    chosen, failure = trip.verdict(self.retarget_margin, self.min_lead)
                    entry["failure"] = failure
                    if chosen is not None:
                        answers[i], chosen_entry[i] = chosen, entry
                        if chosen != current[i][0]:
                            entry["retargeted"] = chosen.to_dict()
                waiting = {i: e for i, e in waiting.items() if e and i not in chosen_entry}
            for i, entry in chosen_entry.items():
                question = entry["question"]
                accepted_by_doc.setdefault(items[i].doc_id, []).append(question)
                round_trip = "measured" if scoring else "not measured"
                meta = {"question_attempts": _as_dicts(tries[i]), "round_trip": round_trip}
                out[i] = WrittenQuestion(question, "model", answers[i], meta)
            pending = [i for i in pending if out[i] is None]
        for i in pending:
            target = items[i].target
            assert target is not None
            # The template asks about the first plan (the most specific fact), or the first candidate after it
            # that leaves words of the sentence to ask with; a target with none gets no question (rejected).
            first, candidates = plans[i]
            planned = next((a for a in [first, *candidates] if can_template(target, a)), None)
            meta = {"question_attempts": _as_dicts(tries[i])}
            if self.templates and planned is not None:
                out[i] = WrittenQuestion(template_question(target, planned), "template", planned, meta)
            else:
                if self.templates:
                    meta["template"] = "none: every candidate answer leaves too few words of the sentence"
                out[i] = WrittenQuestion("", "model", first, meta)
        return [q for q in out if q is not None]

    # -- steps -----------------------------------------------------------------------------------------------
    def _plan(self, item: WorkItem) -> tuple[AnswerSpan, list[AnswerSpan]] | None:
        """The first attempt's answer span to write a question for, and the target's candidate spans."""
        if item.target is None:
            return None
        candidates = candidate_spans(item.target, self.max_candidates)
        return self._choose(item, candidates, 0), candidates

    def _choose(self, item: WorkItem, candidates: list[AnswerSpan], attempt: int) -> AnswerSpan:
        """Round r of a target takes the answers r * attempts, r * attempts + 1, ... of its seeded order, one per
        attempt when `replan` is on (else the r-th for every attempt)."""
        assert item.target is not None
        target_seed = derive_seed(item.doc_id, item.target.start, item.target.end, "answer")
        round_no = int(item.meta.get("round", 0))
        pick = round_no * max(self.attempts, 1) + attempt if self.replan else round_no
        return choose_answer(candidates, item.target.text, target_seed, pick)

    def _failure(self, checks, question, planned, item, context, earlier, scoring) -> str | None:
        """Why a drawn question cannot be used for its planned span (None when it passes)."""
        assert item.target is not None
        # With scoring, a question that says its planned answer may still ask for another span (the round trip).
        failure = checks.failure(question, "" if scoring else planned.text, item.target.text, context, earlier)
        if failure is None and BLANK in question:  # the cloze's blank copied: the question asks nothing
            failure = "copies the blank of the cloze prompt"
        if failure is None and self.fidelity:
            failure = fidelity_failure(question, item.target, planned, self.context_window)
        return failure

    def _ask(self, items: Sequence[WorkItem], plans, attempt: int, lm: LM, greedy: Sequence[bool]) -> list[list[str]]:
        """Per item, the questions drawn: one greedy where `greedy` says (else sampled with a seed derived from
        the attempt), then `samples - 1` sampled ones from one request on the same prompt."""
        shots = []
        for example in self.examples:
            sentence, answer, question = example[:3]
            kind = example[3] if len(example) > 3 else "phrase"
            start = sentence.index(answer)
            target = Span("example", 0, len(sentence), sentence)
            shown = self._prompt(target, AnswerSpan(start, start + len(answer), answer, kind))
            shots.append({"role": "user", "content": shown})
            shots.append({"role": "assistant", "content": question})
        requests, owners = [], []
        for k, (item, (planned, _), is_greedy) in enumerate(zip(items, plans, greedy, strict=True)):
            assert item.target is not None
            messages = [
                {"role": "system", "content": self.system_prompt},
                *shots,
                {"role": "user", "content": self._prompt(item.target, planned)},
            ]
            temperature = self.temperature if is_greedy else self.retry_temperature
            seed = item.seed if attempt == 0 else derive_seed(item.seed, "question", attempt)
            requests.append(ChatRequest.of(messages, temperature=temperature, max_tokens=self.max_tokens, seed=seed))
            owners.append(k)
            if self.samples > 1:
                extra = {"temperature": self.retry_temperature, "max_tokens": self.max_tokens, "n": self.samples - 1}
                seed = derive_seed(item.seed, "question samples", attempt)
                requests.append(ChatRequest.of(messages, seed=seed, **extra))
                owners.append(k)
        drawn: list[list[str]] = [[] for _ in items]
        for k, completion in zip(owners, lm.generate(requests), strict=True):
            drawn[k].extend(completion.texts)
        return drawn

    def _prompt(self, target: Span, answer: AnswerSpan) -> str:
        if self.prompt_style == "cloze":
            blanked = " ".join(blanked_sentence(target, answer).split())
            return self.user_prompt.format(blanked=blanked, kind=KIND_WORDS.get(answer.kind, "a few words"))
        return self.user_prompt.format(sentence=" ".join(target.text.split()), answer=answer.text)

    def _round_trip(self, items, plans, questions: Sequence[str], lm: LM) -> list[RoundTrip]:
        """Per question: the candidate spans of the kind it asks for that it leaves open, ranked by the teacher's
        log-probability as the answer with the target sentence in context (with `calibrate`, by how much the
        question raises it over a content-free question)."""
        requests, spans = [], []
        for item, (planned, candidates), question in zip(items, plans, questions, strict=True):
            # Only the kinds the question asks for can pass the verdict, so only they are scored.
            kinds = answer_types(question)
            options = [a for a in rank_options(planned, candidates, question) if a.kind in kinds]
            spans.append(options)
            asked = answer_messages(self.score_prompt, item.target.text, question)
            requests.extend(ScoreRequest.of(asked, a.text) for a in options)
            if self.calibrate:
                blank = answer_messages(self.score_prompt, item.target.text, CONTENT_FREE_QUESTION)
                requests.extend(ScoreRequest.of(blank, a.text) for a in options)
        scores = iter(lm.score(requests))
        out = []
        for (planned, _), options, question in zip(plans, spans, questions, strict=True):
            logprobs = [next(scores).logprob for _ in options]
            priors = [next(scores).logprob for _ in options] if self.calibrate else None
            out.append(RoundTrip.of(planned, question, options, logprobs, priors))
        return out


def _as_dicts(tries: list[dict]) -> list[dict]:
    """The attempts as the record stores them (planned spans as dicts)."""
    return [{**t, "planned": t["planned"].to_dict()} for t in tries]


@dataclass
class RoundTrip:
    """The teacher answering its own question by ranking the spans it leaves open (best first). `ranked` holds
    (score, span): the log-probability, or with `priors` the calibrated score (log-probability minus the span's
    log-probability after a content-free question)."""

    planned: AnswerSpan
    question: str
    ranked: list[tuple[float, AnswerSpan]]
    logprobs: dict[AnswerSpan, tuple[float, float | None]]  # span -> (log-probability, content-free prior)

    @classmethod
    def of(
        cls,
        planned: AnswerSpan,
        question: str,
        options: Sequence[AnswerSpan],
        logprobs: Sequence[float],
        priors: Sequence[float] | None = None,
    ) -> RoundTrip:
        pairs = list(zip(logprobs, priors if priors is not None else [None] * len(options), strict=True))
        scored = [(lp if prior is None else lp - prior, a) for (lp, prior), a in zip(pairs, options, strict=True)]
        ranked = sorted(scored, key=lambda x: -x[0])
        return cls(planned, question, ranked, dict(zip(options, pairs, strict=True)))

    @property
    def ranking(self) -> list[dict]:
        """Best first. `logprob` is always the log-probability with the question (the grounded answer reuses
        it); a calibrated ranking adds the content-free `prior` and the `calibrated` score it ranked by."""
        rows = []
        for score, a in self.ranked:
            lp, prior = self.logprobs[a]
            row = {**a.to_dict(), "logprob": round(lp, 3)}
            if prior is not None:
                row.update(prior=round(prior, 3), calibrated=round(score, 3))
            rows.append(row)
        return rows

    def verdict(self, margin: float | None, min_lead: float = 0.0) -> tuple[AnswerSpan | None, str | None]:
        """The answer the question gets, or why it gets none. The planned span when the teacher ranks it first
        among the spans of the kind the question asks for (`answer_types`), at least `min_lead` nats above the
        next of them, and the question does not say it;
        else the teacher's first choice of that kind, when it leads the next by `margin` nats (the question asks
        for another span than planned: retargeted). The teacher's ranking alone is weak evidence, so a retarget
        needs both the answer type and a clear lead."""
        fitting = [(lp, a) for lp, a in self.ranked if a.kind in answer_types(self.question)]
        if not fitting:
            return None, f"round trip: no open span of the kind the question asks for ({_kinds(self.question)})"
        top_lp, top = fitting[0]
        said = contains_answer(self.question, self.planned.text)
        lead = top_lp - fitting[1][0] if len(fitting) > 1 else float("inf")
        if top == self.planned and not said:
            if lead < min_lead:  # a near tie: the question does not tell its answer from another span
                return None, f"round trip: the planned answer leads {fitting[1][1].text!r} by {lead:.2f} < {min_lead}"
            return top, None
        if margin is None:
            why = "says its planned answer" if said else f"ranks the planned answer below {top.text!r}"
            return None, f"round trip: the question {why}"
        if lead >= margin:
            return top, None
        why = "says its planned answer" if said else f"ranks the planned answer below {top.text!r}"
        return None, f"round trip: the question {why}, and the teacher's first choice leads by {lead:.2f} < {margin}"


# Which kinds of span a question asks for, by its question word (after the answer-type heuristics of classic QA
# systems). A whole sentence answers no model-written question: the question would restate it.
_TYPED = (
    (re.compile(r"\b(who|whom|whose)\b|\bname of\b|\bwhat (?:is|was) (?:his|her|its|their) name\b", re.I), ("name",)),
    (re.compile(r"\bhow (many|much|long|old|far|large|big|high)\b|\b(number|percentage|amount|total) of\b", re.I),
     ("number",)),
    (re.compile(r"\bwhen\b|\bwhat (year|date|day|month|time)\b|\bin which year\b", re.I), ("date", "number")),
    (re.compile(r"\bwhere\b", re.I), ("name", "phrase")),
    (re.compile(r"\b(why|how)\b", re.I), ("phrase", "clause")),
)  # fmt: skip
_ANY = ("number", "date", "name", "phrase", "clause")


def answer_types(question: str) -> tuple[str, ...]:
    """The span kinds that can answer `question` (the first question word that says, else any but a sentence)."""
    for pattern, kinds in _TYPED:
        if pattern.search(question):
            return kinds
    return _ANY


def _kinds(question: str) -> str:
    return ", ".join(answer_types(question))


def rank_options(planned: AnswerSpan | None, candidates: Sequence[AnswerSpan], question: str) -> list[AnswerSpan]:
    """The spans the teacher chooses between: the candidates whose words the question does not already hold
    (an echo of the question is no answer), the planned span included when the question does not hold it."""
    options = [a for a in candidates if not contains_answer(question, a.text)]
    if planned is not None and planned not in options and not contains_answer(question, planned.text):
        options.insert(0, planned)
    return options


def answer_messages(prompt: str, evidence: str, question: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": prompt.format(evidence=" ".join(evidence.split()))},
        {"role": "user", "content": question},
    ]
