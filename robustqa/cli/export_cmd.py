"""`robustqa export`: QA records as Cartridges parquet, OpenAI fine-tuning JSONL or a saved HF dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from robustqa.export import FORMATS, export_records


def export(
    path: Path = typer.Argument(..., help="QA JSONL written by robustqa generate (or merge)."),
    fmt: str = typer.Option(..., "--format", "-f", help=f"One of: {', '.join(FORMATS)}."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (parquet, JSONL) or directory (hf-dataset)."),
    docs: list[Path] | None = typer.Option(
        None, "--docs", help="cartridges-parquet: the source documents, to fill each row's system_prompt."
    ),
    include_rejected: bool = typer.Option(False, "--include-rejected", help="Also export rejected records."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
) -> None:
    """Export QA records in the shapes other tools read as they are."""
    n = export_records(path, fmt, out, docs=docs or (), include_rejected=include_rejected, overwrite=overwrite)
    typer.echo(f"{n} records exported as {fmt}: {out}")
