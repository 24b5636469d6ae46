"""Benchmark: does memory stay flat as the corpus grows? (issue 8)

Builds a corpus of N documents from the real XQuAD and COVID-QA texts of ../shared/data (cut into
paragraph-sized pieces, each with its own id), and measures the peak resident memory of each step at corpus
size x and 10x, with the budget growing alike (one QA pair per document):

    generate   `robustqa generate --backend fake` (the real CLI, documents streamed in two passes). FakeLM
               keeps every request in `.calls` for tests to inspect; that log is switched off here so the
               figure is robustqa's own (`generate, FakeLM call log kept` shows it on, as measured before)
    read       streaming every record with `robustqa.io.jsonl.read_records`
    merge      `robustqa merge` of the three `--shard I/3` outputs of the same run
    export     `robustqa export --format openai` (streamed) and `--format hf-dataset` (streamed through
               Arrow files with `datasets.Dataset.from_generator`)

Every step runs in its own process; its peak RSS (ru_maxrss) is read at exit, and its peak anonymous memory
(RssAnon, sampled) beside it: RSS also counts the pages of memory-mapped files (an Arrow dataset being saved),
which the kernel reclaims at will. A `baseline` process that only imports the CLI gives the fixed cost, so the
table shows the growth. Prints a table and writes
benchmarks/results/memory_scaling.json.

    python benchmarks/memory_scaling.py                 # x = 1,000 documents, 10x = 10,000
    python benchmarks/memory_scaling.py --docs 200      # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import add_data_argument, data_file  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# Runs `code` (with `argv` as sys.argv[1:]) and reports the process's peak RSS at exit, however it exits, and
# the peak of its anonymous memory (RssAnon, sampled every 5 ms): RSS also counts pages of files mapped into
# the process (Arrow datasets are memory-mapped), which the kernel can drop at will; anonymous memory it cannot.
PROBE = """
import atexit, json, os, resource, sys, threading, time
_anon_kb = [0]
def _sample():
    while True:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    _anon_kb[0] = max(_anon_kb[0], int(line.split()[1]))
        time.sleep(0.005)
if os.path.exists("/proc/self/status"):
    threading.Thread(target=_sample, daemon=True).start()
def _report():
    with open(os.environ["MEMORY_PROBE_OUT"], "w") as fh:
        maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        json.dump({"maxrss_mb": maxrss_mb, "anon_peak_mb": _anon_kb[0] / 1024 or None}, fh)
atexit.register(_report)
sys.argv = ["robustqa", *json.loads(os.environ["MEMORY_PROBE_ARGV"])]
exec(os.environ["MEMORY_PROBE_CODE"])
"""
CLI = "from robustqa.cli import main; main(sys.argv[1:])"
# The same CLI with FakeLM's call log (a list of every request, for tests) replaced by one that keeps nothing.
CLI_NO_CALL_LOG = (
    "import robustqa.lm.fake as fake\n"
    "class _Unlogged(list):\n"
    "    def append(self, item):\n"
    "        pass\n"
    "_init = fake.FakeLM.__init__\n"
    "def _init_unlogged(self, *args, **kwargs):\n"
    "    _init(self, *args, **kwargs)\n"
    "    self.calls = _Unlogged()\n"
    "fake.FakeLM.__init__ = _init_unlogged\n" + CLI
)
READ = (
    "from robustqa.io.jsonl import read_records\n"
    "n = sum(1 for _ in read_records(sys.argv[1]))\n"
    "print(n, 'records read')"
)
BASELINE = "import robustqa.cli, robustqa.io.jsonl, robustqa.runner, robustqa.strategies.naive"


def real_paragraphs(data: Path) -> list[str]:
    """Paragraph-sized pieces of real text: XQuAD paragraphs and COVID-QA papers split at blank lines."""
    pieces = []
    xquad = json.loads(data_file(data, "xquad_en_dev.json").read_text(encoding="utf-8"))
    for article in xquad["data"]:
        pieces += [p["context"] for p in article["paragraphs"]]
    covid = data / "covidqa" / "covidqa_dev.json"
    if covid.exists():
        for article in json.loads(covid.read_text(encoding="utf-8"))["data"]:
            for para in article["paragraphs"]:
                pieces += [p for p in para["context"].split("\n\n") if len(p.split()) >= 40]
    return pieces


def write_corpus(path: Path, n_docs: int, pieces: list[str]) -> int:
    """n_docs JSONL documents cycling through the real pieces; returns the corpus size in bytes."""
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n_docs):
            fh.write(json.dumps({"id": f"doc{i:07d}", "text": pieces[i % len(pieces)]}, ensure_ascii=False) + "\n")
    return path.stat().st_size


def probe(code: str, argv: list[str], workdir: Path) -> dict:
    out = workdir / f"probe-{time.monotonic_ns()}.json"
    env = dict(os.environ, MEMORY_PROBE_OUT=str(out), MEMORY_PROBE_ARGV=json.dumps(argv), MEMORY_PROBE_CODE=code)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"step failed ({argv[:1]}): {proc.stderr.strip()[-2000:]}")
    result = json.loads(out.read_text())
    result["seconds"] = round(seconds, 2)
    result["maxrss_mb"] = round(result["maxrss_mb"], 1)
    if result["anon_peak_mb"] is not None:
        result["anon_peak_mb"] = round(result["anon_peak_mb"], 1)
    return result


def measure(n_docs: int, pieces: list[str], workdir: Path) -> dict:
    corpus = workdir / f"corpus{n_docs}.jsonl"
    size = write_corpus(corpus, n_docs, pieces)
    common = [
        str(corpus),
        "--strategy",
        "naive",
        "--budget",
        str(n_docs),
        "--backend",
        "fake",
        "--no-cache",
        "--no-progress",
        "--seed",
        "0",
    ]
    qa = workdir / f"qa{n_docs}.jsonl"
    steps = {"generate": probe(CLI_NO_CALL_LOG, ["generate", *common, "--out", str(qa)], workdir)}
    logged = workdir / f"qa{n_docs}.logged.jsonl"
    steps["generate, FakeLM call log kept"] = probe(CLI, ["generate", *common, "--out", str(logged)], workdir)
    steps["read"] = probe(READ, [str(qa)], workdir)
    shards = []
    for i in range(3):
        shard = workdir / f"qa{n_docs}.shard{i}.jsonl"
        probe(CLI_NO_CALL_LOG, ["generate", *common, "--shard", f"{i}/3", "--out", str(shard)], workdir)
        shards.append(str(shard))
    steps["merge"] = probe(CLI, ["merge", *shards, "--out", str(workdir / f"merged{n_docs}.jsonl")], workdir)
    steps["export openai"] = probe(
        CLI, ["export", str(qa), "--format", "openai", "--out", str(workdir / f"ft{n_docs}.jsonl")], workdir
    )
    steps["export hf-dataset"] = probe(
        CLI, ["export", str(qa), "--format", "hf-dataset", "--out", str(workdir / f"hf{n_docs}")], workdir
    )
    records = sum(1 for _ in open(qa, encoding="utf-8"))
    return {"documents": n_docs, "corpus_mb": round(size / 2**20, 2), "records": records, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1000, help="Documents at corpus size x (10x is ten times).")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "memory_scaling.json")
    add_data_argument(parser, "xquad_en_dev.json, covidqa/")
    args = parser.parse_args()

    pieces = real_paragraphs(args.data)
    with tempfile.TemporaryDirectory(prefix="robustqa-memory-") as tmp:
        workdir = Path(tmp)
        baseline = probe(BASELINE, [], workdir)
        sizes = [measure(n, pieces, workdir) for n in (args.docs, 10 * args.docs)]

    small, large = sizes
    rows = []
    print(f"baseline (imports only): {baseline['maxrss_mb']:.0f} MB peak RSS")
    print(
        f"corpus x: {small['documents']} docs, {small['corpus_mb']} MB; 10x: {large['documents']} docs, "
        f"{large['corpus_mb']} MB; one QA pair per document\n"
    )
    print(f"{'step':<32}{'x: MB':>8}{'10x: MB':>9}{'growth MB':>11}{'anon growth MB':>16}{'x: s':>7}{'10x: s':>8}")
    for step in small["steps"]:
        a, b = small["steps"][step], large["steps"][step]
        growth = b["maxrss_mb"] - a["maxrss_mb"]
        anon = None
        if a.get("anon_peak_mb") is not None and b.get("anon_peak_mb") is not None:
            anon = round(b["anon_peak_mb"] - a["anon_peak_mb"], 1)
        rows.append(
            {
                "step": step,
                "x_mb": a["maxrss_mb"],
                "x10_mb": b["maxrss_mb"],
                "growth_mb": round(growth, 1),
                "x_anon_mb": a.get("anon_peak_mb"),
                "x10_anon_mb": b.get("anon_peak_mb"),
                "anon_growth_mb": anon,
                "x_seconds": a["seconds"],
                "x10_seconds": b["seconds"],
            }
        )
        print(
            f"{step:<32}{a['maxrss_mb']:>8.0f}{b['maxrss_mb']:>9.0f}{growth:>11.1f}"
            f"{'n/a' if anon is None else f'{anon:.1f}':>16}{a['seconds']:>7.1f}{b['seconds']:>8.1f}"
        )
    result = {
        "benchmark": "memory_scaling",
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": sys.version.split()[0],
        "baseline_mb": baseline["maxrss_mb"],
        "sizes": sizes,
        "table": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
