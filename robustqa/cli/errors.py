"""The CLI's one error path: every expected failure becomes `robustqa: error: ...` on one line, non-zero exit.

typer bundles its own copy of click (`typer._click`) and raises that copy's exceptions; the classes are taken
from what typer itself exports, and the standalone `click` package's are caught too, whichever one raises.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from typing import Any

import typer

from robustqa.errors import RobustQAError


def _classes(name: str) -> tuple[type[BaseException], ...]:
    """The classes called `name` in typer's exception hierarchy and in the standalone click, if installed."""
    found: list[type[BaseException]] = []
    for probe in (typer.BadParameter, typer.Exit, typer.Abort):
        found += [c for c in probe.__mro__ if c.__name__ == name]
    try:
        import click.exceptions as standalone

        if hasattr(standalone, name):
            found.append(getattr(standalone, name))
    except ImportError:  # pragma: no cover - typer no longer needs click
        pass
    try:
        import typer._click.exceptions as bundled  # noqa: PLC2701 - what typer >= 0.2x raises

        if hasattr(bundled, name):
            found.append(getattr(bundled, name))
    except ImportError:
        pass
    return tuple(dict.fromkeys(found))


CLICK_ERRORS = _classes("ClickException")
EXITS = _classes("Exit") + (typer.Exit,)
ABORTS = _classes("Abort") + (typer.Abort,)
NO_ARGS = _classes("NoArgsIsHelpError")

# Exit codes: 2 for usage and input errors (as click), 1 for failures of the environment (disk, permissions).
USAGE, ENVIRONMENT, INTERRUPTED = 2, 1, 130


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def fail(message: str, code: int = USAGE) -> None:
    print(f"robustqa: error: {one_line(message)}", file=sys.stderr)
    sys.exit(code)


def run_cli(app: Callable[..., Any], argv: list[str] | None) -> None:
    """Run the typer app; turn every expected failure into one line on stderr and a non-zero exit."""
    try:
        result = app(args=argv, prog_name="robustqa", standalone_mode=False)
    except EXITS as exc:
        sys.exit(getattr(exc, "exit_code", 0))
    except NO_ARGS as exc:
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            print(ctx.get_help())
        fail("no command given; the commands are listed above (robustqa COMMAND --help for one)")
    except CLICK_ERRORS as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        fail(exc.format_message() + hint, getattr(exc, "exit_code", USAGE) or USAGE)
    except ABORTS:
        print("robustqa: aborted", file=sys.stderr)
        sys.exit(INTERRUPTED)
    except RobustQAError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        print("robustqa: interrupted; finished records are saved, rerun with --resume", file=sys.stderr)
        sys.exit(INTERRUPTED)
    except OSError as exc:
        fail(_os_message(exc), ENVIRONMENT)
    except RecursionError:
        fail("input nested too deeply to process", USAGE)
    except MemoryError:
        fail("out of memory", ENVIRONMENT)
    sys.exit(result if isinstance(result, int) else 0)


def _os_message(exc: OSError) -> str:
    where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
    reason = exc.strerror or exc.__class__.__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        cure = "raise the file size limit (ulimit -f)" if exc.errno == errno.EFBIG else "free some space"
        return (
            f"{where}{reason}; earlier outputs are as they were and records written so far are complete: {cure} "
            "and rerun the command (generate: with --resume)"
        )
    return f"{where}{reason}"
