"""Batched greedy answers and gold-answer likelihoods from a local chat model (transformers, CPU).

Greedy generation uses left padding so every row's new tokens start at the same column. The gold-answer
NLL is the mean negative log-likelihood per token of the gold answer placed as the assistant turn after
the prompt: at 135M parameters generated answers barely change with training, while this likelihood moves
(facts.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .models import load_model, load_tokenizer

Conversation = list[dict[str, str]]


class ChatModel:
    """A causal LM and its tokenizer; `answer` and `gold_nll` take chat prompts (lists of messages)."""

    def __init__(self, model, tokenizer, name: str = "model") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name

    @classmethod
    def load(cls, model_dir: str | Path, name: str | None = None, device: str = "auto") -> ChatModel:
        return cls(load_model(model_dir, device), load_tokenizer(model_dir), name or str(model_dir))

    def prompt_ids(self, conversation: Conversation) -> list[int]:
        ids = self.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True)
        # transformers 5 may return a BatchEncoding-like mapping; older versions return the list itself.
        return list(ids["input_ids"] if hasattr(ids, "keys") else ids)

    def answer(self, prompts: Sequence[Conversation], max_new_tokens: int = 32, batch_size: int = 16) -> list[str]:
        """Greedy answers, one per prompt, in order (batched by similar length)."""
        return [
            self.tokenizer.decode(ids, skip_special_tokens=True).strip()
            for ids in self.generate_ids(prompts, max_new_tokens, batch_size)
        ]

    def generate_ids(
        self, prompts: Sequence[Conversation], max_new_tokens: int = 32, batch_size: int = 16
    ) -> list[list[int]]:
        """The greedy new tokens of each prompt, up to (not including) the first end-of-turn token."""
        import torch

        encoded = [self.prompt_ids(p) for p in prompts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        pad_id = self.tokenizer.pad_token_id
        eos_id = self.tokenizer.eos_token_id
        out: list[list[int]] = [[] for _ in encoded]
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            width = max(len(encoded[i]) for i in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids = encoded[i]
                input_ids[row, width - len(ids) :] = torch.tensor(ids)
                attention[row, width - len(ids) :] = 1
            with torch.no_grad():
                generated = self.model.generate(
                    input_ids=input_ids.to(self.model.device),
                    attention_mask=attention.to(self.model.device),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=pad_id,
                    eos_token_id=eos_id,
                )
            for row, i in enumerate(batch):
                new = generated[row, width:].cpu().tolist()
                out[i] = new[: new.index(eos_id)] if eos_id in new else new
        return out

    def gold_nll(self, prompts: Sequence[Conversation], answers: Sequence[str], batch_size: int = 16) -> list[float]:
        """Mean NLL per token of each answer as the assistant's reply to its prompt (nats)."""
        import torch

        pairs = []
        for prompt, answer in zip(prompts, answers, strict=True):
            prompt_ids = self.prompt_ids(prompt)
            answer_ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
            pairs.append((prompt_ids, answer_ids))
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        out = [float("nan")] * len(pairs)
        pad_id = self.tokenizer.pad_token_id
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            width = max(len(pairs[i][0]) + len(pairs[i][1]) for i in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            for row, i in enumerate(batch):
                prompt_ids, answer_ids = pairs[i]
                ids = prompt_ids + answer_ids
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention[row, : len(ids)] = 1
                labels[row, len(prompt_ids) : len(ids)] = torch.tensor(answer_ids)
            with torch.no_grad():
                device = self.model.device
                logits = self.model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
                logits = logits.float().cpu()
            # Token t is predicted from position t - 1.
            shifted_logits, shifted_labels = logits[:, :-1], labels[:, 1:]
            nll = torch.nn.functional.cross_entropy(
                shifted_logits.transpose(1, 2), shifted_labels, ignore_index=-100, reduction="none"
            )
            counts = (shifted_labels != -100).sum(dim=1)
            per_row = nll.sum(dim=1) / counts.clamp(min=1)
            for row, i in enumerate(batch):
                if counts[row] > 0:
                    out[i] = float(per_row[row])
        return out
