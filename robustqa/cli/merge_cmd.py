"""`robustqa merge`: join the outputs of `generate --shard I/N` runs, checking that they belong together."""

from __future__ import annotations

from pathlib import Path

import typer

from robustqa.merge import merge_shards


def merge(
    shards: list[Path] = typer.Argument(..., help="Shard outputs (the .jsonl files given to --out), any order."),
    out: Path = typer.Option(..., "--out", "-o", help="Merged QA JSONL; rejected pairs and a manifest go beside it."),
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="Merge even when shards are missing or incomplete (they are reported)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing merged output."),
) -> None:
    """Merge shard outputs: same fingerprint, every shard once, no duplicate or foreign records."""
    report = merge_shards(shards, out, overwrite=overwrite, allow_partial=allow_partial)
    typer.echo(report.summary())
