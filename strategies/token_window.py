"""Naive self-study's selector: a random token window of the document and a random seed-prompt type.

As in Cartridges' TokenChunker: the window length is uniform in [min_tokens, max_tokens], its start uniform over
the positions where it fits (the whole document when it is shorter). Tokens are regex word pieces
(`robustqa.segment.word_spans`, indexed once per document by `robustqa.token_index.WordTokens`) unless
`tokenizer` names a local Hugging Face tokenizer directory.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache

from robustqa.components import Selector, SpanFlag
from robustqa.errors import ConfigError
from robustqa.segment import token_window
from robustqa.token_index import OffsetTokens, TokenIndex, WordTokens
from robustqa.types import Document, WorkItem, derive_seed, stable_hash

from .seed_prompts import SEED_PROMPT_TYPES


class TokenWindowSelector(Selector):
    name = "token_window"

    def __init__(
        self,
        min_tokens: int = 512,
        max_tokens: int = 1024,
        seed_prompts: Sequence[str] = SEED_PROMPT_TYPES,
        tokenizer: str | None = None,
    ) -> None:
        self.min_tokens = min_tokens
        self.max_tokens = max_tokens
        self.seed_prompts = seed_prompts
        self.tokenizer = tokenizer

    def select(self, doc: Document, n: int, seed: int, blocked: Sequence[SpanFlag], fingerprint: str) -> list[WorkItem]:
        if not 0 < self.min_tokens <= self.max_tokens:
            raise ConfigError(
                f"token_window needs 0 < min_tokens <= max_tokens, got {self.min_tokens}, {self.max_tokens}"
            )
        unknown = set(self.seed_prompts) - set(SEED_PROMPT_TYPES)
        if unknown or not self.seed_prompts:
            raise ConfigError(f"unknown seed prompt types {sorted(unknown)}; known: {', '.join(SEED_PROMPT_TYPES)}")
        tokens = _token_index(doc.text, doc.id, self.tokenizer)  # once per document, not once per window
        items = []
        for index in range(n):
            item_seed = derive_seed(seed, doc.id, index)
            rng = random.Random(item_seed)
            window = token_window(doc.text, doc.id, tokens, self.min_tokens, self.max_tokens, rng)
            items.append(
                WorkItem(
                    id=stable_hash(fingerprint, seed, doc.id, index),
                    doc_id=doc.id,
                    index=index,
                    seed=item_seed,
                    context=(window.start, window.end),
                    target=None,
                    meta={"seed_prompt": rng.choice(list(self.seed_prompts))},
                )
            )
        return items


def _token_index(text: str, doc_id: str, tokenizer: str | None) -> TokenIndex:
    if tokenizer is None:
        return WordTokens(text)  # the tokens of robustqa.segment.word_spans, without a list of them
    tok = _load_tokenizer(tokenizer)
    offsets = tok(text, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
    return OffsetTokens(text, [tuple(o) for o in offsets], doc_id)


@lru_cache(maxsize=4)
def _load_tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)
