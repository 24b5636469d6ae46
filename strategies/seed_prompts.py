"""Naive self-study's question writer (Cartridges' "model call A"): a seed prompt asks the model to write the
user's message about a chunk it sees as system context.

The seed-prompt types are Cartridges' (structuring, summarization, question, use case, creative) plus a generic
one; the texts are robustqa's own. The output is used as it comes (whitespace stripped), as the baseline does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from robustqa.components import QuestionWriter
from robustqa.lm.base import LM, ChatRequest
from robustqa.types import Document, WorkItem

CONTEXT_SYSTEM_PROMPT = "You are working with the following excerpt of a document.\n\n<info>\n{context}\n</info>"

SEED_PROMPTS: dict[str, str] = {
    "structuring": (
        "Write one message that a user could send to an assistant, asking it to organise part of the excerpt "
        "above into a structured form (a list, a table or an outline). Name the specific topic so the request "
        "is unambiguous. Output only the message."
    ),
    "summarization": (
        "Write one message that a user could send to an assistant, asking it to summarise a specific part of "
        "the excerpt above. Say which part. Output only the message."
    ),
    "question": (
        "Write one question that tests knowledge of the excerpt above. Include the names, dates or other "
        "details needed to make clear what is asked. Output only the question."
    ),
    "use_case": (
        "Think of a realistic task where someone would need the information in the excerpt above, and write "
        "the message that person would send to an assistant. Output only the message."
    ),
    "creative": (
        "Write one imaginative message that a user could send to an assistant about the excerpt above, for "
        "example asking for a poem, a story or an analogy about a detail in it. Output only the message."
    ),
    "generic": "Write one message that a user could send to an assistant about the excerpt above. Output only "
    "the message.",
}

SEED_PROMPT_TYPES: tuple[str, ...] = tuple(SEED_PROMPTS)


class SeedPromptWriter(QuestionWriter):
    """Model call A: system = the chunk, user = the item's seed prompt; the reply becomes the question."""

    name = "seed_prompt"

    def __init__(
        self, temperature: float = 0.6, max_tokens: int = 128, system_prompt: str = CONTEXT_SYSTEM_PROMPT
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
                    {"role": "user", "content": SEED_PROMPTS[item.meta["seed_prompt"]]},
                ],
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                seed=item.seed,
            )
            for item, ctx in zip(items, contexts)
        ]
        return [c.texts[0] for c in lm.generate(requests)]
