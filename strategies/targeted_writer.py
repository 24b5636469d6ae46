"""`targeted` question writer: one question whose answer lies in the item's target span.

The prompt shows the local context with the target marked (<target>...</target>) and asks for ONE question
that the target answers. The reply is parsed defensively (`question_parsing.parse_question`); an unusable
reply becomes "" and the pipeline rejects the pair with a reason. The raw reply is kept in the record's meta
when parsing changed it. 1 LM call per item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from robustqa.components import QuestionWriter, WrittenQuestion
from robustqa.context import render_context
from robustqa.lm.base import LM, ChatRequest
from robustqa.types import Document, WorkItem

from .question_parsing import parse_question

TARGETED_SYSTEM_PROMPT = "You write quiz questions about documents. You reply with one question and nothing else."
TARGETED_USER_PROMPT = (
    "Here is part of a document. The important sentence is marked with <target> and </target>.\n\n"
    "{context}\n\n"
    "Write one question that the marked sentence answers. Use names and details from the text so the "
    "question "
    "makes sense on its own. Reply with the question only."
)
OPEN, CLOSE = "<target>", "</target>"


class TargetedQuestionWriter(QuestionWriter):
    """Parameters:
    temperature: sampling temperature of the question (seeded per item).
    max_tokens: length limit of the reply.
    system_prompt / user_prompt: the prompt; `user_prompt` must contain `{context}`.
    min_words / max_words: a parsed question outside these bounds is unusable ("").
    """

    name = "targeted"

    def __init__(
        self,
        temperature: float = 0.3,
        max_tokens: int = 64,
        system_prompt: str = TARGETED_SYSTEM_PROMPT,
        user_prompt: str = TARGETED_USER_PROMPT,
        min_words: int = 3,
        max_words: int = 60,
    ) -> None:
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.system_prompt = system_prompt
        self.user_prompt = user_prompt
        self.min_words = min_words
        self.max_words = max_words

    def write_questions(
        self, items: Sequence[WorkItem], contexts: Sequence[str], docs: Mapping[str, Document], lm: LM
    ) -> list[WrittenQuestion]:
        requests = [
            ChatRequest.of(
                [
                    {"role": "system", "content": self.system_prompt},
                    {
                        "role": "user",
                        "content": self.user_prompt.format(context=mark_target(item, ctx, docs)),
                    },
                ],
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                seed=item.seed,
            )
            for item, ctx in zip(items, contexts, strict=True)
        ]
        questions = []
        for item, completion in zip(items, lm.generate(requests), strict=True):
            raw = completion.texts[0]
            about = item.target.text if item.target is not None else ""
            question = parse_question(raw, self.min_words, self.max_words, about=about)
            questions.append(WrittenQuestion(question, raw=raw if question != raw.strip() else None))
        return questions


def mark_target(item: WorkItem, context: str, docs: Mapping[str, Document]) -> str:
    """The rendered context with the target wrapped in <target> tags (all of it marked without a target)."""
    target = item.target
    if target is None:
        return f"{OPEN}{context}{CLOSE}"
    masked = [(m.start, m.end) for m in item.masked]
    # Where the target starts in the rendered context: after the rendered text before it.
    before = render_context(docs[item.doc_id], item.context[0], target.start, masked)
    at = context.find(target.text, max(0, len(before) - 2))
    if at < 0:
        at = context.find(target.text)
    if at < 0:  # the target was cut by a mask: mark the whole context rather than a wrong place
        return f"{OPEN}{context}{CLOSE}"
    end = at + len(target.text)
    return f"{context[:at]}{OPEN}{context[at:end]}{CLOSE}{context[end:]}"
