"""Benchmark: one huge document stays bounded (issue 18): planning and the audit linear in its length.

Writes a text file of `--mb` MB (200 by default) into a temporary folder (never into the repository): paragraphs
of 40-120 words drawn with a fixed seed from the bundled declaration's vocabulary plus numbered words, so the
text is not one repeated block. Then, each in its own process, with the wall time and the peak RSS of exactly
that process (os.wait4):

    generate   `robustqa generate FILE --backend fake --budget 1000` (the real CLI: read, weigh, plan the
               1,000 token windows, run them through FakeLM, write the records)
    audit      `robustqa audit QA --docs FILE --out DIR` on those records (segment the whole document into
               sentences, index them, attribute and measure); stopped after `--audit-timeout` seconds

and checks both against the bounds: under 60 s and under 2 GB (the RSS is the command's own process; the audit's
sentence-splitting worker processes, forked from it, are not in that figure). Prints a table and writes
benchmarks/results/large_document.json.

    python benchmarks/large_document.py               # 200 MB, budget 1000
    python benchmarks/large_document.py --mb 20       # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))

from _common import RunStart, run_header, write_result  # noqa: E402

CLI = [sys.executable, "-c", "from robustqa.cli import main; main()"]
SECONDS_BOUND = 60.0
RSS_BOUND_MB = 2048.0


def write_document(path: Path, megabytes: float, seed: int = 0) -> int:
    words = (REPO / "examples" / "declaration_of_independence.md").read_text(encoding="utf-8").split()
    words += [f"item{i}" for i in range(5000)]
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    size = 0
    with open(path, "w", encoding="utf-8") as fh:
        while size < target:
            para = " ".join(rng.choice(words) for _ in range(rng.randint(40, 120))) + ".\n\n"
            fh.write(para)
            size += len(para)
    return size


def timed(args: list[str], timeout: float) -> dict:
    """Run a command; its wall time, its own peak RSS, exit code and the last lines of its output."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    timed_out = False
    deadline = t0 + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            timed_out = True
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    output = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit_code": os.waitstatus_to_exitcode(status),
        "timed_out": timed_out,
        "output_tail": output.strip().splitlines()[-3:],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200.0, help="document size in MB")
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--audit-timeout", type=float, default=600.0, help="seconds before the audit is stopped")
    parser.add_argument("--skip-audit", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "large_document.json")
    args = parser.parse_args(argv)
    start = RunStart()
    with tempfile.TemporaryDirectory(prefix="robustqa-large-") as tmp:
        doc, qa = Path(tmp) / "large.txt", Path(tmp) / "qa.jsonl"
        chars = write_document(doc, args.mb)
        fake = ["--backend", "fake", "--no-cache", "--no-progress"]
        steps = {
            "generate": timed(
                [*CLI, "generate", str(doc), *fake, "--budget", str(args.budget), "--out", str(qa)], 600.0
            )
        }
        if not args.skip_audit and steps["generate"]["exit_code"] == 0:
            audit = [*CLI, "audit", str(qa), "--docs", str(doc), "--out", str(Path(tmp) / "audit")]
            steps["audit"] = timed(audit, args.audit_timeout)
            report = Path(tmp) / "audit" / "audit.json"
            if report.exists():  # where the audit's time went, by phase
                steps["audit"]["phases_seconds"] = json.loads(report.read_text(encoding="utf-8"))["timing_seconds"]
    for step in steps.values():
        # The temporary folder is this machine's: committed results name it <tmp>.
        step["output_tail"] = [line.replace(tmp, "<tmp>") for line in step["output_tail"]]
        step["within_bounds"] = (
            step["exit_code"] == 0 and step["seconds"] < SECONDS_BOUND and step["peak_rss_mb"] < RSS_BOUND_MB
        )
    result = {
        **run_header("large_document", "large_document.py", argv, start, smoke=args.mb < 200),
        "document": {"megabytes": args.mb, "characters": chars, "budget": args.budget},
        "bounds": {"seconds": SECONDS_BOUND, "peak_rss_mb": RSS_BOUND_MB},
        "steps": steps,
    }
    print(f"{'step':<10} {'seconds':>8} {'peak RSS MB':>12} {'exit':>5}  within {SECONDS_BOUND:.0f} s / 2 GB")
    for name, step in steps.items():
        flag = "yes" if step["within_bounds"] else ("TIMED OUT" if step["timed_out"] else "no")
        print(f"{name:<10} {step['seconds']:>8.1f} {step['peak_rss_mb']:>12.1f} {step['exit_code']:>5}  {flag}")
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
