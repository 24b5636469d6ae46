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

Workers. The engine runs `workers` jobs at once (CTranslate2's `inter_threads`), each on
`num_threads // workers` cores (`intra_threads`); by default one worker per core, one core each. A small model
decodes one sequence no faster on two OpenMP threads than on one (the per-step matrices are too small to split),
so on 2 cores two single-threaded workers decoding different prompts did the same work 2.4-2.7x faster than one
two-threaded engine (benchmarks/ct2_batching.py, `workers`). Greedy outputs do not depend on the worker.

Seeding. CTranslate2 keeps one random generator per worker thread, seeded from `set_random_seed` when that thread
first samples; setting the seed again later has no effect on existing threads, and which worker of a pool takes a
job is not fixed. So a seeded sampled batch runs on `seeded_shards` freshly created one-worker engines (fewer when
the batch has fewer jobs): engine k is created after `set_random_seed(shard_seed(seed, k))` and draws one token at
once, so its thread's generator is seeded before the next engine's seed is set; the batch's length groups are
assigned to the engines by a fixed rule and each engine runs its jobs in order, the engines in parallel. The same
requests in the same batches give the same texts on any machine (the shard count is a setting, not the number of
cores). That costs a model load per shard per seeded sampled batch (the embedded model: about 0.25 s in int8,
seconds in float32 on 2 cores), counted as LM time.

Length groups. A batch goes to the engine as groups of prompts whose lengths differ by at most `pad_tolerance`
tokens (a prompt with no such neighbour is a job of its own), and the groups are spread over the workers:
CTranslate2 forwards a batch's prompts at once only up to the shortest one, so padded batches decoded slower than
one prompt at a time (benchmarks/ct2_batching.py). Scoring is grouped the same way by sequence length.

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
# spread costs a decoding step of the whole batch. On 2 cores with one engine thread pool
# (benchmarks/results/ct2_batching.json; 96-token prompts, 16 new tokens) a batch spread over 4 tokens ran 3.9x
# faster than one by one, over 16 tokens 2.7x, over 64 tokens 1.0x; with two workers running single prompts in
# parallel, only nearly equal lengths still gain from sharing a call.
PAD_TOLERANCE: int | None = 4
# Engines a seeded sampled batch is spread over. Fixed rather than one per core, so that seeded samples do not
# depend on the machine.
SEEDED_SHARDS = 2
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
        workers: int | None = None,
        seeded_shards: int = SEEDED_SHARDS,
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
        if workers is not None and workers < 1:
            raise ConfigError(f"ct2 backend: workers must be >= 1, got {workers}")
        self.workers = workers
        if seeded_shards < 1:
            raise ConfigError(f"ct2 backend: seeded_shards must be >= 1, got {seeded_shards}")
        self.seeded_shards = seeded_shards
        # The tokenizer side of the same model: chat template, special tokens, score_ids.
        self._hf = HFLM(model=model, max_input_tokens=max_input_tokens)
        base_id = self._hf.model_id if model_id is None else model_id
        self.model_id = base_id if model_id is not None else f"{base_id}@ct2-{compute_type}"
        self._engine: Any = None  # the worker pool: greedy and unseeded work, scoring
        self._seeded: list[Any] = []  # one-worker engines, recreated per seeded sampled batch
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

    def worker_layout(self) -> tuple[int, int]:
        """(workers, threads per worker) of the pool engine: `workers` jobs at once (default: one per core the
        backend uses), the backend's cores shared among them."""
        threads = self._threads()
        workers = self.workers or threads
        return workers, max(1, threads // workers)

    def _generator(self, workers: int, threads: int) -> Any:
        try:
            return _import_ct2().Generator(
                str(self.ct2_dir),
                device="cpu",
                compute_type=self.compute_type,
                inter_threads=workers,
                intra_threads=threads,
            )
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"ct2 backend: cannot load {self.ct2_dir}: {exc}") from exc

    def _seeded_engines(self, seed: int, jobs: int) -> list[Any]:
        """Fresh one-worker engines (at most `seeded_shards`, at most one per job), engine k's random generator
        seeded from shard_seed(seed, k)."""
        ct2 = _import_ct2()
        self._seeded = []  # free the old engines' memory before loading new ones
        count = max(1, min(self.seeded_shards, jobs))
        threads = max(1, self._threads() // count)
        first_token = self.tokenizer.convert_ids_to_tokens(self._stop_ids()[:1])
        for k in range(count):
            ct2.set_random_seed(shard_seed(seed, k))
            engine = self._generator(1, threads)
            # The worker thread seeds its generator when it first samples: let it sample now, before the next
            # engine's seed is set.
            try:
                engine.generate_batch([first_token], max_length=1, sampling_topk=0, include_prompt_in_result=False)
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"ct2 backend: cannot sample from {self.ct2_dir}: {exc}") from exc
            self._seeded.append(engine)
        self.reloads += count
        return self._seeded

    def load(self) -> CT2LM:
        with self._lock:
            _ = self.tokenizer
            if self._engine is None:
                self._engine = self._generator(*self.worker_layout())
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
        results = self._run(prompts, kwargs, seed if sample else None)
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

    def _run(self, prompts: list[list[int]], kwargs: dict[str, Any], seed: int | None) -> list[Any]:
        """generate_batch over the prompts, one job per group of nearly equal length (`pad_tolerance`), all
        submitted before any is awaited so that they run in parallel: on the worker pool, or for a seeded sampled
        batch on its seeded engines (groups assigned by `shard_groups`). Prompts of a group that share a long
        enough prefix pass it once. Results come back in the prompts' order."""
        groups = length_groups([len(p) for p in prompts], self.pad_tolerance)
        if seed is None:
            engines = [self._engine] * len(groups)
        else:
            seeded = self._seeded_engines(seed, len(groups))
            costs = [len(g) * (max(len(prompts[i]) for i in g) + kwargs["max_length"]) for g in groups]
            engines = [seeded[k] for k in shard_groups(costs, len(seeded))]
        pending = [
            self._submit_group(engine, [prompts[i] for i in group], kwargs)
            for engine, group in zip(engines, groups, strict=True)
        ]
        done = _gathered(groups, pending, "generation")
        return [done[i] for i in range(len(prompts))]

    def _submit_group(self, engine: Any, prompts: list[list[int]], kwargs: dict[str, Any]) -> list[Any]:
        to_tokens = self.tokenizer.convert_ids_to_tokens
        prefix = _common_prefix(prompts) if self.prefix_sharing and len(prompts) > 1 else 0
        try:
            if prefix >= self.min_shared_prefix:
                return engine.generate_batch(
                    [to_tokens(p[prefix:]) for p in prompts],
                    static_prompt=to_tokens(prompts[0][:prefix]),
                    asynchronous=True,
                    **kwargs,
                )
            return engine.generate_batch([to_tokens(p) for p in prompts], asynchronous=True, **kwargs)
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
            out: list[Score] = []
            plain = [i for i, r in enumerate(requests) if r.top_k == 0]
            results = self._score_plain({i: encoded[i][0] + encoded[i][1] for i in plain})
            for i, (req, (p, c)) in enumerate(zip(requests, encoded, strict=True)):
                if req.top_k == 0:
                    # log_probs[j] is the log-probability of token j + 1 given the tokens before it.
                    lps = list(results[i].log_probs)[len(p) - 1 :]
                    out.append(Score(token_ids=list(c), token_logprobs=[float(x) for x in lps], prompt_tokens=len(p)))
                else:
                    out.append(self._score_top_k(p, c, req.top_k))
            return out

    def _score_plain(self, sequences: dict[int, list[int]]) -> dict[int, Any]:
        """score_batch over the sequences, one job per group of nearly equal length (at most `batch_size`),
        all submitted before any is awaited."""
        to_tokens = self.tokenizer.convert_ids_to_tokens
        keys = list(sequences)
        groups = [
            group[k : k + self.batch_size]
            for group in length_groups([len(sequences[i]) for i in keys], self.pad_tolerance)
            for k in range(0, len(group), self.batch_size)
        ]
        try:
            pending = [
                self._engine.score_batch(
                    [to_tokens(sequences[keys[j]]) for j in group], max_input_length=0, asynchronous=True
                )
                for group in groups
            ]
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"ct2 backend: scoring failed: {exc}") from exc
        return {keys[j]: result for j, result in _gathered(groups, pending, "scoring").items()}

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
        self._seeded = []


def _gathered(groups: list[list[int]], pending: list[list[Any]], what: str) -> dict[int, Any]:
    """The results of asynchronous engine jobs, by the index each group gives its items; the engine's errors
    become BackendError."""
    try:
        return {
            i: future.result()
            for group, futures in zip(groups, pending, strict=True)
            for i, future in zip(group, futures, strict=True)
        }
    except (RuntimeError, ValueError) as exc:
        raise BackendError(f"ct2 backend: {what} failed: {exc}") from exc


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


def shard_seed(seed: int, shard: int) -> int:
    """The seed of a seeded batch's engine `shard`: the batch's seed for the first, spread apart for the others."""
    return (seed + shard * 0x9E3779B1) % 2**32


def shard_groups(costs: list[int], shards: int) -> list[int]:
    """The engine each job runs on: the costliest job first, each to the least loaded engine (the lowest index
    on ties). Depends only on the costs, so a seeded batch always splits the same way."""
    load = [0] * shards
    out = [0] * len(costs)
    for j in sorted(range(len(costs)), key=lambda j: (-costs[j], j)):
        k = min(range(shards), key=lambda k: (load[k], k))
        out[j] = k
        load[k] += costs[j]
    return out


def _common_prefix(prompts: list[list[int]]) -> int:
    """Length of the prefix every prompt shares, leaving at least one token of each prompt after it."""
    first = prompts[0]
    limit = min(len(p) for p in prompts) - 1
    n = 0
    while n < limit and all(p[n] == first[n] for p in prompts):
        n += 1
    return n


# What `auto` runs the embedded model in. float32 gave transformers' greedy answers exactly on 20 of 20 real
# prompts, int8 on 2 of 20 (benchmarks/README.md, "Engines"); `--backend ct2` is int8, the faster choice.
AUTO_COMPUTE_TYPE = "float32"


def default_backend(model: str | Path | None) -> str:
    """The backend `auto` resolves to: ct2 (in AUTO_COMPUTE_TYPE) for the embedded model when ctranslate2 is
    installed, else hf."""
    if model is None and ct2_available():
        return "ct2"
    return "hf"
