"""A run's files beside its output OUT.jsonl: the rejected pairs (OUT.rejected.jsonl) and the manifest
(OUT.manifest.json); what an earlier run left there, judged before anything is written; and the output made
ready to append to."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ConfigError
from .io.bounded import loads_json
from .io.jsonl import complete_lines, repair_tail
from .io.outputs import atomic_write_text


def rejected_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".jsonl") + ".rejected.jsonl")


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".jsonl") + ".manifest.json")


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest's content, or None when it is missing or unreadable (the records then decide alone)."""
    try:
        data = loads_json(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_earlier_output(out: Path, rejects: Path, fingerprint: str, resume: bool, overwrite: bool) -> set[str]:
    """Judge what an earlier run left (reading only) and return the ids a resume skips.

    A resume continues only the same configuration, judged by every record's own fingerprint as well as the
    manifest's, so a lost or damaged manifest cannot let two configurations mix in one file."""
    has_output = any(p.exists() and p.stat().st_size > 0 for p in (out, rejects))
    if has_output and not (resume or overwrite):
        raise ConfigError(f"{out} already holds records: pass --resume to continue that run or --overwrite")
    if not resume or not has_output:
        return set()
    previous = read_manifest(manifest_path(out))
    if previous is not None and previous.get("fingerprint") != fingerprint:
        raise ConfigError(_OTHER_CONFIG.format(where=out, theirs=previous.get("fingerprint"), ours=fingerprint))
    done: set[str] = set()
    for path in (out, rejects):
        for lineno, row in complete_lines(path):
            if row.get("fingerprint") != fingerprint:
                where = f"{path}:{lineno}"
                raise ConfigError(_OTHER_CONFIG.format(where=where, theirs=row.get("fingerprint"), ours=fingerprint))
            if "id" in row:
                done.add(str(row["id"]))
    return done


_OTHER_CONFIG = (
    "{where} was written by a different configuration (fingerprint {theirs}, now {ours}); resume only with the "
    "same config, or choose another --out"
)


def prepare_output(
    out: Path,
    rejects: Path,
    fingerprint: str,
    resume: bool,
    overwrite: bool,
    config: Mapping[str, Any] | None,
    shard: tuple[int, int],
    planned: int,
) -> None:
    """Make the output ready to append to, and write the manifest (with this shard's planned item count, so
    `merge` can tell a finished shard) before the first LM call."""
    if overwrite and not resume:
        for path in (out, rejects, manifest_path(out)):
            path.unlink(missing_ok=True)
    for path in (out, rejects):
        repair_tail(path)
    manifest = {
        "fingerprint": fingerprint,
        "robustqa": __version__,
        "shard": list(shard),
        "config": dict(config or {}),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "planned": planned,
    }
    atomic_write_text(manifest_path(out), json.dumps(manifest, indent=2, default=str))
