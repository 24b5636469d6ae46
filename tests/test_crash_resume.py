"""Crash safety: a real `robustqa generate` process killed with SIGKILL midway, then resumed, loses and
duplicates nothing, and its output equals an uninterrupted run with the same seed (fake LM: deterministic)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from conftest import REPO

BUDGET = 2000
KILL_AFTER = 150  # records on disk when the kill lands
CLI = [sys.executable, "-c", "from robustqa.cli import main; main()"]


def generate_args(docs, out, *extra):
    return [
        *CLI,
        "generate",
        str(docs),
        "--strategy",
        "naive",
        "--budget",
        str(BUDGET),
        "--seed",
        "11",
        "--backend",
        "fake",
        "--no-cache",
        "--no-progress",
        "--batch-size",
        "4",
        "--out",
        str(out),
        *extra,
    ]


def count_lines(path) -> int:
    try:
        with open(path, "rb") as fh:
            return fh.read().count(b"\n")
    except FileNotFoundError:
        return 0


def test_sigkill_midway_then_resume_equals_an_uninterrupted_run(tmp_path, fixture_data):
    docs = fixture_data / "xquad_en_dev.json"
    reference, out = tmp_path / "reference.jsonl", tmp_path / "killed.jsonl"

    # 1. Start a run and SIGKILL it once some records are on disk (not at a clean stop: mid-batch, mid-write).
    proc = subprocess.Popen(generate_args(docs, out), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while count_lines(out) < KILL_AFTER and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    at_kill = out.read_bytes()
    complete_at_kill = at_kill.count(b"\n")
    assert KILL_AFTER <= complete_at_kill < BUDGET

    # 2. Without --resume the CLI refuses to touch the output; with it, the run finishes.
    refused = subprocess.run(generate_args(docs, out), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--resume" in refused.stderr and out.read_bytes() == at_kill
    resumed = subprocess.run(
        generate_args(docs, out, "--resume"), cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"({complete_at_kill} done before)" in resumed.stdout
    assert f"{BUDGET - complete_at_kill} kept" in resumed.stdout

    # 3. An uninterrupted run with the same seed.
    whole = subprocess.run(generate_args(docs, reference), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr

    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == BUDGET, "no record lost or duplicated"
    assert out.read_bytes() == reference.read_bytes(), "byte for byte the uninterrupted run"
    assert out.read_bytes().startswith(at_kill[: at_kill.rfind(b"\n") + 1]), "finished records were not rewritten"
    print(
        f"\ncrash-resume: SIGKILL after {complete_at_kill} of {BUDGET} records; resumed the other "
        f"{BUDGET - complete_at_kill}; {len(ids)} unique ids; output identical to the uninterrupted run"
    )
