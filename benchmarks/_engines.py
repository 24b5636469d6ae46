"""Engine figures for benchmarks/speed.py (issue 16): tokens/s of the transformers and CTranslate2 engines at
equal batch, end-to-end pairs per minute, the engine's own limit on the same calls, and what prefix sharing buys.

The limit: while a strategy runs on the ct2 backend, every call the backend makes into the CTranslate2 engine
(generate_batch, score_batch, forward_batch, with its exact token lists and options) is recorded. Afterwards the
same calls run back to back on the bare engine, nothing else in between; that time is the least any framework
could spend producing the same tokens with this engine. A seeded sampled call is replayed on a fresh engine
seeded the same way (created outside the timed part), so it draws the same tokens; the replay checks that it
generated as many tokens as the run did. "Framework + strategy cost over the limit" = run seconds / replay
seconds - 1, the median over repeated run + replay pairs (`end_to_end`).
"""

from __future__ import annotations

import os
import statistics
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
    """Stands in for the backend's CTranslate2 engine: forwards every call and records it.

    The backend submits a batch's jobs asynchronously and then awaits them, so the calls are recorded in rounds:
    a round is the calls submitted before the backend awaits any of them, and its engine time runs from its first
    submission to the last result it waited for. A synchronous call is a round of its own."""

    def __init__(
        self, inner: Any, seed: int | None, log: list[dict[str, Any]], state: dict[str, Any], shard: tuple[int, int]
    ) -> None:
        self._inner, self._seed, self._log, self._state, self._shard = inner, seed, log, state, shard

    def _call(self, method: str, args: tuple, kwargs: dict) -> Any:
        state = self._state
        is_async = bool(kwargs.get("asynchronous"))
        if state["awaited"] or not is_async:
            state["round"] += 1
            state["awaited"] = False
        entry: dict[str, Any] = {
            "method": method,
            "args": args,
            "kwargs": kwargs,
            "seed": self._seed,
            "shard": self._shard,  # (this engine, of how many seeded engines); (0, 1) for the pool
            "round": state["round"],
            "submitted": time.perf_counter(),
        }
        self._log.append(entry)
        out = getattr(self._inner, method)(*args, **kwargs)
        if not is_async:
            entry["finished"] = time.perf_counter()
            state["awaited"] = True
            if method == "generate_batch":
                entry["seqs"] = [[list(s) for s in r.sequences_ids] for r in out]
            return out
        entry["seqs"] = [None] * len(out) if method == "generate_batch" else None
        return [_RecordedFuture(f, entry, k, state) for k, f in enumerate(out)]

    def generate_batch(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("generate_batch", args, kwargs)

    def score_batch(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("score_batch", args, kwargs)

    def forward_batch(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("forward_batch", args, kwargs)


class _RecordedFuture:
    """One asynchronous result; awaiting it closes the round and records when it came back (and its tokens)."""

    def __init__(self, inner: Any, entry: dict[str, Any], index: int, state: dict[str, Any]) -> None:
        self._inner, self._entry, self._index, self._state = inner, entry, index, state

    def result(self) -> Any:
        res = self._inner.result()
        self._state["awaited"] = True
        self._entry["finished"] = max(self._entry.get("finished", 0.0), time.perf_counter())
        if self._entry["seqs"] is not None:
            self._entry["seqs"][self._index] = [list(s) for s in res.sequences_ids]
        return res


def record_engine_calls(lm: CT2LM) -> list[dict[str, Any]]:
    """Wrap the backend's engines (the worker pool, and every seeded engine it creates from now on) in
    RecordingEngines; returns the (growing) call log."""
    log: list[dict[str, Any]] = []
    state: dict[str, Any] = {"round": 0, "awaited": True}
    lm.load()
    lm._engine = RecordingEngine(lm._engine, None, log, state, (0, 1))
    original = lm._seeded_engines

    def seeded_engines(seed: int, jobs: int) -> list[Any]:
        engines = original(seed, jobs)
        lm._seeded = [RecordingEngine(e, seed, log, state, (k, len(engines))) for k, e in enumerate(engines)]
        return lm._seeded

    lm._seeded_engines = seeded_engines  # type: ignore[method-assign]
    return log


def stop_recording(lm: CT2LM) -> None:
    """Undo `record_engine_calls`: the class's seeded engines again, and a fresh worker pool on the next load."""
    del lm._seeded_engines
    lm._engine, lm._seeded = None, []


def _rounds(log: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    rounds: dict[int, list[dict[str, Any]]] = {}
    for call in log:
        rounds.setdefault(call["round"], []).append(call)
    return [rounds[k] for k in sorted(rounds)]


def replay(lm: CT2LM, log: list[dict[str, Any]]) -> dict[str, Any]:
    """The recorded rounds, back to back on bare engines of the backend's layout (the worker pool; for a seeded
    round, fresh seeded engines made the backend's way); each round's calls are submitted together and awaited
    together, as the backend does. Only the rounds themselves are timed."""
    import ctranslate2

    workers, threads = lm.worker_layout()
    pool = ctranslate2.Generator(
        str(lm.ct2_dir), device="cpu", compute_type=lm.compute_type, inter_threads=workers, intra_threads=threads
    )
    seconds, tokens, run_tokens, differing, in_run = 0.0, 0, 0, 0, 0.0
    for calls in _rounds(log):
        seed, (_, shards) = calls[0]["seed"], calls[0]["shard"]
        # not timed: a seeded round needs the same seeding to draw the same tokens
        seeded = CT2LM._seeded_engines(lm, seed, shards) if seed is not None else []
        in_run += max(c.get("finished", c["submitted"]) for c in calls) - min(c["submitted"] for c in calls)
        t = time.perf_counter()
        submitted = [
            getattr(seeded[c["shard"][0]] if seeded else pool, c["method"])(*c["args"], **c["kwargs"]) for c in calls
        ]
        outs = [[f.result() for f in out] if c["kwargs"].get("asynchronous") else out
                for c, out in zip(calls, submitted, strict=True)]  # fmt: skip
        seconds += time.perf_counter() - t
        for call, out in zip(calls, outs, strict=True):
            if call["method"] == "generate_batch":
                seqs = [[list(s) for s in r.sequences_ids] for r in out]
                tokens += sum(len(s) for r in seqs for s in r)
                run_tokens += sum(len(s) for r in call["seqs"] for s in r)
                differing += seqs != call["seqs"]
    return {
        "calls": len(log),
        "rounds": len(_rounds(log)),
        "seconds": round(seconds, 2),
        "in_run_engine_seconds": round(in_run, 2),
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
    repeats: int = 1,
) -> list[dict[str, Any]]:
    """Each strategy on `engine` (the strategy warmed up first on a tiny run, so models it loads are not counted);
    pairs per minute and, on ct2, the replayed limit.

    On ct2 the run and its replay are repeated `repeats` times, each replay right after its run: the same engine
    calls replayed on the same machine vary by several percent from one replay to the next (other jobs, memory
    placement), so one run against one replay cannot judge a 5% goal. The figure is the median over repeats of
    run seconds / replay seconds - 1, every pair kept beside it. transformers runs once (it has no replay)."""
    lm = make_lm(engine, num_threads=threads)
    rows = strategy_rows(lm, engine, docs, strategies, names, budget, seed, tmp, repeats)
    lm.close()
    return rows


def strategy_rows(
    lm: LM,
    engine: str,
    docs: list[Document],
    strategies: list[Any],
    names: list[str],
    budget: int,
    seed: int,
    tmp: Path,
    repeats: int,
) -> list[dict[str, Any]]:
    """end_to_end's rows on a given backend (named `engine` in the rows)."""
    rows = []
    for name, strategy in zip(names, strategies, strict=True):
        generate_records(
            docs[:1], strategy, lm, 1, seed + 1, tmp / f"warm_{engine}_{name}.jsonl", overwrite=True, progress=False
        )
        pairs: list[dict[str, Any]] = []
        for _ in range(repeats if isinstance(lm, CT2LM) else 1):
            row, pair = _one_run(docs, strategy, name, lm, engine, budget, seed, tmp)
            if pair is not None:
                pairs.append(pair)
        if pairs:
            costs = [p["cost_over_limit"] for p in pairs if p["cost_over_limit"] is not None]
            seconds = statistics.median(p["seconds"] for p in pairs)
            row["repeats"] = pairs
            row["cost_over_limit"] = round(statistics.median(costs), 4) if costs else None
            row["seconds"] = round(seconds, 2)  # the median run; lm_seconds and the limit are the last repeat's
            row["limit_seconds_median"] = round(statistics.median(p["limit_seconds"] for p in pairs), 2)
            row["pairs_per_minute_planned"] = round(60 * row["planned"] / seconds, 2) if seconds else None
            row["kept_pairs_per_minute"] = round(60 * row["kept"] / seconds, 2) if seconds else None
            # the strategy is seeded: every repeat must draw the same tokens, or the repeats measure different work
            row["same_tokens_every_repeat"] = len({p["generated_tokens"] for p in pairs}) == 1
        rows.append(row)
    return rows


def _one_run(
    docs: list[Document], strategy: Any, name: str, lm: LM, engine: str, budget: int, seed: int, tmp: Path
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One timed run of `strategy`; on ct2 also its replayed limit (the row, and the run/replay pair)."""
    log = record_engine_calls(lm) if isinstance(lm, CT2LM) else None
    reloads0 = getattr(lm, "reloads", 0)
    load_before = round(os.getloadavg()[0], 2)  # other jobs on the box show up here, and in the figures
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
    if log is None:
        return row, None
    assert isinstance(lm, CT2LM)
    row["seeded_engine_reloads"] = lm.reloads - reloads0
    limit = replay(lm, log)
    row["limit"] = limit
    row["cost_over_limit"] = round(s.seconds / limit["seconds"] - 1, 4) if limit["seconds"] else None
    stop_recording(lm)
    pair = {
        "seconds": row["seconds"],
        "limit_seconds": limit["seconds"],
        "cost_over_limit": row["cost_over_limit"],
        "generated_tokens": limit["run_generated_tokens"],
        "load_average_1min_before": load_before,
    }
    return row, pair


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
