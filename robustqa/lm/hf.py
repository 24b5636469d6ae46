"""Local transformers backend: a causal chat model from a local directory, batched with left padding.

Nothing is downloaded (`local_files_only=True`); `model=None` means the embedded SmolLM2-135M-Instruct,
converted once to a cached safetensors directory (`robustqa.lm.embedded`). The model loads lazily on the
first `generate` (constructors only store their arguments), or explicitly with `load()`.

Requests with equal sampling parameters (the seed aside) share batches. Greedy decoding (temperature 0)
runs one sequence per prompt and returns it n times, since greedy output is the same every time; sampling
draws `num_return_sequences=n`. A sampled batch is seeded from its first request's seed inside a forked
RNG, so the same requests in the same batches give the same texts, and the caller's global torch RNG is
left alone. Token counts are what the model computed: prompt tokens without padding, and generated
tokens up to the stop token (a greedy request with n > 1 is computed, and counted, once).
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from robustqa.errors import BackendError, ConfigError

from .base import (
    LM,
    ChatRequest,
    Completion,
    GenerationParams,
    Score,
    ScoreRequest,
    check_score_lengths,
    generate_in_batches,
)


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class HFLM(LM):
    backend = "hf"
    can_score = True

    def __init__(
        self,
        model: str | Path | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 16,
        max_input_tokens: int = 2048,
        num_threads: int | None = None,
        model_id: str | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"hf backend: batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.max_input_tokens = max_input_tokens
        self.num_threads = num_threads
        if model_id is None:
            from .embedded import EMBEDDED_MODEL_ID

            model_id = EMBEDDED_MODEL_ID if model is None else str(model)
        self.model_id = model_id
        self._model: Any = None
        self._tokenizer: Any = None
        self._model_dir: Path | None = None
        self._lock = threading.RLock()  # one generate at a time: torch already uses every core

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any, model_id: str, batch_size: int = 16) -> HFLM:
        """A backend over a model and tokenizer already in memory (a student being evaluated after training):
        the same generation and scoring as a model loaded from a directory."""
        max_positions = getattr(getattr(model, "config", None), "max_position_embeddings", None) or 2048
        lm = cls(device=str(model.device), batch_size=batch_size, max_input_tokens=max_positions, model_id=model_id)
        lm._model, lm._tokenizer = model.eval(), _for_generation(tokenizer, f"of {model_id}")
        return lm

    # -- loading ---------------------------------------------------------------------------------------------
    @property
    def model_dir(self) -> Path:
        if self._model_dir is None:
            if self.model is None:
                from .embedded import embedded_model_dir

                self._model_dir = embedded_model_dir()
            else:
                path = Path(self.model)
                if not (path / "config.json").is_file():
                    raise ConfigError(f"hf backend: {path} is not a local model directory (no config.json)")
                self._model_dir = path
        return self._model_dir

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (left padding), loaded on first use without loading the weights."""
        with self._lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                tok = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
                self._tokenizer = _for_generation(tok, f"in {self.model_dir}")
            return self._tokenizer

    def load(self) -> HFLM:
        with self._lock:
            if self._model is not None:
                return self
            import torch
            from transformers import AutoModelForCausalLM

            if self.device == "cpu":
                cores = _usable_cores()
                wanted = min(self.num_threads or cores, cores)
                if torch.get_num_threads() != wanted:
                    torch.set_num_threads(wanted)  # more threads than cores is slower, never faster
            dtype = getattr(torch, self.dtype, None)
            if not isinstance(dtype, torch.dtype):
                raise ConfigError(f"hf backend: unknown dtype {self.dtype!r} (float32, bfloat16, float16)")
            _ = self.tokenizer
            try:
                model = AutoModelForCausalLM.from_pretrained(str(self.model_dir), dtype=dtype, local_files_only=True)
                self._model = model.to(self.device).eval()
            except (OSError, ValueError, RuntimeError) as exc:
                raise BackendError(f"hf backend: cannot load the model in {self.model_dir}: {exc}") from exc
            return self

    # -- generation ------------------------------------------------------------------------------------------
    def _generate(self, requests: list[ChatRequest]) -> list[Completion]:
        with self._lock:
            self.load()
            return generate_in_batches(requests, self.batch_size, self._generate_batch)

    def _render(self, req: ChatRequest) -> str:
        return self.tokenizer.apply_chat_template(
            req.message_dicts, tokenize=False, add_generation_prompt=True, **dict(req.params.chat_template_kwargs)
        )

    def _generate_batch(self, batch: list[ChatRequest], params: GenerationParams, seed: int | None) -> list[Completion]:
        import torch

        tok = self.tokenizer
        # The chat template already holds the special tokens; add_special_tokens would add a second BOS.
        enc = tok([self._render(r) for r in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        lengths = enc["attention_mask"].sum(dim=1).tolist()
        too_long = [(i, n) for i, n in enumerate(lengths) if n > self.max_input_tokens]
        if too_long:
            i, n = too_long[0]
            raise BackendError(
                f"hf backend: a prompt has {n} tokens, over max_input_tokens={self.max_input_tokens} "
                f"(starts {batch[i].messages[-1][1][:80]!r}); give the strategy a smaller context window"
            )
        enc = {k: v.to(self.device) for k, v in enc.items()}
        sample = params.temperature > 0
        n_seq = params.n if sample else 1
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "pad_token_id": tok.pad_token_id,
            "num_return_sequences": n_seq,
        }
        if sample:
            # top_k=0: only temperature and top_p shape the distribution, as in the OpenAI API.
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            if sample and seed is not None:
                torch.manual_seed(seed)
            generated = self._model.generate(**enc, **kwargs)
        new_tokens = generated[:, enc["input_ids"].shape[1] :].cpu()
        stops = self._stop_ids()
        out = []
        for b in range(len(batch)):
            rows = new_tokens[b * n_seq : (b + 1) * n_seq]
            texts, counted = [], 0
            for row in rows.tolist():
                used = _until_stop(row, stops)
                counted += len(used)
                texts.append(tok.decode(used, skip_special_tokens=True))  # raw: callers decide what to strip
            if not sample:
                texts = texts * params.n
            out.append(Completion(texts, prompt_tokens=int(lengths[b]), completion_tokens=counted))
        return out

    # -- scoring -------------------------------------------------------------------------------------------
    def score_ids(self, req: ScoreRequest) -> tuple[list[int], list[int]]:
        """The prompt's and the continuation's token ids, as `score` feeds them to the model."""
        tok = self.tokenizer
        prompt = tok.apply_chat_template(
            req.message_dicts, tokenize=False, add_generation_prompt=True, **dict(req.chat_template_kwargs)
        )
        prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        cont_ids = tok(req.continuation, add_special_tokens=False)["input_ids"]
        if req.end_turn:
            cont_ids = [*cont_ids, tok.eos_token_id]
        return list(prompt_ids), list(cont_ids)

    def _score(self, requests: list[ScoreRequest]) -> list[Score]:
        with self._lock:
            self.load()
            encoded = [self.score_ids(r) for r in requests]
            check_score_lengths("hf", encoded, requests, self.max_input_tokens)
            out: list[Score | None] = [None] * len(requests)
            # Continuations of one prompt (the candidate spans of one question) share its computation.
            by_prompt: dict[tuple[int, ...], list[int]] = defaultdict(list)
            for i, (prompt_ids, _) in enumerate(encoded):
                by_prompt[tuple(prompt_ids)].append(i)
            singles = []
            for indices in by_prompt.values():
                if len(indices) == 1:
                    singles.append(indices[0])
                    continue
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start : start + self.batch_size]
                    scores = self._score_shared(encoded[chunk[0]][0], [encoded[i][1] for i in chunk],
                                                [requests[i].top_k for i in chunk])  # fmt: skip
                    for i, score in zip(chunk, scores, strict=True):
                        out[i] = score
            # Similar lengths share a batch, so little compute goes to padding.
            singles.sort(key=lambda i: len(encoded[i][0]) + len(encoded[i][1]))
            for start in range(0, len(singles), self.batch_size):
                chunk = singles[start : start + self.batch_size]
                scores = self._score_batch([encoded[i] for i in chunk], [requests[i].top_k for i in chunk])
                for i, score in zip(chunk, scores, strict=True):
                    out[i] = score
            return [s for s in out if s is not None]

    def _score_shared(self, prompt: list[int], conts: list[list[int]], top_ks: list[int]) -> list[Score]:
        """Score several continuations of one prompt: the prompt runs once, its key/value cache is repeated
        for the continuations. Its tokens are counted once, on the first score."""
        import torch

        with torch.no_grad():
            head = self._model(input_ids=torch.tensor([prompt], device=self.device), use_cache=True)
            first = torch.log_softmax(head.logits[0, -1].float(), dim=-1).cpu()  # predicts every first token
            width = max(len(c) for c in conts)
            out_rows: list[torch.Tensor] = []
            if width > 1:
                cache = head.past_key_values
                cache.batch_repeat_interleave(len(conts))
                ids = torch.full((len(conts), width - 1), self.tokenizer.pad_token_id, dtype=torch.long)
                for b, c in enumerate(conts):  # right padding: what follows a continuation never reaches it
                    if len(c) > 1:
                        ids[b, : len(c) - 1] = torch.tensor(c[:-1])
                mask = torch.ones((len(conts), len(prompt) + width - 1), dtype=torch.long)
                positions = torch.arange(len(prompt), len(prompt) + width - 1).expand(len(conts), -1)
                logits = self._model(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    position_ids=positions.to(self.device),
                    use_cache=True,
                    **{_cache_keyword(self._model): cache},
                ).logits.float()
                rest = torch.log_softmax(logits, dim=-1).cpu()
                out_rows = [rest[b] for b in range(len(conts))]
        scores = []
        for b, (c, k) in enumerate(zip(conts, top_ks, strict=True)):
            rows = first[None, :] if len(c) == 1 else torch.cat([first[None, :], out_rows[b][: len(c) - 1]])
            scores.append(self._score_of(rows, c, k, len(prompt) if b == 0 else 0))
        return scores

    def _score_of(self, rows, cont: list[int], top_k: int, prompt_tokens: int) -> Score:
        import torch

        target = torch.tensor(cont, dtype=torch.long)
        token_lp = rows.gather(1, target[:, None])[:, 0].tolist()
        score = Score(token_ids=list(cont), token_logprobs=token_lp, prompt_tokens=prompt_tokens)
        if top_k > 0:
            top = rows.topk(top_k, dim=-1)
            score.top_ids = top.indices.tolist()
            score.top_logprobs = top.values.tolist()
        return score

    def _score_batch(self, encoded: list[tuple[list[int], list[int]]], top_ks: list[int]) -> list[Score]:
        import torch

        pad = self.tokenizer.pad_token_id
        width = max(len(p) + len(c) for p, c in encoded)
        keep = max(len(c) for _, c in encoded) + 1  # logits for the last prompt position and every continuation one
        ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for b, (p, c) in enumerate(encoded):
            row = p + c
            ids[b, width - len(row) :] = torch.tensor(row)  # left padding: every continuation ends at the right
            mask[b, width - len(row) :] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        with torch.no_grad():
            logits = self._model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                logits_to_keep=keep,
            ).logits.float()
        logprobs = torch.log_softmax(logits, dim=-1).cpu()  # [batch, keep, vocab]
        out = []
        for b, ((p, c), k) in enumerate(zip(encoded, top_ks, strict=True)):
            # Position j of the kept logits predicts token width - keep + j + 1.
            out.append(self._score_of(logprobs[b, keep - 1 - len(c) : keep - 1], c, k, len(p)))
        return out

    def _stop_ids(self) -> set[int]:
        eos = self._model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        ids.add(self.tokenizer.eos_token_id)
        return {i for i in ids if i is not None}

    def close(self) -> None:
        self._model = None


def _for_generation(tok: Any, where: str) -> Any:
    """The tokenizer set up for batched chat generation: left padding, a pad token, a chat template."""
    if tok.chat_template is None:
        raise ConfigError(f"hf backend: the tokenizer {where} has no chat template")
    tok.padding_side = "left"  # decoder-only batches must end where generation starts
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _cache_keyword(model: Any) -> str:
    """transformers renamed `past_key_values` to `cache` (the old name warns from 5.2x on)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _until_stop(row: list[int], stops: set[int]) -> list[int]:
    """The generated ids up to and including the first stop token; what follows is padding."""
    for k, t in enumerate(row):
        if t in stops:
            return row[: k + 1]
    return row
