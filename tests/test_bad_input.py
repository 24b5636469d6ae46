"""Bad input through the real CLI, table-driven: a one-line error naming the problem, a non-zero exit code, no
traceback, and no output left behind that a later `--resume` could mistake for finished work."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from conftest import REPO

CLI = [sys.executable, "-c", "from robustqa.cli import main; main()"]
FAST = ["--backend", "fake", "--no-cache", "--no-progress", "--budget", "3"]
GOOD_TEXT = "The Elbe rises in the Krkonose mountains. It flows through Dresden and Hamburg to the North Sea.\n"


@dataclass
class Case:
    name: str
    files: dict  # relative path -> str | bytes
    args: list  # "{tmp}" is replaced by the case's directory
    expect: list  # substrings of the error line ("{tmp}" replaced too)


CASES = [
    Case("missing path", {}, ["generate", "{tmp}/nowhere.txt"], ["nowhere.txt", "no such file"]),
    Case("empty file", {"empty.txt": ""}, ["generate", "{tmp}/empty.txt"], ["empty.txt", "empty file"]),
    Case(
        "whitespace only",
        {"blank.md": " \n\t\n"},
        ["generate", "{tmp}/blank.md"],
        ["blank.md", "only whitespace"],
    ),
    Case(
        "binary file",
        {"bin.txt": b"PK\x03\x04\x00\x00binary"},
        ["generate", "{tmp}/bin.txt"],
        ["bin.txt", "binary file"],
    ),
    Case(
        "non-UTF-8 bytes",
        {"latin.txt": "caf\u00e9 cr\u00e8me\n".encode("latin-1")},
        ["generate", "{tmp}/latin.txt"],
        ["latin.txt", "not UTF-8", "byte offset 3"],
    ),
    Case(
        "malformed JSONL",
        {"docs.jsonl": '{"id": "a", "text": "fine"}\n{"id": "b", "text": "cut\n'},
        ["generate", "{tmp}/docs.jsonl"],
        ["docs.jsonl:2", "malformed JSON"],
    ),
    Case(
        "JSONL line without text",
        {"docs.jsonl": '{"id": "a", "body": "x"}\n'},
        ["generate", "{tmp}/docs.jsonl"],
        ["docs.jsonl:1", "missing 'text'"],
    ),
    Case(
        "corrupt gzip",
        {"doc.txt.gz": b"\x1f\x8b\x08\x00garbage"},
        ["generate", "{tmp}/doc.txt.gz"],
        ["doc.txt.gz", "gzip"],
    ),
    Case(
        "unsupported file type",
        {"doc.pdf": b"%PDF-1.4"},
        ["generate", "{tmp}/doc.pdf"],
        ["doc.pdf", "unsupported file type"],
    ),
    Case("directory without documents", {"d/readme.pdf": b"x"}, ["generate", "{tmp}/d"], ["no documents"]),
    Case(
        "unknown strategy",
        {"doc.txt": GOOD_TEXT},
        ["generate", "{tmp}/doc.txt", "--strategy", "nosuch"],
        ["unknown strategy 'nosuch'", "naive"],
    ),
    Case(
        "unknown config key",
        {"doc.txt": GOOD_TEXT, "c.yaml": "strategy: naive\nbudgett: 3\n"},
        ["generate", "{tmp}/doc.txt", "--config", "{tmp}/c.yaml"],
        ["c.yaml", "unknown key(s) budgett"],
    ),
    Case(
        "config value of the wrong type",
        {"doc.txt": GOOD_TEXT, "c.yaml": "seed: lots\n"},
        ["generate", "{tmp}/doc.txt", "--config", "{tmp}/c.yaml"],
        ["c.yaml", "seed must be int", "'lots'"],
    ),
    Case(
        "config that is not YAML",
        {"doc.txt": GOOD_TEXT, "c.yaml": "strategy: [naive\n"},
        ["generate", "{tmp}/doc.txt", "--config", "{tmp}/c.yaml"],
        ["c.yaml", "not valid YAML"],
    ),
    Case(
        "missing config file",
        {"doc.txt": GOOD_TEXT},
        ["generate", "{tmp}/doc.txt", "--config", "{tmp}/no.yaml"],
        ["no.yaml", "no such config file"],
    ),
    Case(
        "bad strategy parameter",
        {"doc.txt": GOOD_TEXT, "c.yaml": "strategy_params: {min_tokenz: 3}\n"},
        ["generate", "{tmp}/doc.txt", "--config", "{tmp}/c.yaml"],
        ["naive", "min_tokenz"],
    ),
    Case("bad shard", {"doc.txt": GOOD_TEXT}, ["generate", "{tmp}/doc.txt", "--shard", "3/2"], ["shard", "3/2"]),
]


def materialise(tmp: Path, case: Case) -> tuple[list[str], list[str]]:
    for rel, data in case.files.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    args = [a.replace("{tmp}", str(tmp)) for a in case.args]
    return args, [e.replace("{tmp}", str(tmp)) for e in case.expect]


def assert_clean_failure(proc, expect, out: Path):
    err = proc.stderr.strip()
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in err, err
    lines = err.splitlines()
    # The error is one line, the last; a warning logged before it (e.g. skipped files) may precede it.
    errors = [line for line in lines if "robustqa: error" in line]
    assert len(errors) == 1 and lines[-1] == errors[0] and errors[0].startswith("robustqa: error:"), err
    for needle in expect:
        assert needle in errors[0], (needle, errors[0])
    # Nothing a resume could mistake for finished work.
    stem = out.name.removesuffix(".jsonl")
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(stem)], "partial output left behind"


@pytest.fixture(scope="module")
def case_runs(tmp_path_factory):
    """Every case's CLI run, started together (each pays the CLI's start-up; 4 at a time keeps this fast)."""
    results = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {}
        for case in CASES:
            tmp = tmp_path_factory.mktemp("case")
            args, expect = materialise(tmp, case)
            out = tmp / "out" / "qa.jsonl"
            out.parent.mkdir()
            command = [*CLI, *args, *FAST, "--out", str(out)]
            run = partial(subprocess.run, command, cwd=REPO, capture_output=True, text=True, timeout=120)
            futures[case.name] = (pool.submit(run), expect, out)
        for name, (future, expect, out) in futures.items():
            results[name] = (future.result(), expect, out)
    return results


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_generate_input_fails_cleanly(case_runs, case):
    assert_clean_failure(*case_runs[case.name])


def test_a_huge_single_line_file_works_and_does_not_hang(tmp_path):
    words = (REPO / "examples" / "declaration_of_independence.md").read_text(encoding="utf-8").split()
    line = " ".join(words)
    text = " ".join([line] * (10_000_000 // len(line) + 1))  # about 10 MB, not one newline
    doc = tmp_path / "huge.txt"
    doc.write_text(text, encoding="utf-8")
    out = tmp_path / "qa.jsonl"
    proc = subprocess.run(
        [*CLI, "generate", str(doc), *FAST, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3
    for row in rows:
        start, end = row["context"]["start"], row["context"]["end"]
        assert 0 <= start < end <= len(text) and text[start:end].strip()


def test_bad_records_for_merge_and_export_fail_cleanly(tmp_path):
    bad = tmp_path / "qa.jsonl"
    bad.write_bytes(b'{"id": "a", "question": "q", "answer": "a"}\n\xff\xfe not utf-8\n')
    out = tmp_path / "out" / "x.jsonl"
    out.parent.mkdir()
    proc = subprocess.run(
        [*CLI, "export", str(bad), "--format", "openai", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_clean_failure(proc, [f"{bad}:2", "not UTF-8"], out)
    proc = subprocess.run(
        [*CLI, "merge", str(bad), "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert_clean_failure(proc, ["qa.jsonl", "no manifest"], out)
    proc = subprocess.run(
        [*CLI, "import-cartridges", str(tmp_path / "none.yaml"), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_clean_failure(proc, ["none.yaml", "no such file"], out)
