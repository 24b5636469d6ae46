"""Where robustqa keeps its caches: $ROBUSTQA_CACHE, else $XDG_CACHE_HOME/robustqa, else ~/.cache/robustqa."""

from __future__ import annotations

import os
from pathlib import Path, PurePath


def user_cache_dir() -> Path:
    root = os.environ.get("ROBUSTQA_CACHE")
    if root:
        path = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        path = (Path(xdg) if xdg else Path.home() / ".cache") / "robustqa"
    path.mkdir(parents=True, exist_ok=True)
    return path


def response_cache_path(setting: str | None) -> Path | None:
    """Resolve the `cache` config value: None/'off' -> no cache, 'auto' -> the user cache dir, else a path."""
    if setting is None or str(setting).lower() in {"off", "none", "false", ""}:
        return None
    if setting == "auto":
        return user_cache_dir() / "responses.sqlite"
    return Path(setting)


def portable_path(path: str | PurePath, base: str | PurePath) -> str:
    """`path` as written into a result file: relative to `base` (the folder the file lives in, or the repo),
    `~/...` under the home directory, so no result names the machine that wrote it."""
    absolute = Path(os.path.abspath(os.path.expanduser(path)))
    home = Path.home()
    if absolute.is_relative_to(home) and not absolute.is_relative_to(os.path.abspath(base)):
        return str(PurePath("~") / absolute.relative_to(home))
    return os.path.relpath(absolute, os.path.abspath(base))
