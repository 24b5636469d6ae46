"""Benchmark: markup hijack on raw HTML pages (issue 7, reproduction item 2). Goal for robust: <= 2%.

"Generation on the raw HTML pages; share of questions whose evidence lies outside the ground-truth article
body." arXiv 2606.32002 found that navigation, footers and banners hijack naive self-study's questions.

1. Pages: N raw pages of each source, evenly spaced over the set in sorted id order (`--pages`), loaded by
   `robustqa.io.loaders`, exactly as `robustqa generate` loads them:
   - `web`: shared/data/web/html (scrapinghub article-extraction-benchmark); ground truth `articleBody`;
   - `wcxb`: shared/data/wcxb/html (7 page types); ground truth `ground_truth.main_content`, plus the
     `without` snippets (boilerplate that must not be extracted). Pages without a main content are skipped.
2. What each strategy sees: a loaded HTML page is the VISIBLE TEXT OF THE WHOLE PAGE (tags, scripts and
   styles dropped; navigation, footers, cookie banners, related links kept): `loaders.html_to_text`. `naive`
   (the Cartridges baseline: no span filter) reads that text as given; it never gets a main-text extraction.
   `robust`'s sanitiser runs trafilatura on the raw HTML kept in `meta["html"]` and flags what lies outside
   the main text: that is the strategy's own work, measured here.
3. Generation: `robustqa.runner.generate_records` with the registered strategies (the real registry, through
   `GenerateConfig.build_strategy`), budget = pages x `--budget-per-page` per source, split over the pages by
   each strategy's own weight as `robustqa generate` splits it.
4. Evidence: `robustqa.audit.run_audit` attributes every record: a record with a target (robust) to the
   sentences its target overlaps; a record without one (naive) to the sentence of its context window closest
   to its question + answer (TF-IDF). No second aligner: the audit's article alignment
   (`audit.boilerplate.article_provider`, difflib runs of >= 3 words) marks everything outside the aligned
   article body as boilerplate; for wcxb, text matching a `without` snippet is boilerplate too. A sentence is
   boilerplate when more than half its characters are.
5. A question is HIJACKED when more than half of its evidence sentences are boilerplate (with one evidence
   sentence, the usual case: that sentence is boilerplate). Share = hijacked / questions whose evidence was
   found; records the audit cannot attribute (no shared words, low score) are counted apart, not in the share.
   `kept` (the dataset a student trains on) is the headline; `asked` adds the rejected pairs that had a
   question. Wilson 95% intervals.

    python benchmarks/markup_hijack.py --lm fake                # plumbing, seconds (FakeLM echoes page text)
    python benchmarks/markup_hijack.py                          # embedded SmolLM2-135M, default sizes
    python benchmarks/markup_hijack.py --source web --pages 20 --budget-per-page 4

Writes benchmarks/results/markup_hijack.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _common import (  # noqa: F401  (build_strategy, page_echo_fake: their names here, as tests use them)
    RunStart,
    add_data_argument,
    build_strategy,
    data_file,
    make_benchmark_lm,
    page_echo_fake,
    run_header,
    spread,
    wilson,
    write_result,
)

from robustqa.audit import AuditConfig, run_audit
from robustqa.audit.boilerplate import Regions, article_provider, complement, load_article_truth
from robustqa.errors import InputError
from robustqa.io.jsonl import iter_jsonl
from robustqa.io.loaders import load_documents
from robustqa.lm.base import LM
from robustqa.run_files import rejected_path
from robustqa.runner import generate_records
from robustqa.strategy import Strategy
from robustqa.types import Document

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "markup_hijack.json"
GOAL = 0.02  # robust: share of kept questions whose evidence is boilerplate
SOURCES = ("web", "wcxb")
DEFINITION = (
    "A question is hijacked when more than half of its evidence sentences are boilerplate. Evidence: the "
    "sentences its target overlaps (records with a target), else the sentence of its context window that "
    "robustqa.audit attributes it to (TF-IDF cosine to question + answer). Boilerplate: a sentence more than "
    "half of whose characters lie outside the page text aligned to the ground-truth article body "
    "(robustqa.audit.boilerplate.article_provider) or, for wcxb, inside a `without` snippet. Share = hijacked "
    "/ questions with evidence found; unattributable records are counted apart."
)
NAIVE_INPUT = (
    "Every strategy gets the loader's visible text of the whole page (robustqa.io.loaders.html_to_text: the "
    "<title> first, tags, scripts and styles dropped; navigation, footers, cookie banners and related links "
    "kept). naive has no span filter and reads that text as given (no main-text extraction); robust's "
    "sanitiser flags what lies outside trafilatura's main text of the raw HTML (meta['html'])."
)


# -- pages ---------------------------------------------------------------------------------------------------
@dataclass
class PageSet:
    """Pages of one source with what the audit needs to tell their boilerplate."""

    source: str
    documents: list[Document]
    boilerplate: Callable[[Document], Regions | None]
    page_types: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # page id -> why it was not used


def _html_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder (the shared data's raw HTML pages)")
    files = sorted(p for p in folder.iterdir() if p.name.endswith((".html.gz", ".html")))
    if not files:
        raise InputError(f"{folder}: no .html or .html.gz pages")
    return files


def _page_id(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".html")


def load_web(data: Path, pages: int) -> PageSet:
    """The shared `web` pages with their `articleBody` ground truth."""
    truth = load_article_truth(data / "web" / "ground-truth.json")
    files = _html_files(data / "web" / "html")
    usable = [f for f in files if truth.get(_page_id(f), "").strip()]
    skipped = {_page_id(f): "no articleBody in ground-truth.json" for f in files if f not in usable}
    docs = load_documents(spread(usable, pages))
    return PageSet("web", docs, article_provider(truth), {d.id: "article" for d in docs}, skipped)


def load_wcxb(data: Path, pages: int) -> PageSet:
    """The shared `wcxb` pages with `main_content` and `without` snippets; pages without main content skipped."""
    files = _html_files(data / "wcxb" / "html")
    main: dict[str, str] = {}
    without: dict[str, list[str]] = {}
    types: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for f in files:
        page = _page_id(f)
        path = data / "wcxb" / "ground-truth" / f"{page}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: cannot read the page's ground truth ({exc})") from None
        truth = record.get("ground_truth") if isinstance(record, dict) else None
        if not isinstance(truth, dict):
            raise InputError(f"{path}: no 'ground_truth' object")
        if not isinstance(truth.get("main_content"), str) or not truth["main_content"].strip():
            skipped[page] = "no ground_truth.main_content"
            continue
        main[page] = truth["main_content"]
        without[page] = [s for s in truth.get("without") or [] if isinstance(s, str)]
        internal = record.get("_internal") if isinstance(record.get("_internal"), dict) else {}
        kind = (internal.get("page_type") or {}).get("primary") or record.get("page_type") or "unknown"
        types[page] = str(kind)
    usable = [f for f in files if _page_id(f) in main]
    docs = load_documents(spread(usable, pages))
    return PageSet("wcxb", docs, wcxb_provider(main, without), {d.id: types[d.id] for d in docs}, skipped)


def snippet_regions(text: str, snippets: Sequence[str]) -> Regions:
    """Every place in `text` where a snippet's words occur in order, separated only by non-word characters
    (case-insensitive): the page text collapses whitespace and drops tags, so exact matching would miss."""
    regions = []
    for snippet in snippets:
        words = re.findall(r"\w+", snippet)
        if words:
            pattern = r"\W+".join(map(re.escape, words))
            regions.extend(m.span() for m in re.finditer(rf"(?<!\w){pattern}(?!\w)", text, re.I))
    return regions


def wcxb_provider(main: dict[str, str], without: dict[str, list[str]]) -> Callable[[Document], Regions | None]:
    """Boilerplate of a wcxb page: outside the aligned main content (the audit's article provider), or inside
    a `without` snippet."""
    outside_article = article_provider(main)

    def provide(doc: Document) -> Regions | None:
        regions = outside_article(doc)
        if regions is None:
            return None
        return regions + snippet_regions(doc.text, without.get(doc.id, []))

    return provide


def load_pages(source: str, data: Path, pages: int) -> PageSet:
    if source == "web":
        return load_web(data, pages)
    if source == "wcxb":
        return load_wcxb(data, pages)
    raise InputError(f"unknown source {source!r} (known: {', '.join(SOURCES)})")


def boilerplate_char_share(pages: PageSet) -> float | None:
    """Share of the pages' characters that the ground truth calls boilerplate (how much there is to hijack)."""
    total = inside = 0
    for doc in pages.documents:
        regions = pages.boilerplate(doc)
        if regions is None:
            continue
        total += len(doc.text)
        # Overlapping regions (wcxb's snippets inside non-article text) counted once.
        merged = complement(complement(regions, len(doc.text)), len(doc.text))
        inside += sum(e - s for s, e in merged)
    return inside / total if total else None


# -- measuring -----------------------------------------------------------------------------------------------
@dataclass
class RowVerdict:
    """One audited record: where its evidence is, and whether that is boilerplate."""

    line: int
    doc_id: str | None
    status: str
    method: str
    score: float | None  # the audit's retrieval cosine (1 for targets)
    evidence: list[tuple[int, int]]
    boilerplate_share: float | None
    hijacked: bool | None  # None: no evidence found, so not judged


def hijack_verdicts(
    qa: Path, documents: Sequence[Document], boilerplate: Callable[[Document], Regions | None], workdir: Path
) -> tuple[list[RowVerdict], dict[str, Any]]:
    """Attribute every record of `qa` with `run_audit` and judge its evidence sentences against the
    boilerplate. Returns the verdicts (one per audited row) and the audit's own markup-hijack summary."""
    config = AuditConfig(include_rejected=True)  # the caller decides which rows the file holds
    result = run_audit(
        qa,
        documents,
        out=workdir,
        boilerplate=boilerplate,
        boilerplate_source="ground truth (article body, wcxb `without` snippets)",
        config=config,
    )
    corpus = result.corpus
    verdicts = []
    for _, row in iter_jsonl(workdir / "attributions.jsonl"):
        doc_id, evidence = row["doc_id"], [tuple(s) for s in row["sentences"]]
        share = hijacked = None
        d = corpus.doc_index.get(doc_id) if doc_id is not None else None
        if row["status"] == "attributed" and evidence and d is not None and corpus.boilerplate_known[d]:
            lo, hi = corpus.sent_ptr[d], corpus.sent_ptr[d + 1]
            index = lo + np.searchsorted(corpus.sent_start[lo:hi], [s for s, _ in evidence])
            share = float(corpus.boilerplate[index].mean())
            hijacked = share > 0.5
        verdicts.append(
            RowVerdict(row["line"], doc_id, row["status"], row["method"], row["score"], evidence, share, hijacked)
        )
    return verdicts, result.summary["datasets"][0]["markup_hijack"]


def summarise(
    verdicts: Sequence[RowVerdict], records: dict[int, dict], documents: Sequence[Document], page_types: dict
) -> dict[str, Any]:
    """Counts, share with Wilson interval, unattributable rows, by page type and a few hijacked examples."""
    judged = [v for v in verdicts if v.hijacked is not None]
    hijacked = [v for v in judged if v.hijacked]
    texts = {d.id: d.text for d in documents}
    by_type: dict[str, list[bool]] = {}
    for v in judged:
        by_type.setdefault(page_types.get(v.doc_id, "unknown"), []).append(bool(v.hijacked))
    examples = []
    for v in hijacked[:5]:
        record = records.get(v.line, {})
        evidence = " ".join(texts[v.doc_id][s:e] for s, e in v.evidence)
        examples.append(
            {
                "doc_id": v.doc_id,
                "question": record.get("question", ""),
                "answer": str(record.get("answer", ""))[:200],
                "evidence": evidence[:200],
                "method": v.method,
            }
        )
    retrieved = [v for v in judged if v.method != "target" and v.score is not None]
    return {
        "records": len(verdicts),
        "judged": len(judged),
        "hijacked": wilson(len(hijacked), len(judged)),
        "unattributable": dict(sorted(Counter(v.status for v in verdicts if v.hijacked is None).items())),
        "by_method": dict(sorted(Counter(v.method for v in judged).items())),
        "by_page_type": {t: wilson(sum(h), len(h)) for t, h in sorted(by_type.items())},
        # Short lines (menus) get high TF-IDF cosines: how firmly were retrieved rows placed on each side?
        "retrieval_score_median": {
            "hijacked": _median([v.score for v in retrieved if v.hijacked]),
            "in_article": _median([v.score for v in retrieved if not v.hijacked]),
        },
        "examples": examples,
    }


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 4) if values else None


def _read_records(path: Path) -> list[dict]:
    return [row for _, row in iter_jsonl(path)] if path.exists() and path.stat().st_size else []


def measure_file(rows: Sequence[dict], pages: PageSet, workdir: Path, name: str) -> dict[str, Any] | None:
    """Write `rows` as a QA file, audit it against the pages and summarise its hijack (None without rows)."""
    if not rows:
        return None
    workdir.mkdir(parents=True, exist_ok=True)
    qa = workdir / f"{name}.jsonl"
    qa.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    verdicts, audit = hijack_verdicts(qa, pages.documents, pages.boilerplate, workdir / f"{name}.audit")
    summary = summarise(verdicts, dict(enumerate(rows, start=1)), pages.documents, pages.page_types)
    summary["audit_markup_hijack"] = audit  # the audit's fractional share, for cross-checking
    return summary


def run_strategy(
    spec: str,
    strategy: Strategy,
    pages: PageSet,
    lm: LM,
    budget_per_page: int,
    seed: int,
    workdir: Path,
    batch_size: int = 16,
    progress: bool = False,
) -> dict[str, Any]:
    """Generate with one strategy on one page set, then measure the kept and the asked (kept + rejected with
    a question) records."""
    name = re.sub(r"[^\w.-]+", "_", f"{pages.source}_{spec}")
    out = workdir / f"{name}.jsonl"
    budget = budget_per_page * len(pages.documents)
    run = generate_records(
        pages.documents, strategy, lm, budget, seed, out, overwrite=True, batch_size=batch_size, progress=progress
    )
    kept = _read_records(out)
    asked = kept + [r for r in _read_records(rejected_path(out)) if str(r.get("question", "")).strip()]
    per_page = Counter(r["doc_id"] for r in kept)
    return {
        "strategy": spec,
        "span_filters": [type(f).__name__ for f in getattr(strategy, "span_filters", [])],
        "budget": budget,
        "planned": run.planned,
        "kept": run.kept,
        "rejected": run.rejected,
        "kept_per_page": {d.id: per_page.get(d.id, 0) for d in pages.documents},
        "seconds": round(run.seconds, 1),
        "lm_requests": run.usage.get("requests"),
        "lm_tokens": run.usage.get("total_tokens"),
        "kept_questions": measure_file(kept, pages, workdir / "audit", f"{name}_kept"),
        "asked_questions": measure_file(asked, pages, workdir / "audit", f"{name}_asked"),
    }


def pooled(results: dict[str, dict], spec: str, which: str) -> dict[str, Any]:
    """One strategy's hijack over every source: summed counts, one Wilson interval."""
    k = n = 0
    for source in results.values():
        part = source["strategies"][spec][which]
        if part is not None:
            k, n = k + part["hijacked"]["k"], n + part["hijacked"]["n"]
    return wilson(k, n)


# -- command line --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", choices=(*SOURCES, "both"), default="both", help="which raw page set(s)")
    ap.add_argument("--pages", type=int, default=3, help="pages per source, evenly spaced over the set")
    ap.add_argument(
        "--budget-per-page", type=int, default=3, help="planned QA pairs per page (the budget is pages x this)"
    )
    ap.add_argument(
        "--strategies",
        nargs="+",
        default=["naive", "robust"],
        help="registered strategies, each `name` or `name@key=value,key=value` (e.g. robust@consistency_k=1)",
    )
    ap.add_argument(
        "--lm",
        choices=("hf", "ct2", "auto", "fake"),
        default="hf",
        help="hf / ct2: the embedded model on transformers / CTranslate2 int8; auto: generate default; fake: plumbing",
    )
    ap.add_argument("--model", default=None, help="hf, ct2: a local model directory instead of the embedded model")
    ap.add_argument("--batch-size", type=int, default=16, help="work items per LM batch")
    ap.add_argument("--seed", type=int, default=0, help="run seed")
    add_data_argument(ap, "web/ and wcxb/")
    ap.add_argument("--out", type=Path, default=RESULTS, help="result JSON")
    ap.add_argument("--keep", type=Path, default=None, help="keep the generated QA and audit files here")
    ap.add_argument("--smoke", action="store_true", help='mark the result "smoke": a small check, not the figure')
    ap.add_argument("--progress", action="store_true", help="show generation progress bars")
    args = ap.parse_args(argv)
    if args.pages < 1 or args.budget_per_page < 1:
        ap.error("--pages and --budget-per-page must be >= 1")
    return args


def _fmt(part: dict | None) -> str:
    if part is None:
        return f"{'-':>24}"
    h = part["hijacked"]
    if h["n"] == 0:
        return f"{'0 judged':>24}"
    return f"{h['k']:3d}/{h['n']:<3d} {h['share']:.3f} [{h['ci95'][0]:.2f},{h['ci95'][1]:.2f}]"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    start = RunStart()
    sources = SOURCES if args.source == "both" else (args.source,)
    page_sets = [load_pages(s, data_file(args.data, s).parent, args.pages) for s in sources]  # data/web, data/wcxb
    strategies = {spec: build_strategy(spec) for spec in args.strategies}
    lm = make_benchmark_lm(args.lm, args.model)

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        for pages in page_sets:
            entry = {
                "pages": len(pages.documents),
                "page_ids": [d.id for d in pages.documents],
                "page_types": dict(sorted(Counter(pages.page_types.values()).items())),
                "pages_skipped_in_set": len(pages.skipped),
                "page_characters": sum(len(d.text) for d in pages.documents),
                "boilerplate_char_share": boilerplate_char_share(pages),
                "strategies": {},
            }
            for spec, strategy in strategies.items():
                row = run_strategy(
                    spec, strategy, pages, lm, args.budget_per_page, args.seed, workdir, args.batch_size, args.progress
                )
                entry["strategies"][spec] = row
                print(
                    f"{pages.source:5} {spec:24} kept {row['kept']:3d}/{row['planned']:<3d} "
                    f"hijacked kept {_fmt(row['kept_questions'])}  asked {_fmt(row['asked_questions'])}  "
                    f"{row['seconds']:7.1f}s",
                    flush=True,
                )
            results[pages.source] = entry

    overall = {
        spec: {
            "kept_questions": pooled(results, spec, "kept_questions"),
            "asked_questions": pooled(results, spec, "asked_questions"),
        }
        for spec in strategies
    }
    print(f"\n{'pooled over ' + '+'.join(sources):24} {'kept: k/n share [95% CI]':>30} {'asked':>30}")
    for spec, figures in overall.items():
        k, a = figures["kept_questions"], figures["asked_questions"]
        print(f"{spec:24} {_fmt({'hijacked': k}):>30} {_fmt({'hijacked': a}):>30}")
    robust = {s: f["kept_questions"] for s, f in overall.items() if s.partition("@")[0] == "robust"}
    verdict = {
        s: "not measured" if r["n"] == 0 else ("met" if r["share"] <= GOAL else "MISSED") for s, r in robust.items()
    }
    if args.lm == "fake":
        verdict = {k: f"{v} (FakeLM: plumbing only, not a model's figure)" for k, v in verdict.items()}
    result = {
        **run_header("markup_hijack", "markup_hijack.py", argv, start, args.smoke),
        "lm": lm.model_id,
        "note": "FakeLM run: plumbing only, not a model's figure" if args.lm == "fake" else "",
        "goal": {"robust_kept_hijack_share": f"<= {GOAL}"},
        "definition": DEFINITION,
        "naive_input": NAIVE_INPUT,
        "settings": {
            "sources": list(sources),
            "pages_per_source": args.pages,
            "budget_per_page": args.budget_per_page,
            "budget_split": "pages x budget_per_page per source, split over pages by each strategy's weight",
            "strategies": args.strategies,
            "seed": args.seed,
            "batch_size": args.batch_size,
        },
        "sources": results,
        "pooled": overall,
        "verdict": verdict or "not measured",
    }
    print(f"robust kept hijack share (goal <= {GOAL}): {verdict or 'not measured'}")
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
