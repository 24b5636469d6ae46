"""Output safety: no output may overwrite an input, and every artefact is written whole or not at all.

`refuse_overlap` is the one check every command runs on its outputs before anything is touched: an output path
that resolves to an input file (through a symlink or a hard link too) or lies inside an input directory is
refused. `require_file_path` and `require_dir_path` refuse an output that is not a plain file or folder (a named
pipe, a device, a symlink loop), and `require_regular_input` an input that is one: opening a pipe blocks forever
and a device never ends. `atomic_write_*` and `atomic_path` write to a temporary file beside the target, fsync
it and rename it into place, so a full disk or a kill leaves the previous file (or none), never a truncated one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from robustqa.errors import ConfigError, InputError


def _resolved(path: Path) -> Path:
    # os.path.realpath, unlike Path.resolve, returns a symlink loop as it stands instead of raising.
    return Path(os.path.realpath(os.path.abspath(path.expanduser())))


def path_kind(path: str | Path) -> str:
    """What is at `path`, following links: "missing", "file", "dir", "loop" (a symlink cycle) or "special" (a
    named pipe, socket or device)."""
    try:
        mode = os.stat(Path(path).expanduser()).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "loop"
        if exc.errno == errno.ENOTDIR:
            return "missing"
        raise
    if stat.S_ISREG(mode):
        return "file"
    return "dir" if stat.S_ISDIR(mode) else "special"


_SPECIAL = "not a regular file (a named pipe, socket or device)"


def require_regular_input(path: str | Path, error: type[Exception] = InputError) -> None:
    """`error` when an input path is a symlink loop or not a regular file (reading a pipe would block, a device
    would never end); a missing path or a directory is left to the caller's own message."""
    kind = path_kind(path)
    if kind == "loop":
        raise error(f"{path}: a symbolic link loop")
    if kind == "special":
        raise error(f"{path}: {_SPECIAL}; give a file")


def refuse_overlap(outputs: Iterable[str | Path], inputs: Iterable[str | Path], flag: str = "--out") -> None:
    """ConfigError when an output is an input file or lies inside an input directory."""
    ins = [(Path(p), _resolved(Path(p))) for p in inputs]
    for given in outputs:
        out = Path(given)
        target = _resolved(out)
        for original, source in ins:
            if target == source or _same_file(target, source):
                raise ConfigError(
                    f"{flag} {out} is the input {original}: writing it would destroy the input; choose another {flag}"
                )
            if source.is_dir() and target.is_relative_to(source):
                raise ConfigError(
                    f"{flag} {out} lies inside the input directory {original}: its records would be read as "
                    f"input; choose a {flag} outside it"
                )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def require_file_path(out: str | Path, flag: str = "--out") -> None:
    """ConfigError when an output meant to be a file is a directory, or its parent is a file."""
    out = Path(out)
    kind = path_kind(out)
    if kind == "dir":
        raise ConfigError(f"{flag} {out} is a directory; give a file path")
    if kind in ("loop", "special"):
        what = "a symbolic link loop" if kind == "loop" else _SPECIAL
        raise ConfigError(f"{flag} {out} is {what}; give a file path")
    for parent in out.expanduser().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {out}: {parent} is a file, not a directory")
            break


def require_dir_path(out: str | Path, flag: str = "--out") -> None:
    """ConfigError when an output meant to be a directory is an existing file."""
    out = Path(out)
    kind = path_kind(out)
    if kind == "file":
        raise ConfigError(f"{flag} {out} is a file; give a directory")
    if kind in ("loop", "special"):
        what = "a symbolic link loop" if kind == "loop" else _SPECIAL
        raise ConfigError(f"{flag} {out} is {what}; give a directory")
    for parent in out.expanduser().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {out}: {parent} is a file, not a directory")
            break


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside `path`; fsynced and renamed onto `path` when the block ends without an error,
    removed if it raises. Works for a file or a directory written at the temporary path, and replaces a file or
    a directory (a directory is swapped: the old one is renamed aside, the new one in, then the old deleted)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix + ".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the writer creates it (a file, or a directory)
    try:
        yield tmp
        _fsync_tree(tmp)
        if path.is_symlink() or not path.exists() or not (tmp.is_dir() or path.is_dir()):
            os.replace(tmp, path)
        else:
            _replace_dir(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_paths(*paths: str | Path) -> Iterator[list[Path]]:
    """`atomic_path` for several outputs that belong together: the temporary paths, all renamed into place only
    once the block has written every one of them without an error (none of them if it raises), so a failure
    part-way never leaves one new file beside the others' old ones."""
    with contextlib.ExitStack() as stack:
        # Entered in reverse, so the renames run in the order given (an ExitStack unwinds last-in first-out).
        tmps = [stack.enter_context(atomic_path(p)) for p in reversed(paths)]
        yield tmps[::-1]


def _replace_dir(tmp: Path, path: Path) -> None:
    """Swap a finished file or directory in for an old one where one of them is a directory (which `os.replace`
    cannot do): rename the old aside, the new in, then delete the old."""
    aside = path.with_name(f".{path.name}.old-{os.getpid()}")
    os.replace(path, aside)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(aside, path)
        raise
    _remove(aside)


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _fsync_tree(path: Path) -> None:
    """fsync a written file, or every file of a written directory, so the rename publishes data on disk. A
    failure (ENOSPC surfaces here on some file systems) propagates: the old output then stays."""
    files = [path] if not path.is_dir() else [p for p in sorted(path.rglob("*")) if p.is_file()]
    for file in files:
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    if path.is_dir():
        for folder in [path, *(p for p in path.rglob("*") if p.is_dir())]:
            _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
