"""Engine figures for benchmarks/speed.py (issue 16): tokens/s of the transformers and CTranslate2 engines at
equal batch, end-to-end pairs per minute, the engine's own limit on the same calls, and what prefix sharing buys.

The limit: while a strategy runs on the ct2 backend, every call the backend makes into the CTranslate2 engine
(generate_batch, score_batch, forward_batch, with its exact token lists and options) is recorded. Afterwards the
same calls run back to back on the bare engine, nothing else in between; that time is the least any framework
could spend producing the same tokens with this engine. A seeded sampled call is replayed on a fresh engine
seeded the same way (created outside the timed part), so it draws the same tokens; the replay checks that it
generated as many tokens as the run did. "Framework + strategy cost over the limit" = run seconds / replay
seconds - 1.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from robustqa.lm.base import LM, ChatRequest
from robustqa.lm.ct2 import CT2LM
from robustqa.lm.factory import make_lm
from robustqa.runner import generate_records
from robustqa.types import Document


def prompts_for(docs: list[Document], n: int, new_tokens: int) -> list[ChatRequest]:
    """n greedy "write one question" prompts over the documents' first 1200 characters (cycled)."""
    cycled = (docs * (n // max(1, len(docs)) + 1))[:n]
    return [
        ChatRequest.of(
            [{"role": "user", "content": f"Write one question about this text.\n\n{d.text[:1200]}"}],
            max_tokens=new_tokens,
            temperature=0.0,
        )
        for d in cycled
    ]


def throughput(lm: LM, requests: list[ChatRequest], batches: tuple[int, ...] = (1, 16)) -> dict[str, Any]:
    """Generated tokens/s of `lm` on the same greedy requests at each batch size (after one warm-up call)."""
    t0 = time.perf_counter()
    lm.load()  # type: ignore[attr-defined]
    load_s = time.perf_counter() - t0
    lm.generate(requests[:1])
    rows: dict[str, Any] = {"load_seconds": round(load_s, 2)}
    for batch in batches:
        lm.batch_size = batch  # type: ignore[attr-defined]
        t = time.perf_counter()
        comps = lm.generate(requests)
        seconds = time.perf_counter() - t
        tokens = sum(c.completion_tokens for c in comps)
        rows[f"batch{batch}"] = {
            "seconds": round(seconds, 2),
            "new_tokens": tokens,
            "tok_s": round(tokens / seconds, 2),
        }
    return rows


class RecordingEngine:
    """Stands in for the backend's CTranslate2 engine: forwards every call and records it (with its time)."""

    def __init__(self, inner: Any, seed: int | None, log: list[dict[str, Any]]) -> None:
        self._inner, self._seed, self._log = inner, seed, log

    def _call(self, method: str, args: tuple, kwargs: dict) -> Any:
        t = time.perf_counter()
        out = getattr(self._inner, method)(*args, **kwargs)
        seconds = time.perf_counter() - t
        sequences = [[list(s) for s in r.sequences_ids] for r in out] if method == "generate_batch" else None
        self._log.append(
            {
                "method": method,
                "args": args,
                "kwargs": kwargs,
                "seed": self._seed,
                "seconds": seconds,
                "seqs": sequences,
            }
        )
        return out

    def generate_batch(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("generate_batch", args, kwargs)

    def score_batch(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("score_batch", args, kwargs)

    def forward_batch(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("forward_batch", args, kwargs)


def record_engine_calls(lm: CT2LM) -> list[dict[str, Any]]:
    """Wrap every engine `lm` creates from now on in a RecordingEngine; returns the (growing) call log."""
    log: list[dict[str, Any]] = []
    lm.load()
    lm._engine = RecordingEngine(lm._engine, None, log)
    original = lm._new_engine

    def new_engine(seed: int | None = None) -> Any:
        lm._engine = RecordingEngine(original(seed), seed, log)
        return lm._engine

    lm._new_engine = new_engine  # type: ignore[method-assign]
    return log


def replay(lm: CT2LM, log: list[dict[str, Any]]) -> dict[str, Any]:
    """The recorded calls, back to back on a bare engine; only the calls themselves are timed."""
    import ctranslate2

    def fresh(seed: int | None) -> Any:
        if seed is not None:
            ctranslate2.set_random_seed(seed)
        return ctranslate2.Generator(
            str(lm.ct2_dir), device="cpu", compute_type=lm.compute_type, intra_threads=lm._threads()
        )

    engine = fresh(None)
    seconds, tokens, run_tokens, differing = 0.0, 0, 0, 0
    for call in log:
        if call["seed"] is not None and call["method"] == "generate_batch":
            engine = fresh(call["seed"])  # not timed: the bare engine needs the same seeding to draw the same tokens
        t = time.perf_counter()
        out = getattr(engine, call["method"])(*call["args"], **call["kwargs"])
        seconds += time.perf_counter() - t
        if call["method"] == "generate_batch":
            seqs = [[list(s) for s in r.sequences_ids] for r in out]
            tokens += sum(len(s) for r in seqs for s in r)
            run_tokens += sum(len(s) for r in call["seqs"] for s in r)
            differing += seqs != call["seqs"]
    return {
        "calls": len(log),
        "seconds": round(seconds, 2),
        "in_run_engine_seconds": round(sum(c["seconds"] for c in log), 2),
        "generated_tokens": tokens,
        "run_generated_tokens": run_tokens,
        "calls_with_other_tokens": differing,  # 0: the replay drew exactly the run's tokens
    }


def end_to_end(
    docs: list[Document],
    strategies: list[Any],
    names: list[str],
    engine: str,
    budget: int,
    seed: int,
    tmp: Path,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Each strategy once on `engine` (the strategy warmed up first on a tiny run, so models it loads are not
    counted); pairs per minute and, on ct2, the replayed limit."""
    lm = make_lm(engine, num_threads=threads)
    rows = []
    for name, strategy in zip(names, strategies, strict=True):
        generate_records(
            docs[:1], strategy, lm, 1, seed + 1, tmp / f"warm_{engine}_{name}.jsonl", overwrite=True, progress=False
        )
        log = record_engine_calls(lm) if isinstance(lm, CT2LM) else None
        reloads0 = getattr(lm, "reloads", 0)
        out = tmp / f"{engine}_{name}.jsonl"
        s = generate_records(docs, strategy, lm, budget, seed, out, overwrite=True, progress=False)
        row: dict[str, Any] = {
            "engine": engine,
            "strategy": name,
            "planned": s.planned,
            "kept": s.kept,
            "seconds": round(s.seconds, 2),
            "lm_seconds": round(s.lm_seconds, 2),
            "pairs_per_minute_planned": round(60 * s.planned / s.seconds, 2) if s.seconds else None,
            "kept_pairs_per_minute": round(60 * s.kept / s.seconds, 2) if s.seconds else None,
            "overhead_share": round((s.seconds - s.lm_seconds) / s.seconds, 4) if s.seconds else None,
            "lm_requests": s.usage.get("requests"),
            "completion_tokens": s.usage.get("completion_tokens"),
        }
        if log is not None:
            row["seeded_engine_reloads"] = lm.reloads - reloads0
            limit = replay(lm, log)
            row["limit"] = limit
            row["cost_over_limit"] = round(s.seconds / limit["seconds"] - 1, 4) if limit["seconds"] else None
            del lm._new_engine  # the class method again
            lm._engine = None
        rows.append(row)
    lm.close()
    return rows


def prefix_sharing(docs: list[Document], new_tokens: int, threads: int | None = None) -> dict[str, Any]:
    """ct2: one context with 8 questions, with and without the shared prefix passed once; and n=4 samples of one
    prompt as num_hypotheses against 4 separate prompts."""
    context = " ".join(d.text for d in docs)[:2400]
    questions = [
        "Who is mentioned first?",
        "When did it happen?",
        "Where did it happen?",
        "What is the main event?",
        "Write one question about the text.",
        "Name one number in the text.",
        "Why does it matter?",
        "What happened next?",
    ]
    reqs = [
        ChatRequest.of([{"role": "system", "content": context}, {"role": "user", "content": q}], max_tokens=new_tokens)
        for q in questions
    ]
    out: dict[str, Any] = {"context_chars": len(context), "questions": len(reqs), "max_new_tokens": new_tokens}
    for label, sharing in (("shared_prefix", True), ("whole_prompts", False)):
        lm = CT2LM(prefix_sharing=sharing, num_threads=threads).load()
        lm.generate(reqs[:2])
        t = time.perf_counter()
        comps = lm.generate(reqs)
        out[label] = {
            "seconds": round(time.perf_counter() - t, 2),
            "new_tokens": sum(c.completion_tokens for c in comps),
        }
        out["prompt_tokens"] = comps[0].prompt_tokens
        lm.close()
    out["speedup"] = round(out["whole_prompts"]["seconds"] / out["shared_prefix"]["seconds"], 3)
    lm = CT2LM(num_threads=threads).load()
    one = reqs[4]
    sampled = ChatRequest(one.messages, one.params.with_(temperature=0.7, n=4))
    separate = [ChatRequest(one.messages, one.params.with_(temperature=0.7, n=1)) for _ in range(4)]
    lm.generate([sampled])
    t = time.perf_counter()
    a = lm.generate([sampled])
    hyp = time.perf_counter() - t
    t = time.perf_counter()
    b = lm.generate(separate)
    sep = time.perf_counter() - t
    out["n4_num_hypotheses"] = {"seconds": round(hyp, 2), "new_tokens": a[0].completion_tokens}
    out["n4_separate_prompts"] = {"seconds": round(sep, 2), "new_tokens": sum(c.completion_tokens for c in b)}
    out["n4_speedup_tokens_per_s"] = round(
        (a[0].completion_tokens / hyp) / (sum(c.completion_tokens for c in b) / sep), 3
    )
    lm.close()
    return out
