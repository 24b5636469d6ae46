"""CTranslate2 backend: the same causal chat model as `hf`, run by CTranslate2's CPU engine (int8 by default).

The source is a local Hugging Face directory (Llama, Qwen2, Mistral, ... as CTranslate2's converter supports);
`model=None` means the embedded SmolLM2-135M-Instruct. It is converted once into a cached CTranslate2 directory
beside the embedded model's conversion (`robustqa.lm.convert_once`: file lock, atomic rename). Tokenizing, the
chat template and the scoring token ids are the `hf` backend's own (an unloaded `HFLM` of the same directory),
so the two backends feed the model the same ids.

Semantics match `hf`: requests with equal sampling parameters (the seed aside) share batches; greedy decoding runs
one sequence per prompt and returns it n times; sampling draws n hypotheses per prompt (`num_hypotheses`, which
reads the prompt once) from the full distribution shaped by temperature and top_p (`sampling_topk=0`).
Token counts are the prompt's ids and the generated ids up to and including the stop token.

Seeding. CTranslate2 keeps one random generator per worker thread, seeded from `set_random_seed` when that thread
first samples; setting the seed again later has no effect on existing threads. So a seeded sampled batch runs on
a freshly created engine (`set_random_seed(seed)` first): the same requests in the same batches give the same
texts. That costs a model reload (0.1-1.7 s measured on 2 shared cores) per seeded sampled batch, counted as
LM time.

Length groups. A batch goes to the engine as groups of prompts whose lengths differ by at most `pad_tolerance`
tokens (a prompt with no such neighbour runs alone): CTranslate2 pads a batch to its longest prompt, and on 2 CPU
cores padded batches decoded slower than one prompt at a time (benchmarks/ct2_batching.py).

Shared prefixes. Within a group, requests whose prompts start with the same tokens (one context with several
questions) pass that prefix as `static_prompt`, which CTranslate2 forwards once for the whole batch (and caches
for the next batch with the same prefix); with `prefix_sharing=False` every prompt is forwarded whole.
"""

from __future__ import annotations

import hashlib
import threading
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
from .hf import HFLM, _usable_cores

COMPUTE_TYPES = ("int8", "int8_float32", "float32")
# Most tokens by which the prompts of one engine call may differ in length. CTranslate2 forwards a batch's prompts
# at once only up to the shortest one and feeds the rest token by token in the decoding loop, so every token of
# spread costs a decoding step of the whole batch. On 2 cores (benchmarks/results/ct2_batching.json; 96-token
# prompts, 16 new tokens) a batch spread over 4 tokens ran 3.9x faster than one by one, over 16 tokens 2.7x, over
# 64 tokens 1.0x.
PAD_TOLERANCE: int | None = 16
# Tokenizer and generation files copied next to the converted weights, so the directory stands alone.
_SIDE_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
)


def ct2_available() -> bool:
    """Whether the ctranslate2 package can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("ctranslate2") is not None


def _import_ct2() -> Any:
    try:
        import ctranslate2
    except ImportError as exc:
        raise BackendError(
            "the ct2 backend needs the ctranslate2 package (`pip install ctranslate2`); --backend hf runs the "
            "same model on transformers"
        ) from exc
    return ctranslate2


def _source_fingerprint(src: Path) -> str:
    """Changes when the source directory's files change (name, size, mtime), so a new model converts again."""
    h = hashlib.sha256(str(src.resolve()).encode())
    for f in sorted(src.iterdir()):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:12]


def converted_ct2_dir(src: Path, quantization: str, cache_root: Path | None = None) -> Path:
    """The cached CTranslate2 conversion of the HF directory `src`, converting on first use."""
    from .convert_once import convert_once

    if cache_root is None:
        from robustqa.paths import user_cache_dir

        cache_root = user_cache_dir()
    target = Path(cache_root) / "models" / f"{src.name}-ct2-{quantization}-{_source_fingerprint(src)}"
    return convert_once(target, lambda out: _convert(src, out, quantization), f"{src} (CTranslate2)")


def _convert(src: Path, out: Path, quantization: str) -> dict[str, str]:
    ct2 = _import_ct2()
    from ctranslate2.converters import TransformersConverter

    copy = [str(src / f) for f in _SIDE_FILES if (src / f).is_file()]
    # float32 keeps the source weights exactly; int8 quantises them once here instead of at every load.
    quant = None if quantization == "float32" else quantization
    TransformersConverter(str(src), copy_files=copy, low_cpu_mem_usage=True).convert(str(out), quantization=quant)
    return {"source": str(src), "quantization": quantization, "ctranslate2": ct2.__version__}


class CT2LM(LM):
    backend = "ct2"
    can_score = True

    def __init__(
        self,
        model: str | Path | None = None,
        compute_type: str = "int8",
        batch_size: int = 16,
        max_input_tokens: int = 2048,
        num_threads: int | None = None,
        model_id: str | None = None,
        prefix_sharing: bool = True,
        min_shared_prefix: int = 16,
        cache_dir: str | Path | None = None,
        pad_tolerance: int | None = PAD_TOLERANCE,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"ct2 backend: batch_size must be >= 1, got {batch_size}")
        if compute_type not in COMPUTE_TYPES:
            raise ConfigError(f"ct2 backend: compute_type must be one of {', '.join(COMPUTE_TYPES)}")
        self.model = model
        self.compute_type = compute_type
        self.batch_size = batch_size
        self.max_input_tokens = max_input_tokens
        self.num_threads = num_threads
        self.prefix_sharing = prefix_sharing
        self.min_shared_prefix = min_shared_prefix
        self.cache_dir = cache_dir
        if pad_tolerance is not None and pad_tolerance < 0:
            raise ConfigError(f"ct2 backend: pad_tolerance must be >= 0 or None, got {pad_tolerance}")
        self.pad_tolerance = pad_tolerance
        # The tokenizer side of the same model: chat template, special tokens, score_ids.
        self._hf = HFLM(model=model, max_input_tokens=max_input_tokens)
        base_id = self._hf.model_id if model_id is None else model_id
        self.model_id = base_id if model_id is not None else f"{base_id}@ct2-{compute_type}"
        self._engine: Any = None
        self._ct2_dir: Path | None = None
        self._stops: list[int] | None = None
        self._lock = threading.RLock()
        self.reloads = 0  # engines created for seeded sampling, after the first

    # -- loading ---------------------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        return self._hf.tokenizer

    @property
    def ct2_dir(self) -> Path:
        if self._ct2_dir is None:
            # int8_float32 computes on the int8 weights as well; float32 needs the full-precision conversion.
            quant = "float32" if self.compute_type == "float32" else "int8"
            root = None if self.cache_dir is None else Path(self.cache_dir)
            self._ct2_dir = converted_ct2_dir(self._hf.model_dir, quant, root)
        return self._ct2_dir

    def _threads(self) -> int:
        cores = _usable_cores()
        return min(self.num_threads or cores, cores)

    def _new_engine(self, seed: int | None = None) -> Any:
        ct2 = _import_ct2()
        if seed is not None:
            ct2.set_random_seed(seed)  # read by the new engine's worker thread when it first samples
        self._engine = None  # free the old engine's memory before loading the new one
        try:
            self._engine = ct2.Generator(
                str(self.ct2_dir), device="cpu", compute_type=self.compute_type, intra_threads=self._threads()
            )
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"ct2 backend: cannot load {self.ct2_dir}: {exc}") from exc
        return self._engine

    def load(self) -> CT2LM:
        with self._lock:
            _ = self.tokenizer
            if self._engine is None:
                self._new_engine()
            return self

    def _stop_ids(self) -> list[int]:
        if self._stops is None:
            self._stops = self._read_stop_ids()
        return self._stops

    def _read_stop_ids(self) -> list[int]:
        from transformers import GenerationConfig

        ids = {self.tokenizer.eos_token_id}
        try:
            eos = GenerationConfig.from_pretrained(str(self._hf.model_dir), local_files_only=True).eos_token_id
        except OSError:
            eos = None
        if eos is not None:
            ids.update(eos if isinstance(eos, list) else [eos])
        return sorted(i for i in ids if i is not None)

    # -- generation ------------------------------------------------------------------------------------------
    def _generate(self, requests: list[ChatRequest]) -> list[Completion]:
        with self._lock:
            self.load()
            return generate_in_batches(requests, self.batch_size, self._generate_batch)

    def _prompt_ids(self, req: ChatRequest) -> list[int]:
        tok = self.tokenizer
        text = tok.apply_chat_template(req.message_dicts, tokenize=False, add_generation_prompt=True)
        ids = list(tok(text, add_special_tokens=False)["input_ids"])
        if len(ids) > self.max_input_tokens:
            raise BackendError(
                f"ct2 backend: a prompt has {len(ids)} tokens, over max_input_tokens={self.max_input_tokens} "
                f"(starts {req.messages[-1][1][:80]!r}); give the strategy a smaller context window"
            )
        return ids

    def _generate_batch(self, batch: list[ChatRequest], params: GenerationParams, seed: int | None) -> list[Completion]:
        sample = params.temperature > 0
        engine = self._new_engine(seed) if sample and seed is not None else self._engine
        if sample and seed is not None:
            self.reloads += 1
        prompts = [self._prompt_ids(r) for r in batch]
        kwargs: dict[str, Any] = {
            "max_length": params.max_tokens,
            "include_prompt_in_result": False,
            "end_token": self._stop_ids(),
            "return_end_token": True,  # counted, like hf's stop token; dropped from the text by decode
            "beam_size": 1,
        }
        if sample:
            kwargs.update(
                sampling_topk=0,  # 0: the full distribution, shaped only by temperature and top_p
                sampling_temperature=params.temperature,
                sampling_topp=params.top_p,
                num_hypotheses=params.n,
            )
        else:
            kwargs.update(sampling_topk=1)
        results = self._run(engine, prompts, kwargs)
        tok = self.tokenizer
        out = []
        for ids, res in zip(prompts, results, strict=True):
            seqs = [list(s) for s in res.sequences_ids]
            if len(seqs) != (params.n if sample else 1):
                raise BackendError(f"ct2 backend: asked for {params.n} samples, the engine returned {len(seqs)}")
            texts = [tok.decode(s, skip_special_tokens=True) for s in seqs]  # raw, as hf returns it
            counted = sum(len(s) for s in seqs)
            if not sample:
                texts = texts * params.n
            out.append(Completion(texts, prompt_tokens=len(ids), completion_tokens=counted))
        return out

    def _run(self, engine: Any, prompts: list[list[int]], kwargs: dict[str, Any]) -> list[Any]:
        """generate_batch over the prompts, in order, one call per group of nearly equal length (`pad_tolerance`);
        prompts of a group that share a long enough prefix pass it once."""
        results: list[Any] = [None] * len(prompts)
        for group in length_groups([len(p) for p in prompts], self.pad_tolerance):
            for i, res in zip(group, self._run_group(engine, [prompts[i] for i in group], kwargs), strict=True):
                results[i] = res
        return results

    def _run_group(self, engine: Any, prompts: list[list[int]], kwargs: dict[str, Any]) -> list[Any]:
        to_tokens = self.tokenizer.convert_ids_to_tokens
        prefix = _common_prefix(prompts) if self.prefix_sharing and len(prompts) > 1 else 0
        try:
            if prefix >= self.min_shared_prefix:
                return engine.generate_batch(
                    [to_tokens(p[prefix:]) for p in prompts], static_prompt=to_tokens(prompts[0][:prefix]), **kwargs
                )
            return engine.generate_batch([to_tokens(p) for p in prompts], **kwargs)
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"ct2 backend: generation failed: {exc}") from exc

    # -- scoring -------------------------------------------------------------------------------------------
    def score_ids(self, req: ScoreRequest) -> tuple[list[int], list[int]]:
        """The prompt's and the continuation's token ids: exactly the hf backend's."""
        return self._hf.score_ids(req)

    def _score(self, requests: list[ScoreRequest]) -> list[Score]:
        with self._lock:
            self.load()
            encoded = [self.score_ids(r) for r in requests]
            check_score_lengths("ct2", encoded, requests, self.max_input_tokens)
            for _, cont_ids in encoded:
                if not cont_ids:
                    raise BackendError("ct2 backend: an empty continuation without end_turn has nothing to score")
            to_tokens = self.tokenizer.convert_ids_to_tokens
            out: list[Score] = []
            plain = [i for i, r in enumerate(requests) if r.top_k == 0]
            results = {}
            if plain:
                try:
                    scored = self._engine.score_batch(
                        [to_tokens(encoded[i][0] + encoded[i][1]) for i in plain],
                        max_batch_size=self.batch_size,
                        max_input_length=0,
                    )
                except (RuntimeError, ValueError) as exc:
                    raise BackendError(f"ct2 backend: scoring failed: {exc}") from exc
                results = dict(zip(plain, scored, strict=True))
            for i, (req, (p, c)) in enumerate(zip(requests, encoded, strict=True)):
                if req.top_k == 0:
                    # log_probs[j] is the log-probability of token j + 1 given the tokens before it.
                    lps = list(results[i].log_probs)[len(p) - 1 :]
                    out.append(Score(token_ids=list(c), token_logprobs=[float(x) for x in lps], prompt_tokens=len(p)))
                else:
                    out.append(self._score_top_k(p, c, req.top_k))
            return out

    def _score_top_k(self, p: list[int], c: list[int], k: int) -> Score:
        """One full forward pass returning every position's log-probabilities (the vocabulary at each)."""
        import numpy as np

        try:
            logprobs = np.asarray(self._engine.forward_batch([p + c], return_log_probs=True))[0]
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"ct2 backend: scoring failed: {exc}") from exc
        rows = logprobs[len(p) - 1 : len(p) + len(c) - 1]  # row j predicts token len(p) + j
        token_lp = [float(rows[j, t]) for j, t in enumerate(c)]
        top = np.argsort(-rows, axis=1, kind="stable")[:, :k]
        return Score(
            token_ids=list(c),
            token_logprobs=token_lp,
            prompt_tokens=len(p),
            top_ids=top.tolist(),
            top_logprobs=np.take_along_axis(rows, top, axis=1).astype(float).tolist(),
        )

    def close(self) -> None:
        self._engine = None


def length_groups(lengths: list[int], tolerance: int | None) -> list[list[int]]:
    """Indices of the prompts, grouped so that no group's lengths differ by more than `tolerance` tokens (None:
    one group). Groups follow length order; a prompt with no neighbour that close is a group of one."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    if tolerance is None:
        return [order] if order else []
    groups: list[list[int]] = []
    for i in order:
        if groups and lengths[i] - lengths[groups[-1][0]] <= tolerance:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _common_prefix(prompts: list[list[int]]) -> int:
    """Length of the prefix every prompt shares, leaving at least one token of each prompt after it."""
    first = prompts[0]
    limit = min(len(p) for p in prompts) - 1
    n = 0
    while n < limit and all(p[n] == first[n] for p in prompts):
        n += 1
    return n


def default_backend(model: str | Path | None) -> str:
    """The backend `auto` resolves to: ct2 for the embedded model when ctranslate2 is installed, else hf."""
    if model is None and ct2_available():
        return "ct2"
    return "hf"
