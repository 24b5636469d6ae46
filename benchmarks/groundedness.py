"""Benchmark: groundedness of kept answers against their target span (issue 7, reproduction item 4).
Goal for robust: >= 95%.

Definition (the audit's, `robustqa.audit`, docs/audit.md "groundedness"; nothing is re-implemented here):
- Evidence of a record: with `target` offsets that match its document, the sentences the target overlaps
  (exact); without a target (naive records, foreign rows), the sentence `robustqa.audit` attributes it to:
  the sentence of its context window (else of its document) with the highest TF-IDF cosine to question +
  answer. Retrieval uses the answer to pick the sentence, so for those records the figure is an upper bound.
- Containment of an answer: the share of its distinct content words (lower-cased word tokens of 2+
  characters, English stop words removed, words absent from the corpus included) found in its evidence.
- Supported: containment >= `--threshold` (the audit's default 0.5).
- Share = supported / checked, where checked = kept records whose evidence was found and whose answer has a
  content word (the audit's `groundedness.share`). Also reported: `share_of_kept` = supported / all kept
  records, counting unattributable records and answers without content words as unsupported.
Also reported: `invented_specifics`, the audit's share of attributed answers naming a number or proper name
their document never mentions (robustqa.specifics; docs/audit.md).
Records are audited in two groups, with and without a target, so each kind of evidence has its own figure;
the overall figure sums the two (attribution of a record never depends on other records). Wilson 95%
intervals. Rejected records (`kept: false`) are counted and skipped.

Note: robust's verifier keeps a pair on a mean of scores that includes a lexical containment of the answer
in the target, a close cousin of this measure, so robust's figure is partly its filter's own criterion;
naive's has no such filter.

    python benchmarks/groundedness.py QA.jsonl [MORE.jsonl ...] --docs DOCS...   # audit existing datasets
    python benchmarks/groundedness.py --generate --lm fake                       # plumbing, seconds
    python benchmarks/groundedness.py --generate                                 # naive + robust, embedded model
    python benchmarks/groundedness.py --generate --paragraphs 20 --budget-per-paragraph 4

Writes benchmarks/results/groundedness.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import (
    RunStart,
    add_data_argument,
    build_strategy,
    data_file,
    make_benchmark_lm,
    run_header,
    shown_path,
    spread,
    wilson,
    write_result,
)

from robustqa.audit import AuditConfig, run_audit
from robustqa.audit.records import AuditRow, ReadStats, iter_rows
from robustqa.errors import InputError
from robustqa.io.loaders import load_documents
from robustqa.runner import generate_records
from robustqa.types import Document

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "groundedness.json"
GOAL = 0.95  # robust: share of kept answers supported by their target span
DEFINITION = (
    "robustqa.audit groundedness: an answer's containment is the share of its distinct content words "
    "(lower-cased word tokens of 2+ characters, English stop words removed) found in its evidence; supported "
    "at containment >= threshold. Evidence: the sentences overlapping the record's target (records with a "
    "target), else the sentence the audit attributes it to by TF-IDF retrieval over question + answer (an "
    "upper bound, since the answer helps pick it). share = supported / checked (kept records with evidence "
    "found and an answer with a content word); share_of_kept = supported / kept records."
)


# -- measuring -----------------------------------------------------------------------------------------------
def _as_row(row: AuditRow) -> dict[str, Any]:
    """An AuditRow back as a QA line the audit reads the same way."""
    out: dict[str, Any] = {"question": row.question, "answer": row.answer}
    if row.doc_key is not None:
        out["doc_id"] = row.doc_key
    if row.target is not None:
        out["target"] = {"start": row.target[0], "end": row.target[1], "text": row.target_text}
    if row.context is not None:
        out["context"] = {"start": row.context[0], "end": row.context[1]}
    return out


def split_by_evidence(path: Path) -> tuple[dict[str, list[dict]], ReadStats, set[str]]:
    """The kept rows of a QA file (read and checked by the audit's own reader, so errors name the file and
    line) in two groups: `target` (rows with target offsets) and `retrieval` (the others)."""
    stats = ReadStats()
    groups: dict[str, list[dict]] = {"target": [], "retrieval": []}
    strategies: set[str] = set()
    for chunk in iter_rows(path, stats=stats):
        for row in chunk:
            groups["target" if row.target is not None else "retrieval"].append(_as_row(row))
            if row.strategy:
                strategies.add(row.strategy)
    return groups, stats, strategies


def audit_group(rows: Sequence[dict], documents: Sequence[Document], threshold: float, workdir: Path, name: str):
    """The audit's record and groundedness figures for one group of rows (None without rows)."""
    if not rows:
        return None
    qa = workdir / f"{name}.jsonl"
    qa.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    config = AuditConfig(groundedness_threshold=threshold)
    summary = run_audit(qa, documents, config=config).summary["datasets"][0]
    g, records, invented = summary["groundedness"], summary["records"], summary["invented_specifics"]
    return {
        "kept": records["audited"],
        "attributed": records["attributed"],
        "unattributable": records["unattributable_by_reason"],
        "target_resolution": {k: v for k, v in records["document_resolution"].items() if k.startswith("target_")},
        "by_method": summary["attribution"]["by_method"],
        "checked": g["checked"],
        "supported": g["supported"],
        "mean_containment": g["mean_containment"],
        "specifics_checked": invented["checked"],
        "with_invented_specifics": invented["answers_with_invented"],
    }


def combine(parts: dict[str, dict | None]) -> dict[str, Any]:
    """Overall figures from the groups' counts, with Wilson intervals."""
    present = [p for p in parts.values() if p is not None]
    kept = sum(p["kept"] for p in present)
    checked = sum(p["checked"] for p in present)
    supported = sum(p["supported"] for p in present)
    weighted = sum(p["mean_containment"] * p["checked"] for p in present if p["mean_containment"] is not None)
    return {
        "kept": kept,
        "attributed": sum(p["attributed"] for p in present),
        "checked": checked,
        "supported": supported,
        "share": wilson(supported, checked),
        "share_of_kept": wilson(supported, kept),
        "mean_containment": round(weighted / checked, 4) if checked else None,
        "invented_specifics": wilson(
            sum(p["with_invented_specifics"] for p in present), sum(p["specifics_checked"] for p in present)
        ),
    }


def measure_dataset(
    path: Path, documents: Sequence[Document], threshold: float, workdir: Path, name: str | None = None
) -> dict[str, Any]:
    """Groundedness of one QA file's kept records: per kind of evidence and overall."""
    groups, stats, strategies = split_by_evidence(path)
    name = name or path.stem
    parts = {kind: audit_group(rows, documents, threshold, workdir, f"{name}.{kind}") for kind, rows in groups.items()}
    for part in parts.values():
        if part is not None:
            part["share"] = wilson(part["supported"], part["checked"])
    return {
        "name": name,
        "path": shown_path(path),
        "strategies": sorted(strategies),
        "rows_read": stats.rows,
        "skipped_rejected": stats.skipped_rejected,
        "by_evidence": parts,
        "overall": combine(parts),
    }


# -- generating ----------------------------------------------------------------------------------------------
def generate(
    specs: Sequence[str],
    documents: Sequence[Document],
    lm_kind: str,
    model: str | None,
    budget: int,
    seed: int,
    workdir: Path,
    batch_size: int = 16,
    progress: bool = False,
) -> tuple[list[tuple[str, Path]], dict[str, dict], str]:
    """Generate with each strategy; returns (name, QA path) pairs, each run's counts, and the LM's id."""
    lm = make_benchmark_lm(lm_kind, model)
    files, runs = [], {}
    for spec in specs:
        strategy = build_strategy(spec)
        out = workdir / f"{spec.replace('@', '_').replace(',', '_').replace('=', '')}.jsonl"
        run = generate_records(
            documents, strategy, lm, budget, seed, out, overwrite=True, batch_size=batch_size, progress=progress
        )
        runs[spec] = {
            "planned": run.planned,
            "kept": run.kept,
            "rejected": run.rejected,
            "seconds": round(run.seconds, 1),
            "lm_requests": run.usage.get("requests"),
            "lm_tokens": run.usage.get("total_tokens"),
        }
        files.append((spec, out))
    return files, runs, lm.model_id


# -- command line --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("qa", nargs="*", type=Path, help="QA JSONL files to measure (robustqa records or foreign rows)")
    ap.add_argument("--docs", nargs="+", type=Path, default=None, help="their documents (default: the XQuAD file)")
    ap.add_argument("--generate", action="store_true", help="generate naive and robust QA first, then measure")
    add_data_argument(ap, "xquad_en_dev.json: --generate, and the default --docs")
    ap.add_argument("--paragraphs", type=int, default=6, help="--generate: K paragraphs, evenly spaced")
    ap.add_argument("--budget-per-paragraph", type=int, default=3, help="--generate: planned pairs per paragraph")
    ap.add_argument(
        "--strategies",
        nargs="+",
        default=["naive", "robust"],
        help="--generate: registered strategies, `name` or `name@key=value,key=value`",
    )
    ap.add_argument("--lm", choices=("hf", "fake"), default="hf", help="--generate: hf (embedded model) or fake")
    ap.add_argument("--model", default=None, help="--generate, hf: a local model directory")
    ap.add_argument("--batch-size", type=int, default=16, help="--generate: work items per LM batch")
    ap.add_argument("--seed", type=int, default=0, help="--generate: run seed")
    ap.add_argument(
        "--threshold", type=float, default=AuditConfig.groundedness_threshold, help="containment for support"
    )
    ap.add_argument("--out", type=Path, default=RESULTS, help="result JSON")
    ap.add_argument("--keep", type=Path, default=None, help="--generate: keep the generated QA files here")
    ap.add_argument("--smoke", action="store_true", help='mark the result "smoke": a small check, not the figure')
    ap.add_argument("--progress", action="store_true", help="show generation progress bars")
    args = ap.parse_args(argv)
    if not args.qa and not args.generate:
        ap.error("give QA files to measure, or --generate")
    if args.generate and (args.paragraphs < 1 or args.budget_per_paragraph < 1):
        ap.error("--paragraphs and --budget-per-paragraph must be >= 1")
    if not 0 < args.threshold <= 1:
        ap.error("--threshold must be in (0, 1]")
    return args


def _is_robust(dataset: dict) -> bool:
    """Judged against the goal: generated by a `robust` spec, or a file whose records all say robust."""
    return dataset["name"].partition("@")[0] == "robust" or dataset["strategies"] == ["robust"]


def judge(figure: dict) -> str:
    """met / MISSED only when the Wilson 95% interval lies on one side of the goal; a handful of kept pairs
    (3 of 3 supported: [0.44, 1.00]) decides nothing."""
    if not figure["n"]:
        return "not measured"
    low, high = figure["ci95"]
    if low >= GOAL:
        return "met"
    if high < GOAL:
        return "MISSED"
    return f"undecided: {figure['k']}/{figure['n']}, 95% CI [{low:.2f}, {high:.2f}] spans the goal"


def _fmt(figure: dict | None) -> str:
    if figure is None or not figure["n"]:
        return f"{'-':>26}"
    return f"{figure['k']:4d}/{figure['n']:<4d} {figure['share']:.3f} [{figure['ci95'][0]:.2f},{figure['ci95'][1]:.2f}]"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    start = RunStart()
    datasets: list[dict] = []
    runs: dict[str, dict] = {}
    lm_id = None
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.generate:
            documents = spread(load_documents([data_file(args.data, "xquad_en_dev.json")]), args.paragraphs)
            folder = args.keep or workdir
            folder.mkdir(parents=True, exist_ok=True)
            budget = args.budget_per_paragraph * len(documents)
            files, runs, lm_id = generate(
                args.strategies,
                documents,
                args.lm,
                args.model,
                budget,
                args.seed,
                folder,
                args.batch_size,
                args.progress,
            )
            files += [(p.stem, p) for p in args.qa]
            if args.docs:
                documents = documents + load_documents(args.docs)
        else:
            documents = load_documents(args.docs or [data_file(args.data, "xquad_en_dev.json")])
            files = [(p.stem, p) for p in args.qa]
        for path in (p for _, p in files):
            if not path.exists():
                raise InputError(f"{path}: no such file")
        for name, path in files:
            datasets.append(measure_dataset(path, documents, args.threshold, workdir, name))

    print(
        f"{'dataset':28} {'evidence':10} {'supported/checked  share [95% CI]':>36} {'of kept':>26} "
        f"{'invented specifics':>26}"
    )
    for d in datasets:
        for kind, part in d["by_evidence"].items():
            if part is not None:
                print(f"{d['name']:28} {kind:10} {_fmt(part['share']):>36}")
        o = d["overall"]
        print(
            f"{d['name']:28} {'all':10} {_fmt(o['share']):>36} {_fmt(o['share_of_kept']):>26} "
            f"{_fmt(o['invented_specifics']):>26}"
        )
    robust = {d["name"]: d["overall"]["share"] for d in datasets if _is_robust(d)}
    verdict = {n: judge(f) for n, f in robust.items()}
    if args.generate and args.lm == "fake":
        verdict = {k: f"{v} (FakeLM: plumbing only, not a model's figure)" for k, v in verdict.items()}
    result = {
        **run_header("groundedness", "groundedness.py", argv, start, args.smoke),
        "lm": lm_id,
        "note": "FakeLM run: plumbing only, not a model's figure" if args.generate and args.lm == "fake" else "",
        "goal": {"robust_groundedness_share": f">= {GOAL}"},
        "definition": DEFINITION,
        "threshold": args.threshold,
        "settings": {
            "generate": args.generate,
            "data": shown_path(data_file(args.data, "xquad_en_dev.json")) if args.generate else None,
            "paragraphs": args.paragraphs if args.generate else None,
            "budget_per_paragraph": args.budget_per_paragraph if args.generate else None,
            "strategies": args.strategies if args.generate else None,
            "seed": args.seed if args.generate else None,
            "docs": [str(p) for p in args.docs] if args.docs else None,
        },
        "generation": runs or None,
        "datasets": datasets,
        "verdict": verdict or "not measured",
    }
    print(f"robust groundedness (goal >= {GOAL}): {verdict or 'not measured'}")
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
