"""Instruction-likeness of sentences: a pluggable batched scorer `(list[str]) -> list[float]` in [0, 1].

The audit uses robustqa's instruction-span scorer when one is handed to it (or named as `module:callable`);
the built-in `heuristic_instruction_scores` below is only the fallback: explicit phrases that address an AI
model or override its instructions. It misses plain task-irrelevant instructions ("Write a poem about ..."),
which a learnt scorer catches, and it scores ordinary imperative prose ("Click the button") at 0 on purpose.

"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence

from robustqa.errors import ConfigError

InstructionScorer = Callable[[list[str]], Sequence[float]]

# (pattern, weight, trigger words): a pattern is only tried on text containing one of its trigger words
# (lower case), which keeps scoring a large corpus cheap. The score is the weights' sum over matched patterns,
# capped at 1.
_PATTERNS: list[tuple[re.Pattern[str], float, tuple[str, ...]]] = [
    (re.compile(p, re.I), w, triggers)
    for p, w, triggers in [
        (
            r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|earlier|all|any|your)\b.{0,30}"
            r"\b(instructions?|prompts?|directions?|rules|guidelines|context)\b",
            1.0,
            ("ignore", "disregard", "forget", "override"),
        ),
        (
            r"\b(note|message|instructions?|reminder)s?\s+(to|for)\s+(the\s+)?(ai|assistants?|llms?|chatbots?|"
            r"language\s+models?|models?|bots?)\b",
            1.0,
            ("note", "message", "instruction", "reminder"),
        ),
        (
            r"\b(ai|llm|assistant|chatbot|language model)s?\b\s*(reading|processing|summari[sz]ing)\s+this",
            1.0,
            ("reading", "processing", "summari"),
        ),
        (
            r"(<\|im_start\|>|<\|system\|>|\[/?INST\]|<</?SYS>>|^\s*#{2,}\s*(system|instruction)s?\b)",
            1.0,
            ("<|", "inst]", "<<sys", "<</sys", "##"),
        ),
        (r"^\s*(system|assistant)\s*:", 0.8, ("system", "assistant")),
        (
            r"\b(new|updated|additional|secret|hidden)\s+(instructions?|directives?)\b",
            0.4,
            ("instruction", "directive"),
        ),
        (r"\bsystem\s+prompt\b", 0.4, ("prompt",)),
        (
            r"\b(in|to|at the end of|at the start of)\s+your\s+(response|answer|reply|output|summary)\b",
            0.6,
            ("your",),
        ),
        (
            r"\b(do not|don't|never)\s+(tell|inform|mention|reveal|disclose)\b.{0,30}\b(the\s+)?user\b",
            0.8,
            ("user",),
        ),
        (
            r"\byou\s+(must|should|will|are\s+required\s+to)\s+(now\s+)?(respond|reply|answer|output|say|print|"
            r"include|write|ignore|only)\b",
            0.6,
            ("you",),
        ),
        (r"\b(respond|reply|answer)\s+(only\s+)?(with|in)\b", 0.3, ("respond", "reply", "answer")),
        (r"\bfrom\s+now\s+on\b", 0.3, ("now",)),
        (r"!\[[^\]]*\]\(https?://", 0.6, ("![",)),
        (r"\bas\s+an?\s+(ai|language\s+model)\b", 0.4, ("as a",)),
    ]
]


_ANY_TRIGGER = re.compile("|".join(re.escape(t) for _, _, triggers in _PATTERNS for t in triggers))


def heuristic_instruction_scores(texts: list[str]) -> list[float]:
    """Score each text by explicit AI-directed instruction phrases (0 = none, 1 = unmistakable)."""
    scores = []
    for text in texts:
        lower = text.lower()
        if not _ANY_TRIGGER.search(lower):
            scores.append(0.0)
            continue
        total = sum(
            weight
            for pattern, weight, triggers in _PATTERNS
            if any(t in lower for t in triggers) and pattern.search(text)
        )
        scores.append(round(min(1.0, total), 6))
    return scores


def load_scorer(spec: str) -> InstructionScorer:
    """Import a scorer named `package.module:callable` (a function, or a class built with no arguments whose
    instances are callable or have a `score` method)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"instruction scorer must be 'module:callable', got {spec!r}")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load instruction scorer {spec!r}: {exc}") from None
    if isinstance(obj, type):
        obj = obj()
    if hasattr(obj, "score") and callable(obj.score):
        return obj.score
    if not callable(obj):
        raise ConfigError(f"instruction scorer {spec!r} is not callable")
    return obj


def score_all(scorer: InstructionScorer, texts: list[str], batch_size: int = 2048) -> list[float]:
    """Run a scorer over many texts in batches, checking that it returns one number per text."""
    out: list[float] = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        scores = list(scorer(batch))
        if len(scores) != len(batch):
            raise ConfigError(f"instruction scorer returned {len(scores)} scores for {len(batch)} texts")
        out.extend(float(s) for s in scores)
    return out
