"""The answerer (Cartridges' "model call B"): the context as system prompt, the question as the user turn.

With `samples > 1` it asks for k answers in ONE request (n=k) at `temperature` > 0, for the consistency filter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from robustqa.components import Answerer, Answers
from robustqa.errors import ConfigError
from robustqa.lm.base import LM, ChatRequest
from robustqa.types import Document, WorkItem

ANSWER_SYSTEM_PROMPT = (
    "Please use the information in the following excerpt to answer the user.\n\n<info>\n{context}\n</info>"
)


class ContextAnswerer(Answerer):
    name = "context"

    def __init__(
        self,
        temperature: float = 0.0,
        max_tokens: int = 256,
        samples: int = 1,
        system_prompt: str = ANSWER_SYSTEM_PROMPT,
    ) -> None:
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.samples = samples
        self.system_prompt = system_prompt

    def validate(self) -> None:
        if self.samples < 1:
            raise ConfigError(f"answerer samples must be >= 1, got {self.samples}")
        if self.samples > 1 and self.temperature <= 0:
            raise ConfigError("answerer samples > 1 needs temperature > 0 (greedy samples are all the same)")

    def answer_questions(
        self,
        items: Sequence[WorkItem],
        questions: Sequence[str],
        contexts: Sequence[str],
        docs: Mapping[str, Document],
        lm: LM,
    ) -> list[Answers]:
        systems = [self.system_prompt.format(context=ctx) for ctx in contexts]
        requests = [
            ChatRequest.of(
                [
                    {"role": "system", "content": system},
                    {"role": "user", "content": q},
                ],
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                n=self.samples,
                seed=item.seed,
            )
            for item, q, system in zip(items, questions, systems)
        ]
        # The record carries the prompt it was answered with (teacher logprobs and exports read it).
        return [Answers(c.texts, {"system": system}) for c, system in zip(lm.generate(requests), systems, strict=True)]
