"""Build a model directory once into the user cache: a file lock serialises two processes converting at once,
and the finished directory appears by an atomic rename with a marker file inside, so nobody ever sees half a
conversion. Used by the embedded model's GGUF -> safetensors step and by the CTranslate2 conversion.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robustqa.errors import BackendError

MARKER = "robustqa_conversion.json"


def is_converted(target: Path) -> bool:
    return (target / MARKER).exists()


def convert_once(target: Path, build: Callable[[Path], dict[str, Any] | None], what: str) -> Path:
    """`target` if a finished conversion is there, else `build(out)` writes a new directory `out` (beside the
    target, not existing yet; it may return facts to record in the marker) and `out` is renamed to `target`.
    `what` names the source in errors."""
    if is_converted(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the finished directory
        if not is_converted(target):
            _build(target, build, what)
    return target


def _build(target: Path, build: Callable[[Path], dict[str, Any] | None], what: str) -> None:
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    out = tmp / "out"
    try:
        info = dict(build(out) or {})
        out.mkdir(exist_ok=True)
        info["seconds"] = round(time.perf_counter() - t0, 1)
        (out / MARKER).write_text(json.dumps(info, indent=2), encoding="utf-8")
        if target.exists():  # a leftover without a marker: an interrupted run from before the atomic rename
            shutil.rmtree(target)
        os.chmod(out, 0o755)
        os.rename(out, target)
        shutil.rmtree(tmp, ignore_errors=True)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, BackendError):
            raise
        raise BackendError(f"converting {what} to {target} failed: {exc}") from exc
