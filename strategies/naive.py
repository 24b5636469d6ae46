"""`naive`: a faithful re-implementation of the Cartridges self-study baseline (SelfStudySynthesizer).

Per pair: (1) a random token window of the document (min/max chunk size) and a random seed-prompt type;
(2) model call A, with the window as system context, writes the user message (temperature 0.6);
(3) model call B, with the same window as system context, answers it (temperature 0). No filters, no target span:
the record's `target` is null and `context` holds the window's offsets. 2 LM calls per pair.
"""

from __future__ import annotations

from collections.abc import Sequence

from robustqa.strategy import ComposedStrategy

from .context_answerer import ContextAnswerer
from .seed_prompts import SEED_PROMPT_TYPES, SeedPromptWriter
from .token_window import TokenWindowSelector


def make_naive(
    min_tokens: int = 512,
    max_tokens: int = 1024,
    seed_prompts: Sequence[str] = SEED_PROMPT_TYPES,
    temperature_a: float = 0.6,
    temperature_b: float = 0.0,
    max_tokens_a: int = 128,
    max_tokens_b: int = 256,
    tokenizer: str | None = None,
) -> ComposedStrategy:
    """Cartridges' knobs: chunk sizes, seed-prompt types, temperatures of calls A and B, and token limits."""
    return ComposedStrategy(
        selector=TokenWindowSelector(min_tokens, max_tokens, tuple(seed_prompts), tokenizer),
        question_writer=SeedPromptWriter(temperature=temperature_a, max_tokens=max_tokens_a),
        answerer=ContextAnswerer(temperature=temperature_b, max_tokens=max_tokens_b),
        name="naive",
    )
