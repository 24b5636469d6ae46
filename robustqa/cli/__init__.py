"""The `robustqa` command line. Each command lives in its own module; errors print on one line, no traceback."""

from __future__ import annotations

import sys

import click
import typer

from robustqa.errors import RobustQAError

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
    try:
        result = app(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        print("robustqa: aborted", file=sys.stderr)
        sys.exit(130)
    except RobustQAError as exc:
        print(f"robustqa: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("robustqa: interrupted; finished records are saved, rerun with --resume", file=sys.stderr)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
