"""Output safety: no output may overwrite an input, and every artefact is written whole or not at all.

`refuse_overlap` is the one check every command runs on its outputs before anything is touched: an output path
that resolves to an input file (through a symlink or a hard link too) or lies inside an input directory is
refused. `atomic_write_*` and `atomic_path` write to a temporary file beside the target and rename it into place,
so a full disk or a kill leaves the previous file (or none), never a truncated one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from robustqa.errors import ConfigError


def _resolved(path: Path) -> Path:
    return Path(os.path.abspath(path.expanduser())).resolve(strict=False)


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
    if out.expanduser().is_dir():
        raise ConfigError(f"{flag} {out} is a directory; give a file path")
    for parent in out.expanduser().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {out}: {parent} is a file, not a directory")
            break


def require_dir_path(out: str | Path, flag: str = "--out") -> None:
    """ConfigError when an output meant to be a directory is an existing file."""
    out = Path(out)
    if out.expanduser().exists() and not out.expanduser().is_dir():
        raise ConfigError(f"{flag} {out} is a file; give a directory")
    for parent in out.expanduser().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {out}: {parent} is a file, not a directory")
            break


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside `path`; renamed onto `path` when the block ends without an error, removed if it
    raises. Works for a file or a directory written at the temporary path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix + ".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the writer creates it (a file, or a directory)
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            _replace_dir(tmp, path)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        _remove(tmp)
        raise


def _replace_dir(tmp: Path, path: Path) -> None:
    """Swap a finished directory in for an old one: rename the old aside, the new in, then delete the old."""
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
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
