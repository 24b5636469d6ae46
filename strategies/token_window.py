"""Naive self-study's selector: a random token window of the document and a random seed prompt.

As in Cartridges' `TokenChunker.sample_chunk`: the window length is uniform in [min_tokens, max_tokens] (exactly
max_tokens when min_tokens is None), its start uniform over the positions where it fits, and the whole document
when it has fewer tokens. Tokens are the model tokenizer's, whitespace tokens included, when `tokenizer` names a
local Hugging Face tokenizer directory (`robustqa generate` sets it to the model's own where it can); otherwise
robustqa's regex word pieces, and every item says which (`meta.chunk_unit`).

`chunk_group` > 1 shares one window among that many consecutive items of a document, as Cartridges shares one
chunk among the conversations of a batch; `prob_thinking` is drawn once per window too, as Cartridges draws it
once per batch (`meta.enable_thinking`, used by the answering call).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache

from robustqa.components import Selector, SpanFlag
from robustqa.errors import ConfigError
from robustqa.token_index import TokenIndex, WordTokens
from robustqa.types import Document, WorkItem, derive_seed, stable_hash

from .seed_prompts import SEED_PROMPT_TYPES, draw


class TokenWindowSelector(Selector):
    name = "token_window"

    def __init__(
        self,
        min_tokens: int | None = 512,
        max_tokens: int = 1024,
        seed_prompts: Sequence[str] = SEED_PROMPT_TYPES,
        tokenizer: str | None = None,
        chunk_group: int = 1,
        prob_thinking: float = 0.0,
    ) -> None:
        self.min_tokens = min_tokens
        self.max_tokens = max_tokens
        self.seed_prompts = seed_prompts
        self.tokenizer = tokenizer
        self.chunk_group = chunk_group
        self.prob_thinking = prob_thinking

    def validate(self) -> None:
        low = self.max_tokens if self.min_tokens is None else self.min_tokens
        if not 0 < low <= self.max_tokens:
            raise ConfigError(
                f"token_window needs 0 < min_tokens <= max_tokens (or min_tokens null), got {self.min_tokens}, "
                f"{self.max_tokens}"
            )
        unknown = set(self.seed_prompts) - set(SEED_PROMPT_TYPES)
        if unknown or not self.seed_prompts:
            raise ConfigError(f"unknown seed prompt types {sorted(unknown)}; known: {', '.join(SEED_PROMPT_TYPES)}")
        if self.chunk_group < 1:
            raise ConfigError(f"chunk_group must be >= 1, got {self.chunk_group}")
        if not 0.0 <= self.prob_thinking <= 1.0:
            raise ConfigError(f"prob_thinking must be in [0, 1], got {self.prob_thinking}")

    def select(self, doc: Document, n: int, seed: int, blocked: Sequence[SpanFlag], fingerprint: str) -> list[WorkItem]:
        offsets, unit = token_offsets(doc.text, self.tokenizer)
        if not len(offsets):
            raise ConfigError(f"document {doc.id!r} has no tokens to draw a window from")
        windows: dict[int, tuple[int, int, bool]] = {}
        items = []
        for index in range(n):
            group = index // self.chunk_group
            if group not in windows:
                rng = random.Random(derive_seed(seed, doc.id, "window", group))
                start, end = sample_window(len(doc.text), offsets, self.min_tokens, self.max_tokens, rng)
                windows[group] = (start, end, rng.random() < self.prob_thinking)
            start, end, thinking = windows[group]
            item_seed = derive_seed(seed, doc.id, index)
            kind, variant, text = draw(self.seed_prompts, random.Random(derive_seed(item_seed, "seed_prompt")))
            meta = {
                "seed_prompt": kind,
                "seed_prompt_variant": variant,
                "seed_prompt_text": text,
                "chunk_unit": unit,
                "enable_thinking": thinking,
            }
            if self.chunk_group > 1:
                meta["chunk_group"] = group
            items.append(
                WorkItem(
                    id=stable_hash(fingerprint, seed, doc.id, index),
                    doc_id=doc.id,
                    index=index,
                    seed=item_seed,
                    context=(start, end),
                    target=None,
                    meta=meta,
                )
            )
        return items


def sample_window(
    text_length: int,
    offsets: TokenIndex | Sequence[tuple[int, int]],
    min_tokens: int | None,
    max_tokens: int,
    rng: random.Random,
) -> tuple[int, int]:
    """Character range of a random window of whole tokens (see the module docstring). Cost: independent of the
    document's length (a window's tokens only)."""
    length = max_tokens if min_tokens is None else rng.randint(min_tokens, max_tokens)
    if length > len(offsets):
        return 0, text_length
    first = rng.randint(0, len(offsets) - length)
    if isinstance(offsets, TokenIndex):
        return offsets.bounds(first, length)
    window = offsets[first : first + length]
    # min/max, not first/last: byte-level tokenizers may give the pieces of one character the same range.
    return min(s for s, _ in window), max(e for _, e in window)


def token_offsets(text: str, tokenizer: str | None) -> tuple[TokenIndex | list[tuple[int, int]], str]:
    """The document's tokens, indexed once per plan, and what they count: 'tokenizer DIR' (the model tokenizer's
    offsets, whitespace tokens included) or 'word pieces' (`robustqa.token_index.WordTokens`: numpy-indexed, so
    a 200 MB document plans in bounded memory)."""
    if tokenizer is None:
        return WordTokens(text), "word pieces"
    tok = _load_tokenizer(tokenizer)
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    return [(int(s), int(e)) for s, e in enc["offset_mapping"]], f"tokenizer {tokenizer}"


@lru_cache(maxsize=4)
def _load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"token_window: cannot load the tokenizer {path!r} locally: {exc}") from None
