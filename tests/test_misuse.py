"""Misuse through the real CLI, table-driven: every row is a command a hostile but realistic user might type.

Each row states the command and the exit code it must end with. Every failing row must print exactly one line
on stderr, `robustqa: error: ...`, without a traceback, within the time limit (else it counts as a hang), and
leave every file that existed before it byte for byte as it was (checksums before and after; a changed or
deleted file, link or pipe is a data loss). The concurrency, lock, kill/resume and out-of-space-then-resume
cases run real processes. A full disk is real, not mocked: the CLI runs under a file size limit
(RLIMIT_FSIZE, so every write past it fails with EFBIG in the kernel, whichever library writes), or with
fsync failing with ENOSPC, where a full disk surfaces on delayed-allocation file systems. The closing test
prints the table: cases tried, clean errors, tracebacks, hangs and data losses (the last three must be 0), and
with $ROBUSTQA_MISUSE_RESULT set writes every case to that JSON file (`benchmarks/misuse_table.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO

MAIN = "from robustqa.cli import main; main()"
CLI = [sys.executable, "-c", MAIN]
FAKE = ["--backend", "fake", "--no-cache", "--no-progress"]
HANG_S = 90
TEXT = (
    "The Elbe rises in the Krkonose mountains. It flows through Dresden and Hamburg to the North Sea. "
    "Its basin covers parts of four countries.\n\nThe river was a border for decades. Ships still carry grain.\n"
)
CORPUS = '{"id": "a", "text": "The Elbe rises in the mountains. It flows to the sea."}\n'
FOREIGN_QA = '{"question": "Which sea does the Elbe flow to?", "answer": "The North Sea."}\n'


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def yaml_bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
        previous = name
    return "\n".join(lines) + "\n"


def html_nested(n: int) -> str:
    return "<html><body>" + "".join(f"<font>Sentence number {i} is here." for i in range(n)) + "</body></html>"


def file_size_limit(limit: int) -> str:
    """A preamble: every write past `limit` bytes of a file fails with EFBIG (the kernel's, not a mock)."""
    return (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
    )


# A preamble: fsync fails with ENOSPC, as on a full ext4/xfs with delayed allocation (the writes "succeed").
FSYNC_FULL = (
    "import errno, os\ndef _full(fd):\n    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\nos.fsync = _full\n"
)
TOO_LARGE = "File too large"
NO_SPACE = "No space left on device"


@dataclass
class Row:
    name: str
    args: list  # "{t}" is the case's directory
    code: int = 2  # expected exit code
    files: dict = field(default_factory=dict)  # relative path -> str | bytes
    finished: bool = False  # start from a finished run: {t}/o.jsonl (+ rejected, manifest) on {t}/doc.txt
    expect: tuple = ()  # substrings of the error line
    changes: tuple = ()  # files a succeeding row may change legitimately
    setup: str | None = None  # a shell-free Python snippet run in the case directory before the command
    before: tuple = ()  # CLI commands (argument lists) that must succeed first, making the outputs to protect
    preamble: str | None = None  # Python run in the CLI's process before robustqa (a file size limit, ...)


def gen(*args) -> list:
    return ["generate", *args, *FAKE]


ROWS = [
    # -- outputs that are inputs ------------------------------------------------------------------------------
    Row(
        "out is the corpus (--overwrite)",
        gen("{t}/c.jsonl", "--budget", "3", "--out", "{t}/c.jsonl", "--overwrite"),
        files={"c.jsonl": CORPUS},
        expect=("is the input",),
    ),
    Row(
        "out is the corpus (--resume)",
        gen("{t}/c.jsonl", "--budget", "3", "--out", "{t}/c.jsonl", "--resume"),
        files={"c.jsonl": CORPUS},
        expect=("is the input",),
    ),
    Row(
        "out is the corpus (plain)",
        gen("{t}/c.jsonl", "--budget", "3", "--out", "{t}/c.jsonl"),
        files={"c.jsonl": CORPUS},
        expect=("is the input",),
    ),
    Row(
        "out via a relative path to the corpus",
        gen("{t}/c.jsonl", "--budget", "3", "--out", "{t}/x/../c.jsonl", "--overwrite"),
        files={"c.jsonl": CORPUS, "x/.keep": ""},
        expect=("is the input",),
    ),
    Row(
        "out is a symlink to the corpus",
        gen("{t}/c.jsonl", "--budget", "3", "--out", "{t}/link.jsonl", "--overwrite"),
        files={"c.jsonl": CORPUS},
        setup="os.symlink('c.jsonl', 'link.jsonl')",
        expect=("is the input",),
    ),
    Row(
        "out is a hard link to the corpus",
        gen("{t}/c.jsonl", "--budget", "3", "--out", "{t}/hard.jsonl", "--overwrite"),
        files={"c.jsonl": CORPUS},
        setup="os.link('c.jsonl', 'hard.jsonl')",
        expect=("is the input",),
    ),
    Row(
        "rejected file would be the corpus",
        gen("{t}/o.rejected.jsonl", "--budget", "3", "--out", "{t}/o.jsonl"),
        files={"o.rejected.jsonl": CORPUS},
        expect=("is the input",),
    ),
    Row(
        "out inside an input directory",
        gen("{t}/docs", "--budget", "3", "--out", "{t}/docs/qa.jsonl"),
        files={"docs/a.txt": TEXT},
        expect=("inside the input directory",),
    ),
    Row(
        "out is the config file",
        gen("{t}/doc.txt", "--config", "{t}/c.yaml", "--out", "{t}/c.yaml", "--overwrite"),
        files={"doc.txt": TEXT, "c.yaml": "budget: 3\n"},
        expect=("is the input",),
    ),
    Row(
        "out is a directory",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/d"),
        files={"doc.txt": TEXT, "d/.keep": ""},
        expect=("is a directory",),
    ),
    Row(
        "out below a file",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/doc.txt/qa.jsonl"),
        files={"doc.txt": TEXT},
        expect=("is a file",),
    ),
    # -- a finished output must survive every failed run --------------------------------------------------------
    Row(
        "--overwrite then a bad parameter value",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/o.jsonl", "--overwrite", "-p", "max_tokens=0"),
        finished=True,
        expect=("min_tokens <= max_tokens",),
    ),
    Row(
        "--overwrite then an unknown parameter",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/o.jsonl", "--overwrite", "-p", "nosuch=1"),
        finished=True,
        expect=("unknown parameter", "nosuch"),
    ),
    Row(
        "--overwrite then a bad document",
        gen("{t}/bin.txt", "--budget", "3", "--out", "{t}/o.jsonl", "--overwrite"),
        finished=True,
        files={"bin.txt": b"\x00\x01binary"},
        expect=("binary",),
    ),
    Row(
        "--overwrite then a bad budget",
        gen("{t}/doc.txt", "--budget", "0", "--out", "{t}/o.jsonl", "--overwrite"),
        finished=True,
        expect=("budget",),
    ),
    Row(
        "existing output without --resume",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/o.jsonl"),
        finished=True,
        expect=("already holds records",),
    ),
    # -- parameters typed against the factories' signatures -------------------------------------------------------
    Row(
        "-p attempts=abc",
        gen("{t}/doc.txt", "--strategy", "stratified", "--budget", "3", "--out", "{t}/o.jsonl", "-p", "attempts=abc"),
        files={"doc.txt": TEXT},
        expect=("attempts must be int", "'abc'"),
    ),
    Row(
        "-p attempts=0",
        gen("{t}/doc.txt", "--strategy", "stratified", "--budget", "3", "--out", "{t}/o.jsonl", "-p", "attempts=0"),
        files={"doc.txt": TEXT},
        expect=("attempts",),
    ),
    Row(
        "-p temperature_a=abc",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/o.jsonl", "-p", "temperature_a=abc"),
        files={"doc.txt": TEXT},
        expect=("temperature_a must be float",),
    ),
    Row(
        "-p min_tokens=1.5",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/o.jsonl", "-p", "min_tokens=1.5"),
        files={"doc.txt": TEXT},
        expect=("min_tokens must be int",),
    ),
    Row(
        "-p min_tokens=true",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/o.jsonl", "-p", "min_tokens=true"),
        files={"doc.txt": TEXT},
        expect=("min_tokens must be int",),
    ),
    Row(
        "-p seed_prompts=generic (a string, not a list)",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/o.jsonl", "-p", "seed_prompts=generic"),
        files={"doc.txt": TEXT},
        expect=("seed_prompts must be",),
    ),
    Row(
        "-p without =",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/o.jsonl", "-p", "attempts"),
        files={"doc.txt": TEXT},
        expect=("KEY=VALUE",),
    ),
    Row(
        "-p value not YAML",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/o.jsonl", "-p", "x=[a"),
        files={"doc.txt": TEXT},
        expect=("not valid YAML",),
    ),
    Row(
        "composition answerer samples=abc",
        gen("{t}/doc.txt", "--config", "{t}/c.yaml", "--out", "{t}/o.jsonl"),
        files={
            "doc.txt": TEXT,
            "c.yaml": "budget: 3\nselector: {name: stratified}\nquestion_writer: targeted\n"
            "answerer: {name: context, samples: abc}\n",
        },
        expect=("samples must be int",),
    ),
    # -- the budget and run settings are bounded ------------------------------------------------------------------
    Row(
        "--budget abc",
        gen("{t}/doc.txt", "--budget", "abc", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT},
        expect=("--budget",),
    ),
    Row(
        "--budget -3",
        gen("{t}/doc.txt", "--budget", "-3", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT},
        expect=("budget must be between",),
    ),
    Row(
        "--budget 0",
        gen("{t}/doc.txt", "--budget", "0", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT},
        expect=("budget must be between",),
    ),
    Row(
        "--budget 10^12",
        gen("{t}/doc.txt", "--budget", str(10**12), "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT},
        expect=("budget must be between",),
    ),
    Row(
        "--budget 2^63",
        gen("{t}/doc.txt", "--budget", str(2**63), "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT},
        expect=("budget",),
    ),
    Row(
        "--batch-size 0",
        gen("{t}/doc.txt", "--budget", "3", "--batch-size", "0", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT},
        expect=("batch_size",),
    ),
    Row(
        "--seed 2^70",
        gen("{t}/doc.txt", "--budget", "3", "--seed", str(2**70), "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT},
        expect=("seed",),
    ),
    Row(
        "--shard abc",
        gen("{t}/doc.txt", "--budget", "3", "--shard", "abc", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT},
        expect=("shard",),
    ),
    Row(
        "--shard 2/2",
        gen("{t}/doc.txt", "--budget", "3", "--shard", "2/2", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT},
        expect=("shard",),
    ),
    # -- command-line usage -----------------------------------------------------------------------------------------
    Row("no arguments", [], expect=("no command",)),
    Row("unknown command", ["frobnicate"], expect=("No such command",)),
    Row(
        "unknown option",
        gen("{t}/doc.txt", "--budgte", "3", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT},
        expect=("No such option",),
    ),
    Row("missing --out", gen("{t}/doc.txt", "--budget", "3"), files={"doc.txt": TEXT}, expect=("--out",)),
    Row("generate without documents", ["generate", "--out", "{t}/o.jsonl"], expect=("Missing argument 'paths'",)),
    Row(
        "option missing its value",
        ["generate", "{t}/doc.txt", "--budget", "3", "--out"],
        files={"doc.txt": TEXT},
        expect=("--out",),
    ),
    Row(
        "path below a regular file",
        gen("{t}/doc.txt/x.txt", "--budget", "3", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT},
        expect=("x.txt",),
    ),
    # -- configs --------------------------------------------------------------------------------------------------
    Row(
        "config alias bomb",
        gen("{t}/doc.txt", "--config", "{t}/c.yaml", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT, "c.yaml": yaml_bomb()},
        expect=("alias bomb",),
    ),
    Row(
        "config nested deeply",
        gen("{t}/doc.txt", "--config", "{t}/c.yaml", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT, "c.yaml": "strategy_params: " + deep_json(5000) + "\n"},
        expect=("c.yaml",),
    ),
    Row(
        "config not UTF-8",
        gen("{t}/doc.txt", "--config", "{t}/c.yaml", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT, "c.yaml": b"budget: 3 # caf\xe9\n"},
        expect=("not UTF-8",),
    ),
    Row(
        "config is a directory",
        gen("{t}/doc.txt", "--config", "{t}/cfg", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT, "cfg/.keep": ""},
        expect=("is a directory",),
    ),
    Row(
        "config is a list",
        gen("{t}/doc.txt", "--config", "{t}/c.yaml", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT, "c.yaml": "- budget\n"},
        expect=("mapping",),
    ),
    Row(
        "config strategy_params not a mapping",
        gen("{t}/doc.txt", "--config", "{t}/c.yaml", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT, "c.yaml": "strategy_params: 5\n"},
        expect=("strategy_params",),
    ),
    Row(
        "config timeout negative",
        gen("{t}/doc.txt", "--config", "{t}/c.yaml", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT, "c.yaml": "timeout: -1\n"},
        expect=("timeout",),
    ),
    # -- documents ------------------------------------------------------------------------------------------------
    Row(
        "JSONL corpus nested deeply",
        gen("{t}/c.jsonl", "--budget", "3", "--out", "{t}/o.jsonl"),
        files={"c.jsonl": '{"id": "a", "text": "x y", "extra": ' + deep_json(3000) + "}\n"},
        expect=("c.jsonl:1", "nested deeper"),
    ),
    Row(
        "SQuAD file nested deeply",
        gen("{t}/s.json", "--budget", "3", "--out", "{t}/o.jsonl"),
        files={"s.json": '{"data": ' + deep_json(3000) + "}"},
        expect=("s.json",),
    ),
    Row(
        "HTML nested past the parser's limit",
        gen("{t}/p.html", "--budget", "3", "--out", "{t}/o.jsonl"),
        files={"p.html": html_nested(3000)},
        expect=("p.html", "nested too deeply"),
    ),
    # -- resume is judged by the records as well as the manifest --------------------------------------------------
    Row(
        "resume with another seed",
        gen("{t}/doc.txt", "--budget", "3", "--seed", "5", "--out", "{t}/o.jsonl", "--resume"),
        finished=True,
        expect=("different configuration",),
    ),
    Row(
        "resume, manifest deleted, another seed",
        gen("{t}/doc.txt", "--budget", "3", "--seed", "5", "--out", "{t}/o.jsonl", "--resume"),
        finished=True,
        setup="os.remove('o.manifest.json')",
        expect=("o.jsonl:1", "different configuration"),
    ),
    Row(
        "resume, manifest empty, another seed",
        gen("{t}/doc.txt", "--budget", "3", "--seed", "5", "--out", "{t}/o.jsonl", "--resume"),
        finished=True,
        setup="open('o.manifest.json', 'w').close()",
        expect=("different configuration",),
    ),
    Row(
        "resume, manifest truncated, another seed",
        gen("{t}/doc.txt", "--budget", "3", "--seed", "5", "--out", "{t}/o.jsonl", "--resume"),
        finished=True,
        setup="open('o.manifest.json', 'w').write('{\"fing')",
        expect=("different configuration",),
    ),
    Row(
        "resume, manifest truncated, same config (valid)",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/o.jsonl", "--resume"),
        code=0,
        finished=True,
        setup="open('o.manifest.json', 'w').write('{\"fing')",
        changes=("o.manifest.json",),
    ),
    Row(
        "resume onto a foreign QA file",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/qa.jsonl", "--resume"),
        files={"doc.txt": TEXT, "qa.jsonl": '{"id": "x", "question": "q", "answer": "a"}\n'},
        expect=("different configuration",),
    ),
    Row(
        "resume onto an output nested deeply",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/qa.jsonl", "--resume"),
        files={"doc.txt": TEXT, "qa.jsonl": deep_json(3000) + "\n"},
        expect=("qa.jsonl:1",),
    ),
    # -- export -----------------------------------------------------------------------------------------------------
    Row(
        "export onto its input",
        ["export", "{t}/o.jsonl", "--format", "openai", "--out", "{t}/o.jsonl", "--overwrite"],
        finished=True,
        expect=("is the input",),
    ),
    Row(
        "export, context of the wrong type",
        ["export", "{t}/q.jsonl", "--format", "cartridges-parquet", "--out", "{t}/x.parquet"],
        files={"q.jsonl": '{"id": "a", "question": "q", "answer": "a", "context": 5}\n'},
        expect=("q.jsonl:1", "'context' must be"),
    ),
    Row(
        "export, seed of the wrong type",
        ["export", "{t}/q.jsonl", "--format", "cartridges-parquet", "--out", "{t}/x.parquet"],
        files={"q.jsonl": '{"id": "a", "question": "q", "answer": "a", "seed": "abc"}\n'},
        expect=("'seed' must be",),
    ),
    Row(
        "export, meta of the wrong type",
        ["export", "{t}/q.jsonl", "--format", "openai", "--out", "{t}/x.jsonl"],
        files={"q.jsonl": '{"id": "a", "question": "q", "answer": "a", "meta": [1]}\n'},
        expect=("'meta' must be",),
    ),
    Row(
        "export, record nested deeply",
        ["export", "{t}/q.jsonl", "--format", "openai", "--out", "{t}/x.jsonl"],
        files={"q.jsonl": '{"id": "a", "question": "q", "answer": "a", "meta": {"x": ' + deep_json(3000) + "}}\n"},
        expect=("q.jsonl:1",),
    ),
    Row(
        "export of a directory",
        ["export", "{t}/d", "--format", "openai", "--out", "{t}/x.jsonl"],
        files={"d/.keep": ""},
        expect=("directory",),
    ),
    Row(
        "export, unknown format",
        ["export", "{t}/o.jsonl", "--format", "csv", "--out", "{t}/x.csv"],
        finished=True,
        expect=("unknown export format",),
    ),
    Row(
        "export onto an existing file",
        ["export", "{t}/o.jsonl", "--format", "openai", "--out", "{t}/doc.txt"],
        finished=True,
        expect=("already exists",),
    ),
    # -- merge ------------------------------------------------------------------------------------------------------
    Row(
        "merge, manifest not JSON",
        ["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl"],
        finished=True,
        setup="open('o.manifest.json', 'w').write('{nope')",
        expect=("not a robustqa manifest",),
    ),
    Row(
        "merge, manifest a list",
        ["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl"],
        finished=True,
        setup="open('o.manifest.json', 'w').write('[1, 2]')",
        expect=("not a robustqa manifest",),
    ),
    Row(
        "merge, manifest shard of the wrong type",
        ["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl"],
        finished=True,
        setup="open('o.manifest.json', 'w').write('{\"fingerprint\": \"f\", \"shard\": 5}')",
        expect=("'shard' must be",),
    ),
    Row(
        "merge, manifest planned of the wrong type",
        ["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl"],
        finished=True,
        setup='open(\'o.manifest.json\', \'w\').write(\'{"fingerprint": "f", "planned": "x"}\')',
        expect=("'planned' must be",),
    ),
    Row(
        "merge, manifest not UTF-8",
        ["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl"],
        finished=True,
        setup="open('o.manifest.json', 'wb').write(b'\\xff\\xfe{')",
        expect=("not a robustqa manifest",),
    ),
    Row(
        "merge, manifest nested deeply",
        ["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl"],
        finished=True,
        setup=f"open('o.manifest.json', 'w').write({deep_json(3000)!r})",
        expect=("not a robustqa manifest",),
    ),
    Row(
        "merge onto a shard",
        ["merge", "{t}/o.jsonl", "--out", "{t}/o.jsonl", "--overwrite"],
        finished=True,
        expect=("must not be one of the shard files",),
    ),
    Row("merge onto a directory", ["merge", "{t}/o.jsonl", "--out", "{t}"], finished=True, expect=("is a directory",)),
    # -- audit ------------------------------------------------------------------------------------------------------
    Row(
        "audit --out is an existing file",
        ["audit", "{t}/o.jsonl", "--docs", "{t}/doc.txt", "--out", "{t}/doc.txt"],
        finished=True,
        expect=("is a file",),
    ),
    Row(
        "audit, QA nested deeply",
        ["audit", "{t}/q.jsonl", "--docs", "{t}/doc.txt", "--out", "{t}/a"],
        files={"doc.txt": TEXT, "q.jsonl": deep_json(3000) + "\n"},
        expect=("q.jsonl:1",),
    ),
    Row(
        "audit, missing QA file",
        ["audit", "{t}/none.jsonl", "--docs", "{t}/doc.txt", "--out", "{t}/a"],
        files={"doc.txt": TEXT},
        expect=("none.jsonl",),
    ),
    Row("audit without documents", ["audit", "{t}/o.jsonl", "--out", "{t}/a"], finished=True, expect=("no documents",)),
    Row(
        "audit, output would replace a document",
        ["audit", "{t}/o.jsonl", "--docs", "{t}/a/report.html", "--out", "{t}/a"],
        finished=True,
        files={"a/report.html": "<p>Some text here.</p>"},
        expect=("is the input",),
    ),
    # -- import-cartridges ----------------------------------------------------------------------------------------
    Row(
        "import-cartridges alias bomb",
        ["import-cartridges", "{t}/c.yaml", "--out", "{t}/rq.yaml"],
        files={"c.yaml": yaml_bomb()},
        expect=("alias bomb",),
    ),
    Row(
        "import-cartridges onto its input",
        ["import-cartridges", "{t}/c.yaml", "--out", "{t}/c.yaml", "--overwrite"],
        files={"c.yaml": "synthesizer: {}\n"},
        expect=("is the input",),
    ),
    Row(
        "import-cartridges of a directory",
        ["import-cartridges", "{t}/d", "--out", "{t}/rq.yaml"],
        files={"d/.keep": ""},
        expect=("directory",),
    ),
    Row(
        "import-cartridges, not UTF-8",
        ["import-cartridges", "{t}/c.yaml", "--out", "{t}/rq.yaml"],
        files={"c.yaml": b"x: \xff\n"},
        expect=("not UTF-8",),
    ),
    # -- pipes, devices and link loops: reading a pipe blocks forever, a device never ends -----------------------
    Row(
        "document is a named pipe",
        gen("{t}/p.txt", "--budget", "3", "--out", "{t}/o.jsonl"),
        setup="os.mkfifo('p.txt')",
        expect=("p.txt", "not a regular file"),
    ),
    Row(
        "document links to a device",
        gen("{t}/z.txt", "--budget", "3", "--out", "{t}/o.jsonl"),
        setup="os.symlink('/dev/zero', 'z.txt')",
        expect=("z.txt", "not a regular file"),
    ),
    Row(
        "document is a symlink loop",
        gen("{t}/l1.txt", "--budget", "3", "--out", "{t}/o.jsonl"),
        setup="os.symlink('l2.txt', 'l1.txt'); os.symlink('l1.txt', 'l2.txt')",
        expect=("l1.txt", "symbolic link loop"),
    ),
    Row(
        "a named pipe inside an input directory",
        gen("{t}/docs", "--budget", "3", "--out", "{t}/o.jsonl"),
        files={"docs/a.txt": TEXT},
        setup="os.mkfifo('docs/b.txt')",
        expect=("b.txt", "not a regular file"),
    ),
    Row(
        "config is a named pipe",
        gen("{t}/doc.txt", "--config", "{t}/c.yaml", "--out", "{t}/o.jsonl"),
        files={"doc.txt": TEXT},
        setup="os.mkfifo('c.yaml')",
        expect=("c.yaml", "not a regular file"),
    ),
    Row(
        "out is a named pipe",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/p.jsonl"),
        files={"doc.txt": TEXT},
        setup="os.mkfifo('p.jsonl')",
        expect=("p.jsonl", "not a regular file"),
    ),
    Row(
        "out is a named pipe (--overwrite)",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/p.jsonl", "--overwrite"),
        files={"doc.txt": TEXT},
        setup="os.mkfifo('p.jsonl')",
        expect=("p.jsonl", "not a regular file"),
    ),
    Row(
        "out links to a device (--overwrite)",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/null.jsonl", "--overwrite"),
        files={"doc.txt": TEXT},
        setup="os.symlink('/dev/null', 'null.jsonl')",
        expect=("null.jsonl", "not a regular file"),
    ),
    Row(
        "out is a symlink loop",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/l1.jsonl"),
        files={"doc.txt": TEXT},
        setup="os.symlink('l2.jsonl', 'l1.jsonl'); os.symlink('l1.jsonl', 'l2.jsonl')",
        expect=("l1.jsonl", "symbolic link loop"),
    ),
    Row(
        "rejected file is a named pipe",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/q.jsonl"),
        files={"doc.txt": TEXT},
        setup="os.mkfifo('q.rejected.jsonl')",
        expect=("q.rejected.jsonl", "not a regular file"),
    ),
    Row(
        "resume, manifest is a named pipe",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/o.jsonl", "--resume"),
        finished=True,
        setup="os.remove('o.manifest.json'); os.mkfifo('o.manifest.json')",
        expect=("o.manifest.json", "not a regular file"),
    ),
    Row(
        "audit, documents a named pipe",
        ["audit", "{t}/o.jsonl", "--docs", "{t}/p.txt", "--out", "{t}/a"],
        finished=True,
        setup="os.mkfifo('p.txt')",
        expect=("p.txt", "not a regular file"),
    ),
    Row(
        "audit, QA file a named pipe",
        ["audit", "{t}/p.jsonl", "--docs", "{t}/doc.txt", "--out", "{t}/a"],
        files={"doc.txt": TEXT},
        setup="os.mkfifo('p.jsonl')",
        expect=("p.jsonl", "not a regular file"),
    ),
    Row(
        "audit, payloads a named pipe",
        ["audit", "{t}/o.jsonl", "--docs", "{t}/doc.txt", "--out", "{t}/a", "--payloads", "{t}/p.txt"],
        finished=True,
        setup="os.mkfifo('p.txt')",
        expect=("p.txt", "not a regular file"),
    ),
    Row(
        "audit --out is a named pipe",
        ["audit", "{t}/o.jsonl", "--docs", "{t}/doc.txt", "--out", "{t}/p"],
        finished=True,
        setup="os.mkfifo('p')",
        expect=("--out", "not a regular file"),
    ),
    Row(
        "audit --out below a file",
        ["audit", "{t}/o.jsonl", "--docs", "{t}/doc.txt", "--out", "{t}/doc.txt/a"],
        finished=True,
        expect=("is a file, not a directory",),
    ),
    Row(
        "audit, report.html is a directory",
        ["audit", "{t}/o.jsonl", "--docs", "{t}/doc.txt", "--out", "{t}/a"],
        finished=True,
        files={"a/report.html/.keep": ""},
        expect=("report.html is a directory",),
    ),
    Row(
        "export of a named pipe",
        ["export", "{t}/p.jsonl", "--format", "openai", "--out", "{t}/x.jsonl"],
        setup="os.mkfifo('p.jsonl')",
        expect=("p.jsonl", "not a regular file"),
    ),
    Row(
        "export --out a named pipe (--overwrite)",
        ["export", "{t}/o.jsonl", "--format", "openai", "--out", "{t}/p.jsonl", "--overwrite"],
        finished=True,
        setup="os.mkfifo('p.jsonl')",
        expect=("p.jsonl", "not a regular file"),
    ),
    Row(
        "export --out below a file",
        ["export", "{t}/o.jsonl", "--format", "openai", "--out", "{t}/doc.txt/x.jsonl"],
        finished=True,
        expect=("is a file, not a directory",),
    ),
    Row(
        "export hf-dataset --out below a file",
        ["export", "{t}/o.jsonl", "--format", "hf-dataset", "--out", "{t}/doc.txt/ds"],
        finished=True,
        expect=("is a file, not a directory",),
    ),
    Row(
        "export --out a folder that is not a dataset (--overwrite)",
        ["export", "{t}/o.jsonl", "--format", "hf-dataset", "--out", "{t}/d", "--overwrite"],
        finished=True,
        files={"d/mine.txt": "keep me"},
        expect=("does not hold a saved dataset",),
    ),
    Row(
        "export, kept of the wrong type",
        ["export", "{t}/q.jsonl", "--format", "openai", "--out", "{t}/x.jsonl"],
        files={"q.jsonl": '{"id": "a", "question": "q", "answer": "a", "kept": "yes"}\n'},
        expect=("q.jsonl:1", "'kept' must be"),
    ),
    Row(
        "export, question of the wrong type",
        ["export", "{t}/q.jsonl", "--format", "openai", "--out", "{t}/x.jsonl"],
        files={"q.jsonl": '{"id": "a", "question": 5, "answer": "a"}\n'},
        expect=("q.jsonl:1", "'question'"),
    ),
    Row(
        "export, masked ranges malformed",
        ["export", "{t}/q.jsonl", "--format", "cartridges-parquet", "--out", "{t}/x.parquet"],
        files={"q.jsonl": '{"id": "a", "question": "q", "answer": "a", "context": {"masked": [["x", 2]]}}\n'},
        expect=("q.jsonl:1", "'masked'"),
    ),
    Row(
        "merge, manifest is a named pipe",
        ["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl"],
        finished=True,
        setup="os.remove('o.manifest.json'); os.mkfifo('o.manifest.json')",
        expect=("o.manifest.json", "not a regular file"),
    ),
    Row(
        "merge, manifest fingerprint of the wrong type",
        ["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl"],
        finished=True,
        setup="open('o.manifest.json', 'w').write('{\"fingerprint\": 5}')",
        expect=("'fingerprint'",),
    ),
    Row(
        "merge, record id of the wrong type",
        ["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl"],
        finished=True,
        setup=(
            "import json\n"
            "rows = [json.loads(x) for x in open('o.jsonl')]\n"
            "rows[0]['id'] = 5\n"
            "open('o.jsonl', 'w').write(''.join(json.dumps(r) + '\\n' for r in rows))"
        ),
        expect=("o.jsonl:1", "without an 'id'"),
    ),
    Row(
        "merge, record of another run",
        ["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl"],
        finished=True,
        setup=(
            "import json\n"
            "rows = [json.loads(x) for x in open('o.jsonl')]\n"
            "rows[1]['fingerprint'] = 'other'\n"
            "open('o.jsonl', 'w').write(''.join(json.dumps(r) + '\\n' for r in rows))"
        ),
        expect=("o.jsonl:2", "fingerprint 'other'"),
    ),
    Row(
        "merge --out a named pipe (--overwrite)",
        ["merge", "{t}/o.jsonl", "--out", "{t}/p.jsonl", "--overwrite"],
        finished=True,
        setup="os.mkfifo('p.jsonl')",
        expect=("p.jsonl", "not a regular file"),
    ),
    Row(
        "merge --out below a file",
        ["merge", "{t}/o.jsonl", "--out", "{t}/doc.txt/m.jsonl"],
        finished=True,
        expect=("is a file, not a directory",),
    ),
    Row(
        "import-cartridges of a named pipe",
        ["import-cartridges", "{t}/c.yaml", "--out", "{t}/rq.yaml"],
        setup="os.mkfifo('c.yaml')",
        expect=("c.yaml", "not a regular file"),
    ),
    Row(
        "import-cartridges --out a named pipe (--overwrite)",
        ["import-cartridges", "{t}/c.yaml", "--out", "{t}/p.yaml", "--overwrite"],
        files={"c.yaml": "synthesizer: {}\n"},
        setup="os.mkfifo('p.yaml')",
        expect=("p.yaml", "not a regular file"),
    ),
    # -- out of space: a real write failure; every earlier output stays as it was --------------------------------
    Row(
        "disk full (file size limit) during generate",
        gen("{t}/doc.txt", "--budget", "30", "--out", "{t}/g.jsonl"),
        code=1,
        files={"doc.txt": TEXT},
        preamble=file_size_limit(1500),
        expect=(TOO_LARGE, "--resume"),
    ),
    Row(
        "disk full (fsync) during generate",
        gen("{t}/doc.txt", "--budget", "30", "--out", "{t}/g.jsonl"),
        code=1,
        files={"doc.txt": TEXT},
        preamble=FSYNC_FULL,
        expect=(NO_SPACE, "--resume"),
    ),
    Row(
        "disk full (file size limit) during resume of a finished run",
        gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/o.jsonl", "--resume"),
        code=1,
        finished=True,
        preamble=file_size_limit(100),  # the manifest (rewritten whole, or not at all) is larger
        expect=(TOO_LARGE,),
    ),
    Row(
        "disk full (file size limit) writing audit over an earlier audit",
        ["audit", "{t}/o.jsonl", "--docs", "{t}/doc.txt", "--out", "{t}/a"],
        code=1,
        finished=True,
        files={"q.jsonl": FOREIGN_QA},
        before=(["audit", "{t}/q.jsonl", "--docs", "{t}/doc.txt", "--out", "{t}/a"],),  # another audit's files
        preamble=file_size_limit(1000),
        expect=(TOO_LARGE,),
    ),
    Row(
        "disk full (fsync) writing audit over an earlier audit",
        ["audit", "{t}/o.jsonl", "--docs", "{t}/doc.txt", "--out", "{t}/a"],
        code=1,
        finished=True,
        files={"q.jsonl": FOREIGN_QA},
        before=(["audit", "{t}/q.jsonl", "--docs", "{t}/doc.txt", "--out", "{t}/a"],),  # another audit's files
        preamble=FSYNC_FULL,
        expect=(NO_SPACE,),
    ),
    Row(
        "disk full (file size limit) exporting openai over an earlier export",
        ["export", "{t}/o.jsonl", "--format", "openai", "--out", "{t}/x.jsonl", "--overwrite"],
        code=1,
        finished=True,
        before=(["export", "{t}/o.jsonl", "--format", "openai", "--out", "{t}/x.jsonl"],),
        preamble=file_size_limit(200),
        expect=(TOO_LARGE,),
    ),
    Row(
        "disk full (file size limit) exporting parquet over an earlier export",
        ["export", "{t}/o.jsonl", "--format", "cartridges-parquet", "--out", "{t}/x.parquet", "--overwrite"],
        code=1,
        finished=True,
        before=(["export", "{t}/o.jsonl", "--format", "cartridges-parquet", "--out", "{t}/x.parquet"],),
        preamble=file_size_limit(1000),
        expect=(TOO_LARGE,),
    ),
    Row(
        "disk full (file size limit) exporting hf-dataset over an earlier export",
        ["export", "{t}/o.jsonl", "--format", "hf-dataset", "--out", "{t}/ds", "--overwrite"],
        code=1,
        finished=True,
        before=(["export", "{t}/o.jsonl", "--format", "hf-dataset", "--out", "{t}/ds"],),
        preamble=file_size_limit(1000),
        expect=(TOO_LARGE,),
    ),
    Row(
        "disk full (fsync) exporting hf-dataset over an earlier export",
        ["export", "{t}/o.jsonl", "--format", "hf-dataset", "--out", "{t}/ds", "--overwrite"],
        code=1,
        finished=True,
        before=(["export", "{t}/o.jsonl", "--format", "hf-dataset", "--out", "{t}/ds"],),
        preamble=FSYNC_FULL,
        expect=(NO_SPACE,),
    ),
    Row(
        "disk full (file size limit) merging over an earlier merge",
        ["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl", "--overwrite"],
        code=1,
        finished=True,
        before=(["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl"],),
        preamble=file_size_limit(1000),
        expect=(TOO_LARGE,),
    ),
    Row(
        "disk full (fsync) merging over an earlier merge",
        ["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl", "--overwrite"],
        code=1,
        finished=True,
        before=(["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl"],),
        preamble=FSYNC_FULL,
        expect=(NO_SPACE,),
    ),
    Row(
        "disk full (file size limit) importing over an earlier config",
        ["import-cartridges", "{t}/c.yaml", "--out", "{t}/rq.yaml", "--overwrite"],
        code=1,
        files={"c.yaml": "synthesizer: {}\n"},
        before=(["import-cartridges", "{t}/c.yaml", "--out", "{t}/rq.yaml"],),
        preamble=file_size_limit(50),
        expect=(TOO_LARGE,),
    ),
]


def checksums(root: Path) -> dict[str, str]:
    """Every entry below `root`: a file by its content's hash, a link by its target, a pipe by its kind (links
    and pipes are never opened: reading /dev/zero never ends, opening a pipe blocks)."""
    out = {}
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode
        name = str(path.relative_to(root))
        if stat.S_ISLNK(mode):
            out[name] = "link:" + os.readlink(path)
        elif stat.S_ISREG(mode):
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif not stat.S_ISDIR(mode):
            out[name] = f"special:{stat.S_IFMT(mode)}"
    return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished generate run (o.jsonl, its rejected file and manifest on doc.txt), copied into rows."""
    root = tmp_path_factory.mktemp("finished")
    (root / "doc.txt").write_text(TEXT, encoding="utf-8")
    proc = run([*gen(str(root / "doc.txt"), "--budget", "3", "--out", str(root / "o.jsonl"))])
    assert proc.returncode == 0, proc.stderr
    return root


def run(args: list[str], timeout: float = HANG_S, preamble: str | None = None) -> subprocess.CompletedProcess:
    cli = [sys.executable, "-c", (preamble or "") + MAIN]
    return subprocess.run([*cli, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


@dataclass
class Outcome:
    row: Row
    code: int | None
    stderr: str
    hang: bool
    traceback: bool
    one_line: bool
    lost: list


def run_row(row: Row, tmp: Path, finished: Path) -> Outcome:
    if row.finished:
        shutil.copytree(finished, tmp, dirs_exist_ok=True)
    for rel, data in row.files.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    if row.setup:
        subprocess.run([sys.executable, "-c", f"import os\n{row.setup}"], cwd=tmp, check=True)
    for command in row.before:
        made = run([a.replace("{t}", str(tmp)) for a in command])
        assert made.returncode == 0, (command, made.stderr)
    before = checksums(tmp)
    args = [a.replace("{t}", str(tmp)) for a in row.args]
    try:
        proc = run(args, preamble=row.preamble)
        code, err, hang = proc.returncode, proc.stderr, False
    except subprocess.TimeoutExpired as exc:
        code, err, hang = None, (exc.stderr or b"").decode("utf-8", "replace"), True
    after = checksums(tmp)
    lost = [name for name, digest in before.items() if name not in row.changes and after.get(name) != digest]
    # A failed write leaves no temporary file behind (atomic writes remove theirs).
    lost += [name for name in after.keys() - before.keys() if name.endswith(".tmp") or ".old-" in name]
    lines = err.strip().splitlines()
    one_line = code == 0 or (len(lines) == 1 and lines[0].startswith("robustqa: error: "))
    return Outcome(row, code, err, hang, "Traceback" in err, one_line, lost)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, finished_run) -> dict[str, Outcome]:
    results = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {row.name: pool.submit(run_row, row, tmp_path_factory.mktemp("row"), finished_run) for row in ROWS}
        for name, future in futures.items():
            results[name] = future.result()
    return results


TABLE: dict[str, Outcome] = {}


def test_row_names_are_unique():
    assert len({r.name for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_misuse(outcomes, row):
    o = outcomes[row.name]
    TABLE[row.name] = o
    assert not o.hang, f"hung for {HANG_S}s"
    assert not o.traceback, o.stderr
    assert not o.lost, f"changed or deleted: {o.lost}"
    assert o.code == row.code, (o.code, o.stderr)
    assert o.one_line, o.stderr
    for needle in row.expect:
        assert needle in o.stderr, (needle, o.stderr)


# -- real processes: concurrency and kill -9 ------------------------------------------------------------------


def big_doc(path: Path, paragraphs: int = 3000) -> None:
    path.write_text(
        "\n\n".join(
            f"Paragraph {i} says the river Elbe flows past Dresden in year {1000 + i}." for i in range(paragraphs)
        ),
        encoding="utf-8",
    )


def test_two_runs_on_one_output_the_second_is_refused_naming_the_holder(tmp_path):
    # The second run must start while the first still writes; on a loaded machine a Python start-up can outlast a
    # small run, so the budget grows until the runs overlap (the second's verdict is only judged then).
    for budget in (1500, 6000, 24000):
        doc, out = tmp_path / f"big{budget}.txt", tmp_path / f"o{budget}.jsonl"
        big_doc(doc)
        args = [*CLI, *gen(str(doc), "--budget", str(budget), "--batch-size", "1", "--out", str(out))]
        first = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lock = tmp_path / f".o{budget}.jsonl.lock"
        deadline = time.monotonic() + HANG_S
        while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()
        second = subprocess.run(
            [*args[:-2], "--seed", "4", "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=HANG_S
        )
        overlapped = first.poll() is None
        first_out, first_err = first.communicate(timeout=600)
        assert first.returncode == 0, first_err
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(lines) == 1, second.stderr
        rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
        assert len({r["id"] for r in rows}) == len(rows) and len({r["fingerprint"] for r in rows}) == 1
        assert not lock.exists()
        if overlapped:
            assert f"pid {first.pid}" in lines[0] and "being written by another robustqa run" in lines[0], lines
            assert len(rows) == budget
            break
        assert "already holds records" in lines[0], lines  # it came too late: the finished output is refused
    else:
        pytest.fail("the two runs never overlapped")
    TABLE["two runs on one output"] = Outcome(
        Row("two runs on one output", []), 2, second.stderr, False, False, True, []
    )


def test_same_config_twice_at_once_never_duplicates(tmp_path):
    doc, out = tmp_path / "big.txt", tmp_path / "o.jsonl"
    big_doc(doc, 500)
    args = [*CLI, *gen(str(doc), "--budget", "300", "--batch-size", "1", "--out", str(out))]
    procs = [
        subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len({r["id"] for r in rows}) == len(rows), "duplicate ids"
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    # Overlapping, the loser finds the lock; starting after the winner ended, it finds a finished output.
    assert len(loser.strip().splitlines()) == 1, loser
    assert "being written by another robustqa run" in loser or "already holds records" in loser, loser
    assert len(rows) == 300


def test_kill_9_then_resume_is_exact(tmp_path):
    doc = tmp_path / "big.txt"
    big_doc(doc)
    ref, out = tmp_path / "ref.jsonl", tmp_path / "o.jsonl"
    base = gen(str(doc), "--budget", "800", "--batch-size", "2", "--seed", "3")
    assert run([*base, "--out", str(ref)], timeout=300).returncode == 0
    proc = subprocess.Popen([*CLI, *base, "--out", str(out)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while (not out.exists() or out.stat().st_size < 20_000) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "finished before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = run([*base, "--out", str(out), "--resume"], timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    key = lambda path: sorted(path.read_text(encoding="utf-8").splitlines())  # noqa: E731
    assert key(out) == key(ref)
    TABLE["kill -9 then --resume"] = Outcome(Row("kill -9 then --resume", [], code=0), 0, "", False, False, True, [])


def test_out_of_space_then_resume_is_exact(tmp_path):
    """A run that hits a full disk (a real failed write) part-way stops on one line; the records it wrote are
    complete, and a resume with space again gives exactly the uninterrupted run's records."""
    doc = tmp_path / "doc.txt"
    big_doc(doc, 200)
    ref, out = tmp_path / "ref.jsonl", tmp_path / "o.jsonl"
    base = gen(str(doc), "--budget", "120", "--batch-size", "4", "--seed", "3")
    assert run([*base, "--out", str(ref)], timeout=300).returncode == 0
    assert ref.stat().st_size > 120_000  # the limit below falls part-way through the output
    full = run([*base, "--out", str(out)], timeout=300, preamble=file_size_limit(100_000))
    lines = full.stderr.strip().splitlines()
    assert full.returncode == 1 and len(lines) == 1 and TOO_LARGE in lines[0], full.stderr
    assert "Traceback" not in full.stderr
    written = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]  # every line whole
    assert 0 < len(written) < 120
    resumed = run([*base, "--out", str(out), "--resume"], timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({len(written)} done before)" in resumed.stdout, resumed.stdout
    key = lambda path: sorted(path.read_text(encoding="utf-8").splitlines())  # noqa: E731
    assert key(out) == key(ref)
    TABLE["out of space, then --resume"] = Outcome(
        Row("out of space, then --resume", [], code=1), 1, full.stderr, False, False, True, []
    )


LOCKED = {
    "export openai": (["export", "{t}/o.jsonl", "--format", "openai", "--out", "{t}/x.jsonl"], "x.jsonl"),
    "export hf-dataset": (["export", "{t}/o.jsonl", "--format", "hf-dataset", "--out", "{t}/ds"], "ds"),
    "merge": (["merge", "{t}/o.jsonl", "--out", "{t}/m.jsonl", "--overwrite"], "m.jsonl"),
    "audit": (["audit", "{t}/o.jsonl", "--docs", "{t}/doc.txt", "--out", "{t}/a"], "a/audit.json"),
    "generate": (gen("{t}/doc.txt", "--budget", "3", "--out", "{t}/g.jsonl"), "g.jsonl"),
}


@pytest.mark.parametrize("command", list(LOCKED))
def test_an_output_another_process_holds_is_refused_naming_it(command, tmp_path, finished_run):
    """Every command that writes an output takes its lock first: while another process holds it (here this
    test's own process, through the same flock), the command is refused on one line naming the holder's pid
    and touches nothing."""
    from robustqa.io.lock import OutputLock

    shutil.copytree(finished_run, tmp_path, dirs_exist_ok=True)
    args, target = LOCKED[command]
    before = checksums(tmp_path)
    with OutputLock(tmp_path / target):
        proc = run([a.replace("{t}", str(tmp_path)) for a in args])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert f"pid {os.getpid()}" in lines[0] and "being written by another robustqa run" in lines[0], lines
    assert checksums(tmp_path) == before
    name = f"{command} onto an output another process holds"
    TABLE[name] = Outcome(Row(name, args), 2, proc.stderr, False, False, True, [])


def test_deep_html_below_the_limit_keeps_every_sentence(tmp_path):
    from robustqa.io.loaders import load_documents

    page = tmp_path / "p.html"
    page.write_text(html_nested(400), encoding="utf-8")
    (doc,) = load_documents([page])
    assert all(f"Sentence number {i} is here." in doc.text for i in range(400))


def test_zz_closing_table(outcomes, capsys):
    """Cases tried, clean errors, tracebacks, hangs and data losses: the figures the issue asks for."""
    table = {**{name: o for name, o in outcomes.items()}, **TABLE}
    tried = len(table)
    tracebacks = sum(o.traceback for o in table.values())
    hangs = sum(o.hang for o in table.values())
    losses = sum(bool(o.lost) for o in table.values())
    clean = sum(1 for o in table.values() if o.code not in (0, None) and o.one_line and not o.traceback)
    valid = sum(1 for o in table.values() if o.code == 0)
    lines = [
        "misuse table: cases tried | clean errors | valid runs | tracebacks | hangs | data losses",
        f"              {tried:>11} | {clean:>12} | {valid:>10} | {tracebacks:>10} | {hangs:>5} | {losses:>11}",
    ]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    if os.environ.get("ROBUSTQA_MISUSE_RESULT"):
        counts = {"cases_tried": tried, "clean_errors": clean, "valid_runs": valid}
        counts.update({"tracebacks": tracebacks, "hangs": hangs, "data_losses": losses})
        cases = [
            {
                "case": name,
                "command": " ".join(["robustqa", *o.row.args]),
                "expected_code": o.row.code,
                "code": o.code,
                "one_line": o.one_line,
                "traceback": o.traceback,
                "hang": o.hang,
                "lost": o.lost,
                # The case folder as the rows write it, so the result names no machine.
                "stderr": re.sub(r"\S*/pytest-\d+/[^/\s]+", "{t}", o.stderr.strip())[:300],
            }
            for name, o in table.items()
        ]
        Path(os.environ["ROBUSTQA_MISUSE_RESULT"]).write_text(
            json.dumps({**counts, "cases": cases}, indent=1, ensure_ascii=False), encoding="utf-8"
        )
    assert tracebacks == 0 and hangs == 0 and losses == 0
    assert clean + valid == tried


def test_the_cli_catches_the_exception_classes_the_installed_typer_raises():
    """typer >= 0.2x bundles its own click: the handlers must hold the classes typer actually raises."""
    import typer

    from robustqa.cli.errors import ABORTS, CLICK_ERRORS, EXITS

    assert issubclass(typer.BadParameter, CLICK_ERRORS)
    assert issubclass(typer.Exit, EXITS) and issubclass(typer.Abort, ABORTS)
