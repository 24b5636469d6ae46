"""The robust strategies, built from the components (each usable alone, all composable in YAML).

- `stratified`: stratified fixed-target selector + targeted question writer + context answerer (greedy).
  LM calls per pair: 2 (question, answer).
- `robust`: sanitizer + instruction filter (span filters) -> stratified selector (the target sentence as
  context) -> answer-aware question writer (the answer span first, the teacher's question for it, checks, a
  scoring round trip, a template after `question_attempts`) -> context answerer -> grounded answer (the
  teacher's answer where it verifies, else a span of the target, with a likelihood check). Grounded pairs from
  any teacher; every record says where its question and answer came from. LM calls per planned pair: 1-2
  question requests, 1 answer request, and where the backend scores, 1-2 scoring batches of short continuations
  sharing one prompt. `answer_mode="abstractive"` is the composition before answer spans (targeted questions,
  consistency and the verifier reject what does not verify).

The same composition in a generate config:

    strategy: robust_by_hand
    selector: {name: stratified, unit: sentence, window: 0}
    question_writer: {name: answer_aware, attempts: 2}
    answerer: {name: context, max_tokens: 48}
    span_filters: [{name: sanitizer}, {name: instruction}]
    filters: [{name: grounded_answer}]
"""

from __future__ import annotations

from robustqa.errors import ConfigError
from robustqa.strategy import ComposedStrategy

from .answer_aware_writer import AnswerAwareQuestionWriter
from .consistency import Consistency
from .context_answerer import ContextAnswerer
from .grounded_answer import GroundedAnswer
from .instruction_filter import InstructionFilter
from .sanitizer import Sanitizer
from .stratified import StratifiedSelector
from .targeted_writer import TargetedQuestionWriter
from .verifier import Verifier


def make_stratified(
    unit: str = "sentence",
    window: int = 2,
    position_buckets: int = 4,
    min_target_words: int = 5,
    weight_by: str = "units",
    question_temperature: float = 0.3,
    answer_temperature: float = 0.0,
    max_answer_tokens: int = 128,
    attempts: int = 1,
) -> ComposedStrategy:
    """Fixed-target stratified sampling without filters: the coverage fix alone."""
    return ComposedStrategy(
        selector=StratifiedSelector(
            unit=unit,
            window=window,
            position_buckets=position_buckets,
            min_target_words=min_target_words,
            weight_by=weight_by,
        ),
        question_writer=TargetedQuestionWriter(temperature=question_temperature),
        answerer=ContextAnswerer(temperature=answer_temperature, max_tokens=max_answer_tokens),
        name="stratified",
        attempts=attempts,
    )


def make_robust(
    unit: str = "sentence",
    window: int = 0,
    position_buckets: int = 4,
    min_target_words: int = 5,
    weight_by: str = "units",
    answer_mode: str = "auto",
    question_writer: str = "answer_aware",
    question_attempts: int = 2,
    question_prompt: str = "cloze",
    question_samples: int = 1,
    question_fidelity: bool = False,
    question_calibrate: bool = False,
    templates: bool = True,
    question_temperature: float = 0.3,
    consistency_k: int = 1,
    answer_temperature: float = 0.7,
    max_answer_tokens: int = 48,
    min_agreement: float = 0.5,
    min_support: float = 0.5,
    round_trip: bool | None = None,
    scoring: str = "auto",
    min_snap: float = 0.6,
    min_pmi: float | None = 1.0,
    retarget_margin: float | None = None,
    min_lead: float = 1.0,
    use_embeddings: bool = True,
    instruction_threshold: float = 0.5,
    attempts: int = 1,
    response: str = "answer",
) -> ComposedStrategy:
    """The robust preset: grounded QA from any teacher.

    answer_mode: "auto" keeps the teacher's abstractive answer where it verifies and falls back to a span of the
        target (snapped, scored, planned) where it does not (`grounded_answer`); "abstractive" rejects what does
        not verify (the pre-fallback behaviour: few or no pairs from a weak teacher); "extractive" always answers
        with a span.
    question_writer: "answer_aware" (the answer span first, then the teacher's question for it, template
        fallback after `question_attempts`; 0: template questions only, no teacher question) or "targeted" (a
        question on the marked target sentence).
    question_prompt: what the answer-aware writer shows the teacher: "cloze" (the sentence with the answer
        blanked) or "answer" (the sentence and the answer).
    question_samples: questions the teacher draws per attempt (the greedy one and sampled ones), each checked,
        the closest passing one round-tripped first.
    question_fidelity: the checks that a model question is about its planned span (`question_fidelity`).
    question_calibrate: the round trip ranks spans by how much the question raises their log-probability over a
        content-free question (the answer-aware writer's `calibrate`).
    consistency_k: samples per answer (1 answers greedily); their agreement decides abstractive answers and
        snapped spans alike.
    round_trip: the verifier re-answers from the target (one more request per pair); default on only in
        "abstractive" mode. The answer-aware writer's own round trip (scoring) is `scoring`.
    retarget_margin, min_lead: see the answer-aware writer (a question must round-trip to its planned span, by
        `min_lead` nats over the next span of the kind it asks for).
    scoring: "auto" uses the backend's scoring when it has it (round trip of the questions, span choice, the
        likelihood check); "require" fails at start-up without it; "off" never scores.
    response: the assistant turn in `messages`: "answer" (the answer alone) or "answer+evidence" (the answer, then
        the target sentence it comes from, quoted; `robustqa.response`). `answer` and `answer_span` stay the bare
        answer either way.
    `use_embeddings` switches MiniLM on for the instruction filter, verifier and consistency; `attempts` > 1 asks
    again on the same target when the filters reject a pair."""
    if answer_mode not in ("auto", "abstractive", "extractive"):
        raise ConfigError(f"robust answer_mode must be auto, abstractive or extractive, got {answer_mode!r}")
    if question_writer not in ("answer_aware", "targeted"):
        raise ConfigError(f"robust question_writer must be answer_aware or targeted, got {question_writer!r}")
    consistency = Consistency(min_agreement=min_agreement, use_embeddings=use_embeddings)
    verifier = Verifier(
        min_support=min_support,
        semantic=use_embeddings,
        round_trip=(answer_mode == "abstractive") if round_trip is None else round_trip,
    )
    if answer_mode == "abstractive":
        filters: list = [consistency, verifier]
    else:
        filters = [
            GroundedAnswer(
                abstractive=answer_mode == "auto",
                consistency=consistency,
                verifier=verifier,
                min_snap=min_snap,
                min_agreement=min_agreement,
                scoring=scoring,
                min_pmi=min_pmi,
            )
        ]
    if question_writer == "answer_aware":
        writer = AnswerAwareQuestionWriter(
            attempts=question_attempts,
            templates=templates,
            round_trip=scoring,
            retry_temperature=0.7,
            retarget_margin=retarget_margin,
            min_lead=min_lead,
            prompt_style=question_prompt,
            samples=question_samples,
            fidelity=question_fidelity,
            calibrate=question_calibrate,
        )
    else:
        writer = TargetedQuestionWriter(temperature=question_temperature)
    return ComposedStrategy(
        selector=StratifiedSelector(
            unit=unit,
            window=window,
            position_buckets=position_buckets,
            min_target_words=min_target_words,
            weight_by=weight_by,
        ),
        question_writer=writer,
        answerer=ContextAnswerer(
            temperature=answer_temperature if consistency_k > 1 else 0.0,
            max_tokens=max_answer_tokens,
            samples=consistency_k,
        ),
        span_filters=[
            Sanitizer(),
            InstructionFilter(threshold=instruction_threshold, use_embeddings=use_embeddings),
        ],
        filters=filters,
        name="robust",
        attempts=attempts,
        response=response,
    )
