"""Benchmark: the misuse table of issue 18, every bad input and misuse through the real CLI (fake backend).

Runs tests/test_misuse.py (its table of rows, plus the real-process cases: two runs on one output, kill -9 then
`--resume`, out of space then `--resume`, every writer refused while another process holds its output) and
records what its closing test counts: cases tried, clean errors (one `robustqa: error: ...` line, non-zero exit),
valid runs, tracebacks, hangs and data losses (a file, link or pipe that existed before a case and changed).
Prints the table and writes benchmarks/results/misuse.json with every case (command, expected and actual exit
code, the error line). Takes a few minutes on 2 cores; no model is loaded.

    python benchmarks/misuse_table.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))

from _common import RunStart, run_header, write_result  # noqa: E402

COUNTS = ("cases_tried", "clean_errors", "valid_runs", "tracebacks", "hangs", "data_losses")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "misuse.json")
    args = parser.parse_args(argv)
    start = RunStart()
    with tempfile.TemporaryDirectory(prefix="robustqa-misuse-") as tmp:
        table = Path(tmp) / "table.json"
        env = {**os.environ, "ROBUSTQA_MISUSE_RESULT": str(table)}
        command = [sys.executable, "-m", "pytest", "tests/test_misuse.py", "-q", "-p", "no:cacheprovider"]
        proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        if not table.exists():  # the closing test did not run: report pytest's own account
            raise SystemExit(f"the misuse suite wrote no table (pytest exit {proc.returncode}):\n{proc.stdout[-3000:]}")
        found = json.loads(table.read_text(encoding="utf-8"))
    tail = [line for line in proc.stdout.strip().splitlines() if line.strip()]
    result = {
        **run_header("misuse_table", "misuse_table.py", argv, start),
        "suite": {"command": "python -m pytest tests/test_misuse.py", "exit_code": proc.returncode},
        "suite_summary": tail[-1] if tail else "",
        **{key: found[key] for key in COUNTS},
        "cases": found["cases"],
    }
    write_result(args.out, result)
    print("cases tried | clean errors | valid runs | tracebacks | hangs | data losses")
    print(" | ".join(f"{result[key]:>{len(title)}}" for key, title in zip(COUNTS, _TITLES, strict=True)))
    print(f"pytest: {result['suite_summary']} (exit {proc.returncode})")
    return result


_TITLES = ("cases tried", "clean errors", "valid runs", "tracebacks", "hangs", "data losses")


if __name__ == "__main__":
    main()
