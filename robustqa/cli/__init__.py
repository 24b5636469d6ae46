"""The `robustqa` command line. Each command lives in its own module; errors print on one line, no traceback."""

from __future__ import annotations

import typer

from .errors import run_cli

app = typer.Typer(
    name="robustqa",
    help="Robust self-study QA generation, audit and student training.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from . import (
        audit_cmd,
        export_cmd,
        generate_cmd,
        import_cartridges_cmd,
        merge_cmd,
        strategies_cmd,
        train_cmd,
    )

    app.command("generate")(generate_cmd.generate)
    app.command("audit")(audit_cmd.audit)
    app.command("train")(train_cmd.train)
    app.command("compare")(train_cmd.compare)
    app.command("merge")(merge_cmd.merge)
    app.command("export")(export_cmd.export)
    app.command("import-cartridges")(import_cartridges_cmd.import_cartridges)
    app.command("strategies")(strategies_cmd.strategies)


_register()


def main(argv: list[str] | None = None) -> None:
    run_cli(app, argv)
