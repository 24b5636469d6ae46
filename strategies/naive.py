"""`naive`: the Cartridges self-study baseline (SelfStudySynthesizer, one round, no tools), kept faithful.

Per pair: (1) a random token window of the document and a seed prompt (`token_window`); (2) ONE system prompt,
the window inside `<info>` tags under `system_prompt_template`, for both calls; (3) call A: system + seed
prompt -> the user message (temperature_a, max_tokens_a, thinking off); (4) call B: system + that message -> the
answer (temperature_b, max_tokens_b, thinking on with probability `prob_thinking`, drawn per window). Thinking
goes to the chat template as `enable_thinking` (local models) or `chat_template_kwargs` (servers) when
`thinking_control` is on, as Cartridges' clients send it.

Outputs are used exactly as the model returned them: not stripped, and an empty message is still answered and
the pair kept (its `format` decision says it was empty), since Cartridges trains on whatever came back. No
filters, no retries, no target span. 2 LM calls per pair. The record carries the system prompt both calls saw
(`meta.answer_prompt`), which teacher logprobs and the Cartridges export read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from robustqa.components import Answerer, Answers
from robustqa.lm.base import LM, ChatRequest
from robustqa.strategy import Strategy
from robustqa.types import Decision, Document, QARecord, WorkItem

from .seed_prompts import SEED_PROMPT_TYPES
from .token_window import TokenWindowSelector

# The form of Cartridges' SYSTEM_PROMPT_TEMPLATE (one framing line, the chunk inside <info> tags), in robustqa's
# words; `system_prompt_template` takes Cartridges' own text ({subcorpus} is the chunk), and import-cartridges
# passes a config's template on.
SYSTEM_PROMPT_TEMPLATE = "\nYou are in a conversation about the following information.\n\n<info>\n{subcorpus}\n</info>"


class NaiveStrategy(Strategy):
    name = "naive"
    keeps_empty_outputs = True  # the strategy contract's test: empty output is kept, with the reason recorded

    def __init__(
        self,
        min_tokens: int | None = 512,
        max_tokens: int = 1024,
        seed_prompts: Sequence[str] = SEED_PROMPT_TYPES,
        temperature_a: float = 0.6,
        temperature_b: float = 0.0,
        max_tokens_a: int = 512,
        max_tokens_b: int = 1024,
        tokenizer: str | None = None,
        prob_thinking: float = 0.0,
        thinking_control: bool = True,
        chunk_group: int = 1,
        system_prompt_template: str = SYSTEM_PROMPT_TEMPLATE,
    ) -> None:
        self.min_tokens = min_tokens
        self.max_tokens = max_tokens
        self.seed_prompts = seed_prompts
        self.temperature_a = temperature_a
        self.temperature_b = temperature_b
        self.max_tokens_a = max_tokens_a
        self.max_tokens_b = max_tokens_b
        self.tokenizer = tokenizer
        self.prob_thinking = prob_thinking
        self.thinking_control = thinking_control
        self.chunk_group = chunk_group
        self.system_prompt_template = system_prompt_template

    def validate(self) -> None:
        self._selector().validate()

    def _selector(self) -> TokenWindowSelector:
        return TokenWindowSelector(
            self.min_tokens,
            self.max_tokens,
            tuple(self.seed_prompts),
            self.tokenizer,
            self.chunk_group,
            self.prob_thinking,
        )

    # Parts other tools compose with naive's own answering (benchmarks that feed it other questions or contexts).
    span_filters: tuple = ()

    @property
    def answerer(self) -> NaiveAnswerer:
        """Call B as a component: the same system prompt, limits and thinking control."""
        return NaiveAnswerer(self.temperature_b, self.max_tokens_b, self.system_prompt_template, self.thinking_control)

    def plan(self, doc: Document, n: int, seed: int, fingerprint: str = "") -> list[WorkItem]:
        return self._selector().select(doc, n, seed, [], fingerprint or self.fingerprint())

    def run(self, items: Sequence[WorkItem], docs: Mapping[str, Document], lm: LM) -> list[QARecord]:
        items = list(items)
        systems = [
            self.system_prompt_template.format(subcorpus=docs[it.doc_id].text[it.context[0] : it.context[1]])
            for it in items
        ]
        questions = [
            c.texts[0]
            for c in lm.generate(
                [
                    ChatRequest.of(
                        [{"role": "system", "content": s}, {"role": "user", "content": it.meta["seed_prompt_text"]}],
                        temperature=self.temperature_a,
                        max_tokens=self.max_tokens_a,
                        seed=it.seed,
                        chat_template_kwargs=self._thinking(False),
                    )
                    for it, s in zip(items, systems, strict=True)
                ]
            )
        ]
        answers = [
            c.texts[0]
            for c in lm.generate(
                [
                    ChatRequest.of(
                        [{"role": "system", "content": s}, {"role": "user", "content": q}],
                        temperature=self.temperature_b,
                        max_tokens=self.max_tokens_b,
                        seed=it.seed,
                        chat_template_kwargs=self._thinking(bool(it.meta.get("enable_thinking"))),
                    )
                    for it, s, q in zip(items, systems, questions, strict=True)
                ]
            )
        ]
        return [self._record(it, s, q, a, lm) for it, s, q, a in zip(items, systems, questions, answers, strict=True)]

    def _thinking(self, on: bool) -> tuple[tuple[str, bool], ...]:
        return (("enable_thinking", on),) if self.thinking_control else ()

    def _record(self, item: WorkItem, system: str, question: str, answer: str, lm: LM) -> QARecord:
        meta = dict(item.meta)
        kwargs = dict(self._thinking(bool(meta.get("enable_thinking"))))
        meta["answer_prompt"] = {"system": system, "chat_template_kwargs": kwargs}
        meta["item_seed"] = item.seed
        meta["index"] = item.index
        # Where the pair came from, as every strategy records it: both turns are the model's free text.
        meta["question_source"] = "model"
        meta["answer_source"] = "abstractive"
        return QARecord(
            id=item.id,
            doc_id=item.doc_id,
            question=question,
            answer=answer,
            target=None,
            context={"start": item.context[0], "end": item.context[1]},
            strategy=self.name,
            model=lm.model_id,
            seed=item.seed if item.run_seed is None else item.run_seed,
            fingerprint=self.fingerprint() if item.fingerprint is None else item.fingerprint,
            decisions=[_format_decision(question, answer)],
            meta=meta,
        )


class NaiveAnswerer(Answerer):
    """naive's call B for compositions: system = the context under naive's template, user = the question; thinking
    from `meta.enable_thinking` (off when absent); the record carries the prompt (`meta.answer_prompt`)."""

    name = "naive_answer"

    def __init__(
        self,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        system_prompt_template: str = SYSTEM_PROMPT_TEMPLATE,
        thinking_control: bool = True,
    ) -> None:
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.system_prompt_template = system_prompt_template
        self.thinking_control = thinking_control

    def answer_questions(
        self,
        items: Sequence[WorkItem],
        questions: Sequence[str],
        contexts: Sequence[str],
        docs: Mapping[str, Document],
        lm: LM,
    ) -> list[Answers]:
        requests, prompts = [], []
        for item, question, context in zip(items, questions, contexts, strict=True):
            system = self.system_prompt_template.format(subcorpus=context)
            kwargs = (("enable_thinking", bool(item.meta.get("enable_thinking"))),) if self.thinking_control else ()
            prompts.append({"system": system, "chat_template_kwargs": dict(kwargs)})
            requests.append(
                ChatRequest.of(
                    [{"role": "system", "content": system}, {"role": "user", "content": question}],
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                    seed=item.seed,
                    chat_template_kwargs=kwargs,
                )
            )
        return [Answers(c.texts, p) for c, p in zip(lm.generate(requests), prompts, strict=True)]


def _format_decision(question: str, answer: str) -> Decision:
    """Kept either way, as Cartridges keeps it; the decision says what came back."""
    empty = [name for name, text in (("question", question), ("answer", answer)) if not text.strip()]
    if empty:
        return Decision("format", 0.0, True, f"empty {' and '.join(empty)} kept as returned (Cartridges keeps it)")
    return Decision("format", 1.0, True, "question and answer as returned")


# Cartridges' knobs: chunk sizes (min_tokens null = fixed length), seed-prompt types, temperatures and token limits
# of calls A and B, tokenizer, prob_thinking, thinking_control, chunk_group, system_prompt_template.
make_naive = NaiveStrategy
