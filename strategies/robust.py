"""The robust strategies, built from the components (each usable alone, all composable in YAML).

- `stratified`: stratified fixed-target selector + targeted question writer + context answerer (greedy).
  LM calls per pair: 2 (question, answer).
- `robust`: sanitizer + instruction filter (span filters) -> stratified selector -> targeted question
  writer -> context answerer with k samples from one request -> consistency (majority answer) -> verifier
  (support in the target, round trip). LM calls per planned pair: 3 requests (question, answer with n=k,
  round trip); the verifier's round trip is only spent on pairs that passed consistency.

The same composition in a generate config:

    strategy: robust_by_hand
    selector: {name: stratified, unit: sentence, window: 2}
    question_writer: {name: targeted}
    answerer: {name: context, samples: 3, temperature: 0.7}
    span_filters: [{name: sanitizer}, {name: instruction}]
    filters: [{name: consistency}, {name: verifier}]
"""

from __future__ import annotations

from robustqa.strategy import ComposedStrategy

from .consistency import Consistency
from .context_answerer import ContextAnswerer
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
    question_temperature: float = 0.3,
    answer_temperature: float = 0.0,
    max_answer_tokens: int = 128,
    attempts: int = 1,
) -> ComposedStrategy:
    """Fixed-target stratified sampling without filters: the coverage fix alone."""
    return ComposedStrategy(
        selector=StratifiedSelector(
            unit=unit, window=window, position_buckets=position_buckets, min_target_words=min_target_words
        ),
        question_writer=TargetedQuestionWriter(temperature=question_temperature),
        answerer=ContextAnswerer(temperature=answer_temperature, max_tokens=max_answer_tokens),
        name="stratified",
        attempts=attempts,
    )


def make_robust(
    unit: str = "sentence",
    window: int = 2,
    position_buckets: int = 4,
    min_target_words: int = 5,
    question_temperature: float = 0.3,
    consistency_k: int = 3,
    answer_temperature: float = 0.7,
    max_answer_tokens: int = 128,
    min_agreement: float = 0.5,
    min_support: float = 0.5,
    round_trip: bool = True,
    use_embeddings: bool = True,
    instruction_threshold: float = 0.5,
    attempts: int = 1,
) -> ComposedStrategy:
    """The robust preset. `consistency_k` samples per answer (1 turns consistency into a no-op and answers
    greedily); `use_embeddings` switches MiniLM on for the instruction filter, verifier and consistency;
    `attempts` > 1 asks again on the same target when the filters reject a pair (LM calls per attempt as above)."""
    return ComposedStrategy(
        selector=StratifiedSelector(
            unit=unit, window=window, position_buckets=position_buckets, min_target_words=min_target_words
        ),
        question_writer=TargetedQuestionWriter(temperature=question_temperature),
        answerer=ContextAnswerer(
            temperature=answer_temperature if consistency_k > 1 else 0.0,
            max_tokens=max_answer_tokens,
            samples=consistency_k,
        ),
        span_filters=[
            Sanitizer(),
            InstructionFilter(threshold=instruction_threshold, use_embeddings=use_embeddings),
        ],
        filters=[
            Consistency(min_agreement=min_agreement, use_embeddings=use_embeddings),
            Verifier(min_support=min_support, semantic=use_embeddings, round_trip=round_trip),
        ],
        name="robust",
        attempts=attempts,
    )
