"""An exclusive lock on an output for the life of a run, so two runs never write the same file.

The lock is `flock` on a hidden file beside the output (`.NAME.lock`) holding the holder's pid; the kernel
drops it when the process dies (kill -9 included), so a stale lock file never blocks a later run. The file is
removed on release; a run that locked a file just removed by another re-locks the new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from robustqa.errors import ConfigError


def lock_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.lock")


class OutputLock:
    """`with OutputLock(out): ...` holds the lock; ConfigError naming the holder's pid if another run has it."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.path = lock_path(self.out)
        self._fd: int | None = None
        self._made: list[Path] = []

    def __enter__(self) -> OutputLock:
        self._make_parents()
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                self._remove_parents()
                who = f"pid {holder}" if holder else "another process"
                raise ConfigError(
                    f"{self.out} is being written by another robustqa run ({who}); wait for it to end, "
                    "or choose another --out"
                ) from None
            # The holder we waited on may have removed the file: then lock the one now at the path.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            os.close(self._fd)
            self._fd = None
        self._remove_parents()

    def _make_parents(self) -> None:
        missing = [p for p in reversed(self.out.parents) if not p.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._made = missing

    def _remove_parents(self) -> None:
        """Folders this lock created and nothing else filled are removed again."""
        for folder in reversed(self._made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._made = []


def _read_pid(fd: int) -> int | None:
    try:
        raw = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(raw) if raw.isdigit() else None
    except OSError:
        return None
