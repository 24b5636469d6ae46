"""A re-implementation of how Cartridges reads a training file and builds its `targets="logits"` batches.

Written from Cartridges' source (HazyResearch/cartridges), function by function, so the tests can check that a
robustqa export trains there without installing it (Cartridges needs pydrantic, wandb and a GPU stack):

- `read_conversations` = `cartridges.structs.read_conversations` for `.parquet`: `pandas.read_parquet(path)
  .to_dict(orient="records")`, then `Conversation.from_dict` per row (`FlatTopLogprobs(**top_logprobs)` when
  not null). The pandas round trip matters: list columns come back as numpy arrays.
- `messages_to_element` = `cartridges.datasets.tokenizer_messages_to_element`, the converter
  `TrainDataset._prepare_elements` picks for any tokenizer not in `MODEL_TO_MESSAGE_CONVERTER` (SmolLM2's
  here), with `retokenize = (targets == "tokens")`: render the chat template with one marker per message,
  cut it into the template chunks around the markers, check that re-inserting the retokenized contents gives
  the template of the real messages, then insert each message's `token_ids` (or its retokenized content),
  dropping the overlap between inserted ids and the chunk that follows; every top-logprob entry's position is
  its `token_idx` plus the start of its message's content; a message with top logprobs must have token ids,
  one row per id.
- `collate` = `TrainDataset.collate`: elements packed into one sequence of `packed_seq_length`, entry
  positions shifted by the element's offset, padded with 0 (or truncated, dropping entries past the end).
- `logits_loss` = the training step of `cartridges.train`: student log-softmax at `topk_token_idxs - 1`
  gathered at `topk_token_ids`, times the teacher's probability `exp(topk_logprobs)`, negated and averaged
  over the entries (the mass below the cut is dropped, not renormalised).

Cartridges' source in the index this was checked against: cartridges/structs.py, cartridges/datasets.py,
cartridges/clients/base.py (FlatTopLogprobs), and the loss in cartridges/train.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class FlatTopLogprobs:
    token_idx: np.ndarray
    token_id: np.ndarray
    logprobs: np.ndarray
    shape: tuple[int, int]


@dataclass
class Message:
    content: str
    role: str
    token_ids: list[int] | None
    top_logprobs: FlatTopLogprobs | None = None


@dataclass
class Conversation:
    messages: list[Message]
    system_prompt: str
    metadata: dict
    type: str | None = None


@dataclass
class Element:
    input_ids: torch.Tensor
    topk_token_ids: torch.Tensor
    topk_logprobs: torch.Tensor
    topk_token_idxs: torch.Tensor


def read_conversations(path) -> list[Conversation]:
    import pandas as pd

    out = []
    for row in pd.read_parquet(path).to_dict(orient="records"):
        messages = [
            Message(
                content=m["content"],
                role=m["role"],
                token_ids=m["token_ids"],
                top_logprobs=FlatTopLogprobs(**m["top_logprobs"]) if m["top_logprobs"] is not None else None,
            )
            for m in row["messages"]
        ]
        out.append(Conversation(messages, row["system_prompt"], row["metadata"], row["type"]))
    return out


def _template_ids(tokenizer, messages: list[dict]) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=False)
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if isinstance(ids, dict) or hasattr(ids, "keys"):  # newer transformers return a BatchEncoding
        ids = ids["input_ids"]
    if ids and isinstance(ids[0], list):
        assert len(ids) == 1
        ids = ids[0]
    return [int(i) for i in ids]


def _find(sequence: list[int], sub: list[int], start: int) -> int:
    for i in range(start, len(sequence) - len(sub) + 1):
        if sequence[i : i + len(sub)] == sub:
            return i
    raise ValueError("Could not locate a message marker in the rendered chat template")


def _overlap(left: list[int], right: list[int]) -> int:
    for size in range(min(len(left), len(right)), 0, -1):
        if left[-size:] == right[:size]:
            return size
    return 0


def messages_to_element(messages: list[Message], retokenize: bool, tokenizer) -> Element:
    markers = [f"<|cartridges_message_{i}_7f39a2|>" for i in range(len(messages))]
    rendered = _template_ids(tokenizer, [{"role": m.role, "content": k} for m, k in zip(messages, markers)])
    chunks, cursor = [], 0
    for marker in markers:
        marker_ids = tokenizer.encode(marker, add_special_tokens=False)
        at = _find(rendered, marker_ids, cursor)
        chunks.append(rendered[cursor:at])
        cursor = at + len(marker_ids)
    chunks.append(rendered[cursor:])
    retokenized = [list(tokenizer.encode(m.content, add_special_tokens=False)) for m in messages]

    def compose(replacements, drop_overlap):
        out, starts = list(chunks[0]), []
        for i, rep in enumerate(replacements):
            starts.append(len(out))
            out.extend(rep)
            following = chunks[i + 1]
            if drop_overlap:
                following = following[_overlap(rep, following) :]
            out.extend(following)
        return out, starts

    roundtrip, _ = compose(retokenized, False)
    if roundtrip != _template_ids(tokenizer, [{"role": m.role, "content": m.content} for m in messages]):
        raise ValueError("Tokenizer chat-template round-trip failed")
    replacements = [
        fallback if retokenize or m.token_ids is None else [int(t) for t in m.token_ids]
        for m, fallback in zip(messages, retokenized)
    ]
    input_ids, starts = compose(replacements, not retokenize)
    ids, lps, idxs = [], [], []
    for m, start in zip(messages, starts):
        if m.top_logprobs is None:
            continue
        if m.token_ids is None:
            raise ValueError("Top-logprob messages must include exact completion token IDs")
        if len(m.token_ids) != m.top_logprobs.shape[0]:
            raise ValueError("Top-logprob token rows do not align with the message token IDs")
        ids.append(np.asarray(m.top_logprobs.token_id))
        lps.append(np.asarray(m.top_logprobs.logprobs))
        idxs.append(np.asarray(m.top_logprobs.token_idx, dtype=np.int64) + start)
    if ids:
        flat = np.concatenate(ids), np.concatenate(lps), np.concatenate(idxs)
    else:
        flat = np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.int64)
    return Element(
        input_ids=torch.tensor(input_ids, dtype=torch.long),
        topk_token_ids=torch.from_numpy(flat[0]),
        topk_logprobs=torch.from_numpy(flat[1]),
        topk_token_idxs=torch.from_numpy(flat[2]),
    )


def collate(elements: list[Element], packed_seq_length: int) -> dict[str, torch.Tensor]:
    input_ids, element_ids, position_ids, tok_ids, tok_lps, tok_idxs = [], [], [], [], [], []
    offset = 0
    for n, el in enumerate(elements):
        input_ids.append(el.input_ids)
        element_ids.append(torch.full_like(el.input_ids, n, dtype=torch.long))
        position_ids.append(torch.arange(len(el.input_ids), dtype=torch.long))
        tok_ids.append(el.topk_token_ids)
        tok_lps.append(el.topk_logprobs)
        tok_idxs.append(el.topk_token_idxs + offset)
        offset += len(el.input_ids)
    batch = {
        "input_ids": torch.cat(input_ids),
        "element_ids": torch.cat(element_ids),
        "position_ids": torch.cat(position_ids),
        "topk_token_ids": torch.cat(tok_ids),
        "topk_logprobs": torch.cat(tok_lps),
        "topk_token_idxs": torch.cat(tok_idxs),
    }
    length = len(batch["input_ids"])
    if length > packed_seq_length:
        for key in ("input_ids", "element_ids", "position_ids"):
            batch[key] = batch[key][:packed_seq_length]
        keep = batch["topk_token_idxs"] < packed_seq_length
        for key in ("topk_token_ids", "topk_logprobs", "topk_token_idxs"):
            batch[key] = batch[key][keep]
    elif length < packed_seq_length:
        pad = torch.zeros(packed_seq_length - length, dtype=torch.long)
        for key in ("input_ids", "element_ids", "position_ids"):
            batch[key] = torch.cat([batch[key], pad])
    return batch


def logits_loss(student_logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """student_logits: [1, L, V] over the packed sequence."""
    logprobs = torch.log_softmax(student_logits.float(), dim=-1)[
        0, batch["topk_token_idxs"] - 1, batch["topk_token_ids"]
    ]
    return (-batch["topk_logprobs"].float().exp() * logprobs).mean()
