"""Benchmark: `robustqa audit` at scale (issue 5): 100k QA records against 10k documents (10M characters) must
take at most 60 s and 4 GB on 2 cores.

Generates a synthetic corpus (Zipf-distributed pseudo-words in sentences and paragraphs) and QA records in the
three input shapes the audit reads: robustqa records with target offsets, foreign rows naming their document,
and chat rows naming none (attributed by retrieving the document first). Questions pile on popular documents
and on early sentences, so the metrics are not trivial. The audit runs in a child process whose wall time and
peak RSS are measured; results go to benchmarks/results/audit_scale.json.

    python benchmarks/audit_scale.py                      # the full load
    python benchmarks/audit_scale.py --records 5000 --documents 500 --characters 500000   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from itertools import accumulate
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "audit_scale.json"
LIMITS = {"seconds": 60.0, "peak_rss_gb": 4.0}
SHAPES = ("mixed", "target", "named", "docless")


def make_corpus(n_docs: int, n_chars: int, rng: random.Random) -> list[dict]:
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10))) for _ in range(30000)]
    cum_weights = list(accumulate(1.0 / (rank + 1) for rank in range(len(vocab))))  # Zipf: few common words
    docs, produced = [], 0
    for d in range(n_docs):
        per_doc = max(200, (n_chars - produced) // (n_docs - d))  # steer the total to n_chars
        target = rng.randint(per_doc // 3, per_doc * 5 // 3)
        paragraphs, length = [], 0
        while length < target:
            sentences = []
            for _ in range(rng.randint(2, 5)):
                words = rng.choices(vocab, cum_weights=cum_weights, k=rng.randint(8, 24))
                sentences.append(" ".join(words).capitalize() + ".")
            paragraph = " ".join(sentences)
            paragraphs.append(paragraph)
            length += len(paragraph) + 2
        docs.append({"id": f"doc{d:05d}", "text": "\n\n".join(paragraphs)})
        produced += len(docs[-1]["text"])
    return docs


def make_records(docs: list[dict], n_records: int, rng: random.Random, shape: str = "mixed") -> list[dict]:
    stops = {}  # document index -> positions of its full stops (sentence ends)
    doc_weights = list(accumulate(1.0 / (i + 1) ** 0.8 for i in range(len(docs))))
    chosen = rng.choices(range(len(docs)), cum_weights=doc_weights, k=n_records)
    records = []
    for i, d in enumerate(chosen):
        doc = docs[d]
        text = doc["text"]
        # A sentence early in the document more often than late: position bias to measure.
        if d not in stops:
            stops[d] = [k for k, ch in enumerate(text) if ch == "."]
        ends = stops[d]
        k = min(int(rng.expovariate(3.0) * len(ends)), len(ends) - 1)
        start = ends[k - 1] + 2 if k else 0
        end = ends[k] + 1
        words = text[start:end].rstrip(".").split()
        picked = rng.sample(words, min(len(words), rng.randint(3, 6)))
        question = "What does the text say about " + " ".join(picked) + "?"
        a0 = rng.randint(0, max(0, len(words) - 4))
        answer = " ".join(words[a0 : a0 + rng.randint(3, 8)])
        kind = i % 3 if shape == "mixed" else SHAPES.index(shape) - 1
        if kind == 0:
            records.append(
                {
                    "id": f"r{i}",
                    "doc_id": doc["id"],
                    "question": question,
                    "answer": answer,
                    "messages": [
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": answer},
                    ],
                    "target": {"start": start, "end": end, "text": text[start:end]},
                    "context": {"start": 0, "end": 0},
                    "strategy": "synthetic",
                    "model": "none",
                    "seed": i,
                    "fingerprint": "bench",
                    "kept": True,
                    "decisions": [],
                    "meta": {"seed_prompt": rng.choice(["question", "summarization", "creative"])},
                }
            )
        elif kind == 1:
            records.append({"question": question, "answer": answer, "doc_id": doc["id"]})
        else:
            records.append(
                {
                    "messages": [
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": answer},
                    ]
                }
            )
    return records


def child(qa: str, docs: str, out: str) -> None:
    """Runs in the measured process: exactly what `robustqa audit QA --docs DOCS --out OUT` does."""
    from robustqa.audit import run_audit, write_report
    from robustqa.io.loaders import load_documents

    t0 = time.perf_counter()
    result = run_audit(qa, load_documents([docs]), out)
    write_report(result, Path(out) / "report.html")
    summary = result.summary
    summary["timing_seconds"]["total_in_process"] = round(time.perf_counter() - t0, 3)
    print(
        json.dumps(
            {
                "timing": summary["timing_seconds"],
                "dataset": {
                    k: summary["datasets"][0][k]
                    for k in ("records", "coverage", "concentration", "duplicates", "attribution")
                },
                "corpus": summary["corpus"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--characters", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default="mixed",
        help="Record shape: a third of each (mixed), or all with targets, all naming documents, all docless.",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the generated load here (default: temp).")
    parser.add_argument("--child", nargs=3, metavar=("QA", "DOCS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rng = random.Random(args.seed)
        t = time.perf_counter()
        docs = make_corpus(args.documents, args.characters, rng)
        records = make_records(docs, args.records, rng, args.shape)
        docs_path, qa_path = work / "docs.jsonl", work / "qa.jsonl"
        docs_path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
        qa_path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        n_chars = sum(len(d["text"]) for d in docs)
        del docs, records
        print(
            f"generated {args.records:,} records, {args.documents:,} documents, {n_chars:,} characters "
            f"in {time.perf_counter() - t:.1f}s"
        )

        env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
        command = [sys.executable, __file__, "--child", str(qa_path), str(docs_path), str(work / "audit")]
        if _have_taskset():
            command = ["taskset", "-c", "0,1", *command]  # 2 cores, whatever the machine has
        t = time.perf_counter()
        proc = subprocess.run(command, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t
        if proc.returncode != 0:
            sys.exit(f"audit failed:\n{proc.stderr}")
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # Linux: KiB
        detail = json.loads(proc.stdout.strip().splitlines()[-1])

    result = {
        "records": args.records,
        "documents": args.documents,
        "characters": n_chars,
        "seconds": round(seconds, 2),
        "peak_rss_gb": round(peak_gb, 3),
        "limits": LIMITS,
        "passed": seconds <= LIMITS["seconds"] and peak_gb <= LIMITS["peak_rss_gb"],
        "cpu_count": os.cpu_count(),
        "load_average_1min_after": round(os.getloadavg()[0], 2),  # other work on the machine slows the run
        "stage_seconds": detail["timing"],
        "sentences": detail["corpus"]["sentences"],
        "metrics": {
            "coverage": detail["dataset"]["coverage"]["value"],
            "saturation_point": detail["dataset"]["coverage"]["saturation_point"],
            "gini": detail["dataset"]["concentration"]["gini"],
            "attributed": detail["dataset"]["records"]["attributed"],
            "unattributable": detail["dataset"]["records"]["unattributable"],
            "duplicate_pairs": detail["dataset"]["duplicates"]["pairs"],
        },
    }
    results = RESULTS if args.shape == "mixed" else RESULTS.with_name(f"audit_scale_{args.shape}.json")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"| records | documents | characters | wall s | peak RSS GB | limit | passed |\n"
        f"|---|---|---|---|---|---|---|\n"
        f"| {args.records:,} | {args.documents:,} | {n_chars:,} | {seconds:.1f} | {peak_gb:.2f} | "
        f"60 s, 4 GB | {result['passed']} |"
    )
    print("stages (s): " + ", ".join(f"{k} {v}" for k, v in detail["timing"].items()))
    print(f"written: {results}")


def _have_taskset() -> bool:
    from shutil import which

    return which("taskset") is not None


if __name__ == "__main__":
    main()
