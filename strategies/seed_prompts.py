"""Naive self-study's seed prompts (Cartridges' "model call A" asks for the user's message with one of them).

The types are Cartridges' (structuring, summarization, question, use case, creative, generic) and, as there,
each type varies within itself: structuring picks one of six data formats and one of two message templates,
summarization one of two variants, question one of three; use case, creative and generic have one text each.
The texts are robustqa's own wording of the same requests. `draw` picks a variant from the item's seed, so a
plan is deterministic; the record carries the type (`meta.seed_prompt`), the variant (`meta.seed_prompt_variant`)
and the text the model saw (`meta.seed_prompt_text`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from robustqa.components import QuestionWriter
from robustqa.lm.base import LM, ChatRequest
from robustqa.types import Document, WorkItem

DATA_FORMATS = ("JSON", "YAML", "TOML", "INI", "XML", "plain text")

_STRUCTURING_TEMPLATES = (
    "Could you organise what {{part}} of {{document}} says about {{a specific topic}} as {fmt}? Keep every exact "
    "detail: dates, times, names and numbers.",
    "Could you organise the information in {{part}} of {{document}} as {fmt}? Keep every exact detail: dates, "
    "times, names and numbers.",
)
_STRUCTURING = (
    "Write one chat message that asks an AI assistant to organise information from the text above as {fmt}. "
    "Reply with the message alone and nothing else. The message must make clear which part of which document it "
    "means. It may follow this pattern, with the braces filled in from the text:\n\n'{template}'"
)
_SUMMARIZATION = (
    "Write one chat message that asks an AI assistant to summarise a part of the text above. Be explicit about "
    "which part is meant, and name the details (ids, names, titles, dates and so on) that pin it down.",
    "Write one chat message that asks an AI assistant to summarise one section. Say clearly which section it is "
    "and which document it comes from.",
)
_QUESTION = (
    "Write a question that tests whether an AI assistant knows the information in the text above. Put in the "
    "details (ids, names, titles, dates and so on) that make clear what is asked. Reply with the question alone, "
    "without any other text or explanation.",
    "Write a message that tests whether an AI assistant knows the information in the text above. Put enough "
    "details (ids, names, titles, dates and so on) into the question that it can be answered without seeing the "
    "text. Reply with the question alone, without any other text or explanation.",
    "You are quizzing someone on the text above. Write one question about the passage shown, with the details "
    "(ids, names, titles, dates and so on) that make clear what is asked. Reply with the question only.",
)
_USE_CASE = (
    "You are preparing training data that teaches a language model the information in the text above. Think of "
    "practical, real-world tasks someone could accomplish with this knowledge, where they apply it rather than "
    "merely recall it. Then write one question or request such a person, with the text at hand, might send while "
    "working towards that goal. Reply with the question alone, without any other text or explanation."
)
_CREATIVE = (
    "You are starting a creative conversation inspired by the text above. Write the question you would open it "
    "with for your partner. Reply with the question only, nothing else."
)
_GENERIC = (
    "Write one chat message that opens a conversation about the information in the text above: a question about "
    "it or a request."
)

VARIANTS: dict[str, tuple[str, ...]] = {
    "structuring": tuple(
        f"{t}/{fmt}" for t in range(len(_STRUCTURING_TEMPLATES)) for fmt in DATA_FORMATS
    ),  # ids "TEMPLATE/FORMAT"
    "summarization": tuple(str(i) for i in range(len(_SUMMARIZATION))),
    "question": tuple(str(i) for i in range(len(_QUESTION))),
    "use_case": ("0",),
    "creative": ("0",),
    "generic": ("0",),
}
SEED_PROMPT_TYPES: tuple[str, ...] = tuple(VARIANTS)


def seed_prompt_text(kind: str, variant: str) -> str:
    """The text of one variant of a seed-prompt type."""
    if kind == "structuring":
        template, fmt = variant.split("/", 1)
        return _STRUCTURING.format(fmt=fmt, template=_STRUCTURING_TEMPLATES[int(template)].format(fmt=fmt))
    texts = {
        "summarization": _SUMMARIZATION,
        "question": _QUESTION,
        "use_case": (_USE_CASE,),
        "creative": (_CREATIVE,),
        "generic": (_GENERIC,),
    }[kind]
    return texts[int(variant)]


def draw(kinds: Sequence[str], rng: random.Random) -> tuple[str, str, str]:
    """(type, variant, text): a type uniformly from `kinds`, then one of its variants uniformly (for
    structuring: the format, then the template, both uniform, as Cartridges draws them)."""
    kind = rng.choice(list(kinds))
    if kind == "structuring":
        fmt = rng.choice(DATA_FORMATS)
        variant = f"{rng.randrange(len(_STRUCTURING_TEMPLATES))}/{fmt}"
    else:
        variant = rng.choice(VARIANTS[kind])
    return kind, variant, seed_prompt_text(kind, variant)


class SeedPromptWriter(QuestionWriter):
    """Model call A as a component: system = the chunk under `system_prompt`, user = the item's seed prompt
    (`meta.seed_prompt_text`, else the type's first variant); the reply becomes the question."""

    name = "seed_prompt"

    def __init__(
        self,
        temperature: float = 0.6,
        max_tokens: int = 512,
        system_prompt: str = "You are in a conversation about the following information.\n\n<info>\n{context}\n</info>",
    ) -> None:
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.system_prompt = system_prompt

    def write(
        self, items: Sequence[WorkItem], contexts: Sequence[str], docs: Mapping[str, Document], lm: LM
    ) -> list[str]:
        requests = [
            ChatRequest.of(
                [
                    {"role": "system", "content": self.system_prompt.format(context=ctx)},
                    {"role": "user", "content": _text(item)},
                ],
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                seed=item.seed,
            )
            for item, ctx in zip(items, contexts)
        ]
        return [c.texts[0] for c in lm.generate(requests)]


def _text(item: WorkItem) -> str:
    text = item.meta.get("seed_prompt_text")
    if isinstance(text, str):
        return text
    kind = item.meta["seed_prompt"]
    return seed_prompt_text(kind, VARIANTS[kind][0])
