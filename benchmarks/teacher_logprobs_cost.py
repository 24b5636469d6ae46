"""What `--teacher-logprobs 20` costs on the embedded model: seconds of scoring and bytes stored per kept pair.

Generates a few naive pairs from the bundled document on the embedded SmolLM2-135M-Instruct (loaded once), then
times the teacher-logprob post-step (`robustqa.teacher_logprobs.score_records`, K = 20, mass 0.99) on the kept
records and measures `meta.teacher` as stored in the JSONL. Call A and B are capped (`--max-tokens-a/-b`,
default 64 and 128, Cartridges' defaults are 512 and 1024) so the run fits a CPU; the chunks keep Cartridges'
512-1024 tokens, which dominate the scoring pass. Writes benchmarks/results/teacher_logprobs_cost.json.

    python benchmarks/teacher_logprobs_cost.py [--pairs 4] [--max-tokens-a 64] [--max-tokens-b 128]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))

from _common import RunStart, run_header, write_result  # noqa: E402

from robustqa.io.loaders import load_documents  # noqa: E402
from robustqa.lm.hf import HFLM  # noqa: E402
from robustqa.registry import REGISTRY  # noqa: E402
from robustqa.runner import generate_records  # noqa: E402
from robustqa.teacher_logprobs import TeacherSettings, decode, score_records  # noqa: E402
from robustqa.types import QARecord  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "teacher_logprobs_cost.json"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--max-tokens-a", type=int, default=64)
    parser.add_argument("--max-tokens-b", type=int, default=128)
    parser.add_argument("--top-k", type=int, default=20)
    args = parser.parse_args(argv)
    start = RunStart()
    lm = HFLM(batch_size=4).load()
    docs = load_documents([ROOT / "examples" / "declaration_of_independence.md"])
    strategy = REGISTRY.make_strategy(
        "naive", tokenizer=str(lm.model_dir), max_tokens_a=args.max_tokens_a, max_tokens_b=args.max_tokens_b
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "qa.jsonl"
        t0 = time.perf_counter()
        generate_records(docs, strategy, lm, args.pairs, 0, out, progress=False)
        generate_seconds = time.perf_counter() - t0
        records = [QARecord.from_dict(json.loads(line)) for line in out.read_text().splitlines()]
    settings = TeacherSettings(args.top_k, 0.99)
    t0, c0 = time.perf_counter(), time.process_time()
    score_records(records, lm, settings)
    score_seconds, score_cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = []
    for rec in records:
        teacher = rec.meta["teacher"]
        flat = decode(teacher)
        stored = len(json.dumps(teacher, ensure_ascii=False))
        rows.append(
            {
                "answer_tokens": flat.shape[0],
                "entries_kept": int(len(flat.token_id)),
                "stored_bytes": stored,
                "bytes_per_answer_token": round(stored / flat.shape[0], 1),
            }
        )
    kept = len(records)
    tokens = sum(r["answer_tokens"] for r in rows)
    result = {
        **run_header("teacher_logprobs_cost", __file__, argv, start),
        "model": lm.model_id,
        "top_k": args.top_k,
        "min_prob_mass": 0.99,
        "caps": {"max_tokens_a": args.max_tokens_a, "max_tokens_b": args.max_tokens_b, "chunk_tokens": [512, 1024]},
        "kept_pairs": kept,
        "generate_seconds": round(generate_seconds, 2),
        "score_seconds": round(score_seconds, 2),
        "score_seconds_per_pair": round(score_seconds / max(kept, 1), 2),
        "score_cpu_seconds_per_pair": round(score_cpu / max(kept, 1), 2),
        "torch_threads": __import__("torch").get_num_threads(),
        "stored_bytes_per_pair": round(sum(r["stored_bytes"] for r in rows) / max(kept, 1), 1),
        "stored_bytes_per_answer_token": round(sum(r["stored_bytes"] for r in rows) / max(tokens, 1), 1),
        "entries_per_answer_token": round(sum(r["entries_kept"] for r in rows) / max(tokens, 1), 2),
        "pairs": rows,
    }
    write_result(OUT, result)
    print(
        f"{kept} pairs: scoring {result['score_seconds_per_pair']} s/pair "
        f"({result['score_cpu_seconds_per_pair']} CPU s/pair) "
        f"(generation {generate_seconds:.1f} s in all), "
        f"{result['stored_bytes_per_pair']} bytes/pair, {result['stored_bytes_per_answer_token']} bytes/answer token, "
        f"{result['entries_per_answer_token']} top-k entries kept per token"
    )
    return result


if __name__ == "__main__":
    main()
