"""`robustqa strategies`: list the registered strategies and components, one line each."""

from __future__ import annotations

import typer

from robustqa.registry import REGISTRY


def strategies(
    components: bool = typer.Option(False, "--components", help="Also list the components compositions use."),
) -> None:
    """List registered strategies (built-ins and plugins from the `robustqa.strategies` entry points)."""
    entries = REGISTRY.available()
    width = max((len(n) for n in entries), default=0)
    for name, entry in entries.items():
        source = "" if entry.source == "robustqa" else f"  [{entry.source}]"
        typer.echo(f"{name:<{width}}  {entry.help}{source}")
    if components:
        for kind, table in REGISTRY.components.items():
            for name, entry in sorted(table.items()):
                typer.echo(f"{kind}:{name}  {entry.help}")
