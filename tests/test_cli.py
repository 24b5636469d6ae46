"""The command line: listing strategies, a fake-backend run, and one-line errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def run_cli(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-c", "from robustqa.cli import main; main()", *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )


def test_strategies_lists_one_line_each():
    proc = run_cli("strategies")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert any(line.startswith("naive ") for line in lines)
    assert all(len(line.split()) >= 2 for line in lines)


def test_generate_with_the_fake_backend_writes_records(tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("The river Elbe rises in the Krkonose mountains. It flows through Dresden and Hamburg.\n")
    out = tmp_path / "qa.jsonl"
    proc = run_cli(
        "generate",
        str(doc),
        "--strategy",
        "naive",
        "--budget",
        "3",
        "--out",
        str(out),
        "--backend",
        "fake",
        "--no-progress",
        "--no-cache",
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and all(r["doc_id"] == "doc" for r in rows)
    assert "3 kept" in proc.stdout


def test_errors_are_one_line_without_traceback(tmp_path):
    out = tmp_path / "qa.jsonl"
    cases = [
        ("generate", str(tmp_path / "missing.txt"), "--out", str(out), "--backend", "fake"),
        ("generate", str(REPO / "examples"), "--strategy", "nope", "--out", str(out), "--backend", "fake"),
    ]
    for args in cases:
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr.strip().startswith("robustqa: error:")
        assert len(proc.stderr.strip().splitlines()) == 1
        assert not out.exists()


def test_param_options_reach_the_strategy(tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("The river Elbe rises in the Krkonose mountains. It flows through Dresden and Hamburg.\n")
    out = tmp_path / "qa.jsonl"
    common = ("generate", str(doc), "--strategy", "naive", "--budget", "3", "--backend", "fake", "--no-cache")
    proc = run_cli(
        *common, "--out", str(out), "--no-progress", "-p", "seed_prompts=[question]", "-p", "max_tokens_b=32"
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "qa.manifest.json").read_text())
    assert manifest["config"]["strategy_params"] == {"seed_prompts": ["question"], "max_tokens_b": 32}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["meta"]["seed_prompt"] for r in rows} == {"question"}

    bad = run_cli(*common, "--out", str(tmp_path / "bad.jsonl"), "-p", "no_equals_sign")
    assert bad.returncode == 2 and "--param needs KEY=VALUE" in bad.stderr
    unknown = run_cli(*common, "--out", str(tmp_path / "bad.jsonl"), "-p", "nope=1")
    assert unknown.returncode == 2 and "nope" in unknown.stderr and "Traceback" not in unknown.stderr
