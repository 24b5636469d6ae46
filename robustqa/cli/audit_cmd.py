"""`robustqa audit`: measure a QA dataset's coverage, concentration, hijack, injection exposure, groundedness
and duplicates against its documents; write audit.json and a self-contained report.html."""

from __future__ import annotations

from pathlib import Path

import typer

from robustqa.errors import InputError
from robustqa.io.lock import OutputLock, lock_path
from robustqa.io.outputs import refuse_overlap, require_dir_path, require_file_path


def audit(
    qa: Path = typer.Argument(
        ..., help="QA JSONL to audit: robustqa records or foreign rows (question/answer, messages)."
    ),
    more_docs: list[Path] = typer.Argument(
        None, help="More document paths, so `--docs a b c` works.", show_default=False
    ),
    docs: list[Path] = typer.Option(
        [],
        "--docs",
        "-d",
        help="Documents the QA was generated from (files or directories; repeatable, and further paths may follow).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory for audit.json and report.html."),
    compare: list[Path] = typer.Option(
        [], "--compare", help="Another QA JSONL to audit side by side (repeat the option for each)."
    ),
    article_truth: Path | None = typer.Option(
        None,
        "--article-truth",
        help="JSON {doc id: clean article text or {articleBody: ...}}: everything else in a page is boilerplate.",
    ),
    boilerplate: Path | None = typer.Option(
        None, "--boilerplate", help="JSON {doc id: [[start, end], ...]} of boilerplate regions."
    ),
    boilerplate_filter: str | None = typer.Option(
        None,
        "--boilerplate-filter",
        help="A registered span filter that decides boilerplate (e.g. the sanitiser's name).",
    ),
    payloads: list[Path] = typer.Option(
        [],
        "--payloads",
        help="Canary strings / payload texts (JSON, JSONL or "
        "text lines); answers containing one carry an injection. Repeatable.",
    ),
    instruction_scorer: str | None = typer.Option(
        None,
        "--instruction-scorer",
        help="Instruction-likeness "
        "scorer as module:callable, (list[str]) -> list[float]; "
        "default: a built-in phrase heuristic.",
    ),
    instruction_filter: str | None = typer.Option(
        None,
        "--instruction-filter",
        help="A registered span filter that flags instruction-like spans (replaces the scorer).",
    ),
    include_rejected: bool = typer.Option(False, "--include-rejected", help="Audit records with kept=false too."),
    min_score: float = typer.Option(
        0.1, "--min-score", help="Retrieval attribution: lowest TF-IDF cosine that still attributes a record."
    ),
    groundedness_threshold: float = typer.Option(
        0.5,
        "--groundedness-threshold",
        help="Share of an answer's content words that its attributed sentences must contain.",
    ),
    duplicate_threshold: float = typer.Option(
        0.9, "--duplicate-threshold", help="TF-IDF cosine from which two questions are near-duplicates."
    ),
) -> None:
    """Audit a QA dataset against its documents (coverage, concentration, hijack, injection, duplicates)."""
    from robustqa.audit.boilerplate import article_provider, load_article_truth, load_regions
    from robustqa.audit.config import AuditConfig
    from robustqa.audit.instructions import load_scorer
    from robustqa.audit.payloads import load_payloads
    from robustqa.audit.report import write_report
    from robustqa.audit.run import run_audit
    from robustqa.io.loaders import load_documents
    from robustqa.registry import REGISTRY

    doc_paths = list(docs) + list(more_docs or [])
    if not doc_paths:
        raise InputError("no documents: pass them with --docs PATH...")
    require_dir_path(out)
    outputs = [out / name for name in ("audit.json", "report.html", "attributions.jsonl")]
    for path in outputs:
        require_file_path(path)
    inputs = [qa, *compare, *doc_paths, *(p for p in (article_truth, boilerplate) if p), *payloads]
    refuse_overlap([*outputs, lock_path(outputs[0])], inputs)
    if sum(x is not None for x in (article_truth, boilerplate, boilerplate_filter)) > 1:
        raise InputError("give one of --article-truth, --boilerplate and --boilerplate-filter")
    config = AuditConfig(
        min_score=min_score,
        groundedness_threshold=groundedness_threshold,
        duplicate_threshold=duplicate_threshold,
        include_rejected=include_rejected,
    )
    provider, source = None, None
    if article_truth:
        provider, source = (
            article_provider(load_article_truth(article_truth)),
            f"article truth {article_truth}",
        )
    elif boilerplate:
        provider, source = load_regions(boilerplate), f"regions {boilerplate}"
    elif boilerplate_filter:
        provider, source = (
            REGISTRY.make_component("span_filter", boilerplate_filter),
            f"filter {boilerplate_filter}",
        )
    payload_texts = [p for path in payloads for p in load_payloads(path)] or None
    scorer = load_scorer(instruction_scorer) if instruction_scorer else None
    span_filter = REGISTRY.make_component("span_filter", instruction_filter) if instruction_filter else None
    documents = load_documents(doc_paths)

    # Locked for the whole audit, so two audits into one --out never leave one's audit.json beside the other's
    # report; the three files are renamed into place together once all are written.
    with OutputLock(outputs[0]):
        result = run_audit(
            qa,
            documents,
            out,
            compare=compare,
            boilerplate=provider,
            boilerplate_source=source,
            instruction_scorer=scorer,
            instruction_filter=span_filter,
            payloads=payload_texts,
            config=config,
            report=write_report,
        )
    for summary in result.summary["datasets"]:
        typer.echo(_line(summary) + _rejected_note(Path(summary["path"])))
    typer.echo(f"audit: {out / 'audit.json'}   report: {out / 'report.html'}")


def _line(s: dict) -> str:
    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f}%"

    def num(x):
        return "n/a" if x is None else f"{x:.3f}"

    cov, conc = s["coverage"], s["concentration"]
    return (
        f"{s['name']}: {s['records']['audited']} records ({s['records']['unattributable']} unattributable), "
        f"coverage {pct(cov['value'])}, saturation {_saturation(cov)}, "
        f"Gini {num(conc['gini'])}, top-10% {pct(conc['top10_share'])}, "
        f"hijack {pct(s['markup_hijack']['share'])}, "
        f"instruction spans {pct(s['injection']['question_share_on_instruction_spans'])}, "
        f"grounded {pct(s['groundedness']['share'])}, "
        f"invented specifics {pct(s['invented_specifics']['share'])}, "
        f"duplicates {pct(s['duplicates']['share_with_duplicate'])}, "
        f"self-answering {pct(s['self_answering']['share'])}" + _sources(s["sources"])
    )


def _sources(sources: dict) -> str:
    """ ", questions model 80% / template 20%, answers ..." for datasets that record where pairs came from."""
    parts = []
    for side in ("question", "answer"):
        shares = {k: v for k, v in sources[side].items() if k != "unrecorded"}
        if shares:
            parts.append(f"{side}s " + " / ".join(f"{k} {100 * v['share']:.0f}%" for k, v in shares.items()))
    return ", " + ", ".join(parts) if parts else ""


def _rejected_note(path: Path) -> str:
    """Points at robustqa's side file of rejected pairs, which the audit does not read (their reasons are
    there)."""
    from robustqa.run_files import rejected_path

    side = rejected_path(path)
    if not side.is_file():
        return ""
    with side.open("rb") as fh:
        count = sum(1 for line in fh if line.strip())
    return f"; {count} rejected pairs, with reasons, in {side}" if count else ""


def _saturation(coverage: dict) -> str:
    if not coverage["saturation_applicable"]:
        return f"n/a overall ({coverage['documents_saturated']} documents saturated)"
    point = coverage["saturation_point"]
    return "not reached" if point is None else f"after {point} questions"
