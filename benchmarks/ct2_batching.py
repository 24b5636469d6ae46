"""Where CTranslate2's batching stops paying on this CPU (issue 16, the batch-16 goal): the bare engine, no robustqa
code in the timed part, on the same "write one question" prompts over XQuAD paragraphs.

For each prompt set it times the prompts one at a time, as one batch, and in batches of prompts sorted by length,
greedy, with a fixed number of new tokens (min_length = max_length, so every row decodes the same tokens):
- equal-length sets (the prompts of at least L tokens, cut to L) at several L: what batching buys when nothing is
  padded, as the prompt grows;
- spread sets (prompt i of n cut to L + i * spread / (n - 1) tokens): how much padding a batch tolerates;
- the real, ragged prompts: what the backend meets, also in the backend's length groups (`CT2LM.pad_tolerance`,
  prompts whose lengths differ by at most that many tokens share a call) at several tolerances;
- workers: the real prompts on the backend's worker pool (`CT2LM.workers`: several single-threaded workers, the
  length groups submitted at once and run in parallel) against one engine using every core, one prompt at a time.
The sections before "workers" run on one engine using every core (one worker), as the backend did before it had
a pool.

    python benchmarks/ct2_batching.py --out benchmarks/results/ct2_batching.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import RunStart, add_data_argument, data_file, run_header, shown_path
from _engines import prompts_for

from robustqa.io.loaders import load_documents
from robustqa.lm.ct2 import CT2LM, length_groups


def timed(run: Callable[[], list[Any]], tokens: list[int]) -> float:
    """Seconds `run` takes; appends the number of tokens its results hold to `tokens`."""
    t = time.perf_counter()
    results = run()
    seconds = round(time.perf_counter() - t, 2)
    tokens.append(sum(len(r.sequences_ids[0]) for r in results))
    return seconds


def ratio(slow: float, fast: float) -> float | None:
    """slow / fast to two decimals; None when `fast` rounded to 0 s (tiny models in tests)."""
    return round(slow / fast, 2) if fast else None


def fixed_greedy(new_tokens: int) -> dict[str, Any]:
    """Greedy decoding of exactly `new_tokens` tokens per prompt, so every way decodes the same tokens."""
    return {"max_length": new_tokens, "min_length": new_tokens, "include_prompt_in_result": False, "sampling_topk": 1}


def one_set(engine: Any, prompts: Sequence[list[str]], new_tokens: int, group: int) -> dict[str, Any]:
    kw = fixed_greedy(new_tokens)
    by_length = sorted(prompts, key=len)
    tokens: list[int] = []
    row: dict[str, Any] = {
        "prompts": len(prompts),
        "prompt_tokens": [min(map(len, prompts)), max(map(len, prompts))],
        "one_by_one_s": timed(lambda: [r for p in prompts for r in engine.generate_batch([p], **kw)], tokens),
        "one_batch_s": timed(lambda: engine.generate_batch(list(prompts), **kw), tokens),
        f"sorted_batches_of_{group}_s": timed(
            lambda: [
                r
                for i in range(0, len(by_length), group)
                for r in engine.generate_batch(by_length[i : i + group], **kw)
            ],
            tokens,
        ),
        "new_tokens_per_way": tokens,  # one by one, one batch, sorted batches: equal, or the ways are not comparable
    }
    row["batch_speedup"] = ratio(row["one_by_one_s"], row["one_batch_s"])
    return row


def pooled(engines: dict[str, Any], prompts: Sequence[list[str]], new_tokens: int, tolerances: Sequence[int]):
    """The prompts one at a time on each engine of `engines` (layouts), and on the pool engine (`engines["pool"]`)
    as the backend sends them: one asynchronous job per length group, every group submitted before any result
    is awaited."""
    kw = fixed_greedy(new_tokens)
    tokens: list[int] = []
    row: dict[str, Any] = {
        f"{name}_one_by_one_s": timed(lambda e=e: [r for p in prompts for r in e.generate_batch([p], **kw)], tokens)
        for name, e in engines.items()
    }
    pool = engines["pool"]
    for tolerance in tolerances:
        groups = [[prompts[i] for i in g] for g in length_groups([len(p) for p in prompts], tolerance)]

        def run(groups: list[list[list[str]]] = groups) -> list[Any]:
            futures = [pool.generate_batch(g, asynchronous=True, **kw) for g in groups]
            return [f.result() for fs in futures for f in fs]

        row[f"pool_tolerance_{tolerance}_s"] = timed(run, tokens)
        row[f"pool_tolerance_{tolerance}_groups"] = len(groups)
    row["new_tokens_per_way"] = tokens
    base = row["one_engine_all_cores_one_by_one_s"]
    row["speedup_over_one_engine"] = {
        k[: -len("_s")]: ratio(base, v) for k, v in row.items() if k.endswith("_s") and k.startswith("pool")
    }
    return row


def grouped(engine: Any, prompts: Sequence[list[str]], new_tokens: int, tolerance: int) -> dict[str, Any]:
    """The prompts one by one against the backend's length groups at `tolerance` (one call per group)."""
    kw = fixed_greedy(new_tokens)
    groups = [[prompts[i] for i in g] for g in length_groups([len(p) for p in prompts], tolerance)]
    tokens: list[int] = []
    row: dict[str, Any] = {
        "tolerance": tolerance,
        "group_sizes": [len(g) for g in groups],
        "one_by_one_s": timed(lambda: [r for p in prompts for r in engine.generate_batch([p], **kw)], tokens),
        "grouped_s": timed(lambda: [r for g in groups for r in engine.generate_batch(g, **kw)], tokens),
        "new_tokens_per_way": tokens,
    }
    row["speedup"] = ratio(row["one_by_one_s"], row["grouped_s"])
    return row


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap, "xquad_en_dev.json")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--lengths", default="64,128,192", help="equal prompt lengths to cut to (tokens)")
    ap.add_argument("--group", type=int, default=4, help="batch size of the length-sorted batches")
    ap.add_argument("--spread-base", type=int, default=96, help="shortest prompt of the spread sets (tokens)")
    ap.add_argument("--spreads", default="0,4,16,64", help="length spreads of the spread sets (tokens)")
    ap.add_argument("--tolerances", default="0,4,16", help="pad_tolerance values tried on the real prompts")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    start = RunStart()
    docs = load_documents([data_file(args.data, "xquad_en_dev.json")])[: args.prompts]
    lm = CT2LM(workers=1).load()  # one engine on every core, as before the worker pool
    to_tokens = lm.tokenizer.convert_ids_to_tokens
    ragged = [to_tokens(lm._prompt_ids(r)) for r in prompts_for(docs, args.prompts, args.new_tokens)]
    engine = lm._engine
    pool_lm = CT2LM().load()
    one_thread = CT2LM(workers=1, num_threads=1).load()
    for e in (engine, pool_lm._engine, one_thread._engine):
        e.generate_batch(ragged[:2], max_length=4, include_prompt_in_result=False, sampling_topk=1)  # warm-up
    sets: dict[str, Any] = {}
    for length in (int(x) for x in args.lengths.split(",")):
        cut = [p[:length] for p in ragged if len(p) >= length]  # the prompts long enough, cut to one length
        if len(cut) >= args.group:
            sets[f"equal_{length}"] = one_set(engine, cut, args.new_tokens, args.group)
    for spread in (int(x) for x in args.spreads.split(",")):
        long_enough = [p for p in ragged if len(p) >= args.spread_base + spread]
        n = len(long_enough)
        cut = [p[: args.spread_base + (i * spread) // max(1, n - 1)] for i, p in enumerate(long_enough)]
        if n >= args.group:
            sets[f"spread_{spread}"] = one_set(engine, cut, args.new_tokens, args.group)
    sets["ragged"] = one_set(engine, ragged, args.new_tokens, args.group)
    groupings = [grouped(engine, ragged, args.new_tokens, int(t)) for t in args.tolerances.split(",")]
    engines = {"one_engine_all_cores": engine, "one_thread": one_thread._engine, "pool": pool_lm._engine}
    tolerances = [int(t) for t in args.tolerances.split(",")]
    workers = {
        "layout": {"pool_workers_threads": list(pool_lm.worker_layout()), "one_engine_threads": lm.worker_layout()[1]},
        "ragged": pooled(engines, ragged, args.new_tokens, tolerances),
    }
    result = {
        **run_header("ct2_batching", "ct2_batching.py", argv, start),
        "data": shown_path(data_file(args.data, "xquad_en_dev.json")),
        "compute_type": lm.compute_type,
        "new_tokens": args.new_tokens,
        "sets": sets,
        "ragged_in_length_groups": groupings,
        "workers": workers,
    }
    print(f"{'prompt set':<12} {'tokens':>10} {'one by one':>11} {'one batch':>10} {'sorted':>8} {'speedup':>8}")
    for name, row in sets.items():
        lo, hi = row["prompt_tokens"]
        sorted_s = row[f"sorted_batches_of_{args.group}_s"]
        print(
            f"{name:<12} {f'{lo}-{hi}':>10} {row['one_by_one_s']:>10}s {row['one_batch_s']:>9}s "
            f"{sorted_s:>7}s {row['batch_speedup']:>7}x"
        )
    print(f"\n{'tolerance':>9} {'groups':>7} {'one by one':>11} {'grouped':>8} {'speedup':>8}")
    for row in groupings:
        print(
            f"{row['tolerance']:>9} {len(row['group_sizes']):>7} {row['one_by_one_s']:>10}s {row['grouped_s']:>7}s "
            f"{row['speedup']:>7}x"
        )
    w = workers["ragged"]
    print(f"\nworkers {workers['layout']}: the real prompts one by one on one engine (every core) "
          f"{w['one_engine_all_cores_one_by_one_s']}s, on one thread {w['one_thread_one_by_one_s']}s, "
          f"on the pool one by one {w['pool_one_by_one_s']}s")  # fmt: skip
    for t in tolerances:
        print(
            f"  pool, length groups at tolerance {t} ({w[f'pool_tolerance_{t}_groups']} jobs): "
            f"{w[f'pool_tolerance_{t}_s']}s, {w['speedup_over_one_engine'][f'pool_tolerance_{t}']}x"
        )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
