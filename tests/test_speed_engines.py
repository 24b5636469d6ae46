"""The limit machinery of benchmarks/speed.py (benchmarks/_engines.py) on the tiny model: every engine call a
ct2 run makes is recorded, and the replay on a bare engine reproduces the same tokens, seeded sampling included."""

from __future__ import annotations

import statistics
import sys

import pytest
from conftest import REPO
from conftest_lm import tiny_lm_dir  # noqa: F401  (fixture)

from robustqa.lm.base import ChatRequest, ScoreRequest

pytest.importorskip("ctranslate2")
if str(REPO / "benchmarks") not in sys.path:
    sys.path.append(str(REPO / "benchmarks"))

from _engines import record_engine_calls, replay  # noqa: E402

from robustqa.lm.ct2 import CT2LM  # noqa: E402


def test_replay_of_the_recorded_calls_generates_the_same_tokens(tiny_lm_dir, tmp_path_factory):  # noqa: F811
    lm = CT2LM(tiny_lm_dir, compute_type="float32", cache_dir=tmp_path_factory.getbasetemp() / "ct2-cache")
    log = record_engine_calls(lm)
    msgs = [{"role": "user", "content": "Write one question about the river."}]
    lm.generate([ChatRequest.of(msgs, max_tokens=6), ChatRequest.of(msgs + [], max_tokens=9)])
    lm.generate([ChatRequest.of(msgs, max_tokens=8, temperature=1.0, n=3, seed=5)])
    lm.score([ScoreRequest.of(msgs, "Where is it?")])
    # Two greedy calls (two parameter sets), one seeded sampled call, one scoring call.
    assert [c["method"] for c in log] == ["generate_batch"] * 3 + ["score_batch"]
    assert [c["seed"] for c in log[:3]] == [None, None, 5]
    limit = replay(lm, log)
    assert limit["calls"] == 4 and limit["rounds"] == 4  # each call awaited before the next was submitted
    assert limit["in_run_engine_seconds"] > 0
    assert limit["generated_tokens"] == limit["run_generated_tokens"] > 0
    assert limit["calls_with_other_tokens"] == 0
    assert limit["seconds"] > 0


def test_the_batching_probe_decodes_the_same_tokens_every_way(tiny_lm_dir, tmp_path_factory):  # noqa: F811
    from ct2_batching import one_set

    lm = CT2LM(tiny_lm_dir, compute_type="float32", cache_dir=tmp_path_factory.getbasetemp() / "ct2-cache").load()
    to_tokens = lm.tokenizer.convert_ids_to_tokens
    prompts = [
        to_tokens(lm._prompt_ids(ChatRequest.of([{"role": "user", "content": "Ask about the river " * k}])))
        for k in (1, 2, 3, 5, 8)
    ]
    row = one_set(lm._engine, prompts, new_tokens=3, group=2)
    assert row["prompts"] == 5 and row["prompt_tokens"] == [len(prompts[0]), len(prompts[-1])]
    assert row["new_tokens_per_way"] == [15, 15, 15]
    assert min(row["one_by_one_s"], row["one_batch_s"], row["sorted_batches_of_2_s"]) >= 0


def test_the_probe_times_the_backends_length_groups(tiny_lm_dir, tmp_path_factory):  # noqa: F811
    from ct2_batching import grouped

    lm = CT2LM(tiny_lm_dir, compute_type="float32", cache_dir=tmp_path_factory.getbasetemp() / "ct2-cache").load()
    to_tokens = lm.tokenizer.convert_ids_to_tokens
    prompts = [
        to_tokens(lm._prompt_ids(ChatRequest.of([{"role": "user", "content": "Ask about the river " * k}])))
        for k in (1, 1, 2, 8)
    ]
    row = grouped(lm._engine, prompts, new_tokens=3, tolerance=0)
    assert row["group_sizes"] == [2, 1, 1] and row["new_tokens_per_way"] == [12, 12]


def test_the_limit_is_the_median_of_repeated_run_and_replay_pairs(tiny_lm_dir, tmp_path_factory, tmp_path):  # noqa: F811
    from _engines import strategy_rows

    from robustqa.registry import get_strategy
    from robustqa.types import Document

    lm = CT2LM(tiny_lm_dir, compute_type="float32", cache_dir=tmp_path_factory.getbasetemp() / "ct2-cache")
    docs = [Document(id="d", text="The river runs north. It floods in May. Boats use it in summer.")]
    [row] = strategy_rows(lm, "ct2", docs, [get_strategy("naive")], ["naive"], 2, 0, tmp_path, repeats=3)
    pairs = row["repeats"]
    assert len(pairs) == 3 and row["same_tokens_every_repeat"]  # seeded: every repeat draws the same tokens
    costs = [p["cost_over_limit"] for p in pairs if p["cost_over_limit"] is not None]  # None: replay rounded to 0 s
    assert row["cost_over_limit"] == (round(statistics.median(costs), 4) if costs else None)
    assert row["seconds"] == round(sorted(p["seconds"] for p in pairs)[1], 2)
    assert row["limit"]["calls_with_other_tokens"] == 0
