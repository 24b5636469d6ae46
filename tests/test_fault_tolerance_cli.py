"""Fault tolerance through the CLI: `robustqa generate --backend openai` against a real local server
(`transformers serve` on a tiny random model) behind a fault-injecting proxy (500s, 429 + Retry-After,
timeouts, dropped and truncated connections).

- The run finishes with every record, byte-for-byte what a fault-free run produces (greedy decoding is
  deterministic), so nothing is fabricated; each fault costs exactly one bounded retry.
- When the server stays down the CLI stops with one clear line, keeps what it finished, and a later `--resume`
  completes the run without loss or duplicates.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
import yaml
from conftest import REPO
from conftest_lm import tiny_lm_dir  # noqa: F401  (fixture)
from fault_proxy import FaultProxy
from lm_server import transformers_server

BUDGET = 8  # naive: 2 LM requests per pair
CLI = [sys.executable, "-c", "from robustqa.cli import main; main()"]
# Every kind of fault, each followed by an "ok" so that (with one request in flight) every request that meets
# a fault succeeds on its next try: 1 retry per fault.
FAULTS = ["500", "429", "hang", "drop", "503", "truncate", "502", "504", "429", "drop"]
SCHEDULE = [step for fault in FAULTS for step in (fault, "ok")]


@pytest.fixture(scope="module")
def server(tiny_lm_dir):  # noqa: F811
    with transformers_server(tiny_lm_dir) as served:
        yield served


@pytest.fixture(scope="module")
def setup(tmp_path_factory, server, xquad_paragraphs):
    root = tmp_path_factory.mktemp("faults")
    doc = root / "doc.txt"
    doc.write_text("\n\n".join(text for _, text in xquad_paragraphs[:2]), encoding="utf-8")

    def config(name: str, concurrency: int, max_retries: int) -> str:
        path = root / name
        path.write_text(
            yaml.safe_dump(
                {
                    "strategy": "naive",
                    "strategy_params": {
                        "min_tokens": 16,
                        "max_tokens": 48,
                        "max_tokens_a": 12,
                        "max_tokens_b": 12,
                    },
                    "budget": BUDGET,
                    "seed": 5,
                    "batch_size": 4,
                    "backend": "openai",
                    "model": server.model,
                    "concurrency": concurrency,
                    "max_retries": max_retries,
                    "timeout": 1.5,
                    "cache": None,
                }
            )
        )
        return str(path)

    return {
        "root": root,
        "doc": str(doc),
        "serial": config("serial.yaml", 1, 3),
        "parallel": config("parallel.yaml", 4, 2),
    }


def generate(setup, config: str, base_url: str, out, *extra):
    return subprocess.run(
        [
            *CLI,
            "generate",
            setup["doc"],
            "--config",
            config,
            "--base-url",
            base_url,
            "--out",
            str(out),
            "--no-progress",
            *extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def records(path) -> dict[str, tuple[str, str, bool]]:
    rows = []
    for p in (path, path.with_name(path.name.removesuffix(".jsonl") + ".rejected.jsonl")):
        if p.exists():
            rows += [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "a record was written twice"
    return {r["id"]: (r["question"], r["answer"], r["kept"]) for r in rows}


@pytest.fixture(scope="module")
def reference(setup, server):
    out = setup["root"] / "reference.jsonl"
    proc = generate(setup, setup["serial"], server.base_url, out)
    assert proc.returncode == 0, proc.stderr
    ref = records(out)
    assert len(ref) == BUDGET
    return ref


@pytest.mark.slow
def test_every_fault_is_retried_and_nothing_is_lost_or_made_up(setup, server, reference):
    out = setup["root"] / "faulty.jsonl"
    with FaultProxy(server.base_url.removesuffix("/v1"), SCHEDULE, retry_after=0.2, hang_seconds=3.0) as proxy:
        proc = generate(setup, setup["serial"], proxy.base_url, out)
    assert proc.returncode == 0, proc.stderr
    assert records(out) == reference, "the same records as a fault-free run: none lost, none fabricated"
    assert proxy.injected == Counter(FAULTS), "every scheduled fault was served"
    lm_requests = 2 * BUDGET
    assert proxy.forwarded == lm_requests + FAULTS.count("truncate")
    attempts = sum(proxy.injected.values()) + proxy.forwarded - FAULTS.count("truncate")
    assert attempts - lm_requests == len(FAULTS), "exactly one retry per fault: retries are bounded"
    print(
        f"\nfault injection: {dict(proxy.injected)}; {len(FAULTS)} requests failed, {len(FAULTS)} retried, "
        f"{attempts} HTTP attempts for {lm_requests} LM requests; records lost: 0"
    )


@pytest.mark.slow
def test_a_server_that_stays_down_stops_the_run_and_resume_finishes_it(setup, server, reference):
    out = setup["root"] / "down.jsonl"
    # The first batch (4 pairs = 8 requests) goes through, then the server is down for good.
    with FaultProxy(server.base_url.removesuffix("/v1"), ["ok"] * 8, default="503") as proxy:
        proc = generate(setup, setup["parallel"], proxy.base_url, out)
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.stdout, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("robustqa: error: openai backend:") and "failed after 3 tries" in err and "503" in err
    done = records(out)
    assert len(done) == 4 and all(reference[i] == v for i, v in done.items()), "finished pairs kept as they are"
    assert proxy.injected["503"] == 4 * 3, "retries are bounded: 3 tries for each of the 4 requests in flight"
    print(f"\nserver down: {proxy.injected['503']} requests answered 503, then: {err}")

    with FaultProxy(server.base_url.removesuffix("/v1")) as healthy:
        proc = generate(setup, setup["parallel"], healthy.base_url, out, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "(4 done before)" in proc.stdout
    assert records(out) == reference, "resumed without loss or duplicates"
    assert healthy.forwarded == 2 * (BUDGET - 4), "only the missing pairs were asked for"
