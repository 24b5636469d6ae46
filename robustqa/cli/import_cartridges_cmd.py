"""`robustqa import-cartridges`: a Cartridges self-study config as a robustqa YAML config for `--config`."""

from __future__ import annotations

from pathlib import Path

import typer

from robustqa.cartridges_compat import read_cartridges, to_yaml
from robustqa.errors import ConfigError
from robustqa.io.outputs import atomic_write_text, refuse_overlap, require_file_path


def import_cartridges(
    path: Path = typer.Argument(..., help="Cartridges self-study config (YAML or JSON, nested or flat)."),
    out: Path = typer.Option(..., "--out", "-o", help="robustqa YAML config to write."),
    strategy: str = typer.Option("naive", "--strategy", "-s", help="Any strategy with naive's knobs."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
) -> None:
    """Translate a Cartridges self-study config; what does not carry over is printed and kept as comments."""
    require_file_path(out)
    refuse_overlap([out], [path])
    imported = read_cartridges(path, strategy)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists: choose another --out or pass --overwrite")
    atomic_write_text(out, to_yaml(imported))
    for note in imported.notes:
        typer.echo(f"note: {note}")
    docs = " ".join(imported.documents) or "DOCUMENTS..."
    typer.echo(f"wrote {out}\nrun: robustqa generate {docs} --config {out} --out qa.jsonl")
