"""Join the outputs of `robustqa generate --shard I/N` runs into one file, checking that they belong together.

1. Read every shard's manifest: all must carry the same fingerprint (same config, model, budget, seed) and
   the same N; each index 0..N-1 must appear once (a missing shard is an error unless `allow_partial`).
2. Stream every shard's kept and rejected records into temporary files beside the output: each record must
   carry the run's fingerprint, belong to its file's shard (`robustqa.budget.in_shard`) and appear only once.
3. Where a manifest says how many items its shard planned, the records present must match it.
4. Only when all checks pass are the temporary files fsynced and renamed into place, the manifest last, so the
   merged output can be audited, exported or resumed (`--resume`) like an unsharded run. A failed merge (bad
   input, a full disk, a kill) leaves no output, or the previous one as it was. The output is locked for the
   whole merge (`robustqa.io.lock`), so two merges onto one `--out` never mix.

Memory: only the record ids are held (to find duplicates), never the records.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .budget import in_shard
from .errors import ConfigError, InputError
from .io.bounded import loads_json
from .io.jsonl import iter_jsonl
from .io.lock import OutputLock, lock_path
from .io.outputs import atomic_path, refuse_overlap, require_file_path, require_regular_input
from .run_files import manifest_path, rejected_path


@dataclass
class ShardInfo:
    """One shard output as its manifest and records describe it."""

    path: str
    index: int
    count: int
    fingerprint: str
    planned: int | None = None
    kept: int = 0
    rejected: int = 0


@dataclass
class MergeReport:
    """What a merge found and wrote. `missing_shards` is empty unless `allow_partial` let a gap through."""

    out: str
    fingerprint: str
    shard_count: int
    shards: list[ShardInfo] = field(default_factory=list)
    missing_shards: list[int] = field(default_factory=list)
    kept: int = 0
    rejected: int = 0
    planned: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [
            f"merged {len(self.shards)} of {self.shard_count} shard(s) (fingerprint {self.fingerprint}): "
            f"{self.kept} kept, {self.rejected} rejected"
            + (f" of {self.planned} planned" if self.planned is not None else ""),
        ]
        for s in self.shards:
            planned = f" of {s.planned} planned" if s.planned is not None else ""
            lines.append(f"  shard {s.index}/{s.count}: {s.kept} kept, {s.rejected} rejected{planned}  ({s.path})")
        if self.missing_shards:
            lines.append(f"  MISSING shard(s): {', '.join(f'{i}/{self.shard_count}' for i in self.missing_shards)}")
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"records: {self.out}   rejected: {rejected_path(Path(self.out))}")
        return "\n".join(lines)


def merge_shards(
    shard_paths: Sequence[str | Path],
    out: str | Path,
    *,
    overwrite: bool = False,
    allow_partial: bool = False,
) -> MergeReport:
    """Merge shard outputs into `out` (+ its rejected file and manifest). See the module docstring."""
    out = Path(out)
    if not shard_paths:
        raise ConfigError("merge needs at least one shard output file")
    shards, manifests = _read_manifests([Path(p) for p in shard_paths])
    _check_manifests(shards)
    count = shards[0].count
    fingerprint = shards[0].fingerprint
    missing = sorted(set(range(count)) - {s.index for s in shards})
    if missing and not allow_partial:
        names = ", ".join(f"{i}/{count}" for i in missing)
        raise InputError(f"shard(s) {names} missing: merge all {count} shards, or pass --allow-partial")
    outputs = (out, rejected_path(out), manifest_path(out))
    inputs = [f(Path(s.path)) for s in shards for f in (lambda p: p, rejected_path, manifest_path)]
    for path in outputs:
        require_file_path(path)
    try:
        refuse_overlap([*outputs, lock_path(out)], inputs)
    except ConfigError as exc:
        raise ConfigError(f"{out}: the merged output must not be one of the shard files ({exc})") from None

    report = MergeReport(
        out=str(out), fingerprint=fingerprint, shard_count=count, shards=shards, missing_shards=missing
    )
    with OutputLock(out):
        if not overwrite and any(p.exists() and p.stat().st_size > 0 for p in outputs[:2]):
            raise ConfigError(f"{out} already exists: choose another --out or pass --overwrite")
        # Renamed in reverse order when the block ends: rejected, kept, then the manifest that describes them.
        with (
            atomic_path(manifest_path(out)) as tmp_manifest,
            atomic_path(out) as tmp_kept,
            atomic_path(rejected_path(out)) as tmp_rejected,
        ):
            seen: set[str] = set()
            with (
                open(tmp_kept, "w", encoding="utf-8") as kept_fh,
                open(tmp_rejected, "w", encoding="utf-8") as rej_fh,
            ):
                for shard in shards:
                    shard.kept = _copy_records(Path(shard.path), shard, seen, kept_fh)
                    shard.rejected = _copy_records(rejected_path(Path(shard.path)), shard, seen, rej_fh)
            _check_counts(shards, manifests, allow_partial, report)
            report.kept = sum(s.kept for s in shards)
            report.rejected = sum(s.rejected for s in shards)
            tmp_manifest.write_text(_manifest_text(report, manifests), encoding="utf-8")
    return report


# -- steps ---------------------------------------------------------------------------------------------------


def _read_manifests(paths: list[Path]) -> tuple[list[ShardInfo], list[dict[str, Any]]]:
    shards, manifests = [], []
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if path.is_dir():
            raise InputError(f"{path}: is a directory, not a shard output (.jsonl)")
        manifest = manifest_path(path)
        if not manifest.exists():
            raise InputError(f"{path}: no manifest ({manifest.name}) beside it; was it written by robustqa generate?")
        data, index, count, fingerprint, planned = _parse_manifest(manifest)
        shards.append(ShardInfo(str(path), index, count, fingerprint, planned))
        manifests.append(data)
    order = sorted(range(len(shards)), key=lambda i: shards[i].index)
    return [shards[i] for i in order], [manifests[i] for i in order]


def _parse_manifest(manifest: Path) -> tuple[dict[str, Any], int, int, str, int | None]:
    """(content, shard index, shard count, fingerprint, planned) of a manifest; InputError for any damage."""

    def bad(why: str) -> InputError:
        return InputError(f"{manifest}: not a robustqa manifest ({why})")

    require_regular_input(manifest)
    try:
        data = loads_json(manifest.read_bytes())
    except OSError as exc:
        raise InputError(f"{manifest}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise bad(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise bad(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise bad(f"expected a JSON object, got {type(data).__name__}")
    shard = data.get("shard", [0, 1])
    if not (isinstance(shard, list) and len(shard) == 2 and all(_is_int(x) for x in shard)):
        raise bad(f"'shard' must be [index, count], got {shard!r}"[:300])
    fingerprint = data.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        raise bad("no 'fingerprint' string")
    planned = data.get("planned")
    if planned is not None and not (_is_int(planned) and planned >= 0):
        raise bad(f"'planned' must be a count, got {planned!r}"[:300])
    config = data.get("config")
    if config is not None and not isinstance(config, dict):
        raise bad(f"'config' must be an object, got {type(config).__name__}")
    return data, int(shard[0]), int(shard[1]), fingerprint, planned


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_manifests(shards: list[ShardInfo]) -> None:
    fingerprints = sorted({s.fingerprint for s in shards})
    if len(fingerprints) > 1:
        by = "; ".join(f"{Path(s.path).name}: {s.fingerprint}" for s in shards)
        raise ConfigError(f"the shards come from different configurations (fingerprints differ: {by})")
    counts = sorted({s.count for s in shards})
    if len(counts) > 1:
        raise ConfigError(f"the shards split the work differently (N = {', '.join(map(str, counts))})")
    seen: dict[int, str] = {}
    for s in shards:
        if not 0 <= s.index < s.count:
            raise InputError(f"{s.path}: manifest names shard {s.index}/{s.count}, which does not exist")
        if s.index in seen:
            raise InputError(f"shard {s.index}/{s.count} given twice (extra): {seen[s.index]} and {s.path}")
        seen[s.index] = s.path


def _copy_records(path: Path, shard: ShardInfo, seen: set[str], fh) -> int:
    """Copy one file's records (validated) to `fh`; returns how many."""
    if not path.exists():
        return 0
    n = 0
    try:
        for lineno, row in iter_jsonl(path):
            rid = row.get("id")
            if not isinstance(rid, str) or not rid:
                raise InputError(f"{path}:{lineno}: record without an 'id'")
            if row.get("fingerprint") != shard.fingerprint:
                raise InputError(
                    f"{path}:{lineno}: record {rid} has fingerprint {row.get('fingerprint')!r}, "
                    f"its manifest says {shard.fingerprint!r}"
                )
            if not in_shard(rid, (shard.index, shard.count)):
                raise InputError(f"{path}:{lineno}: record {rid} does not belong to shard {shard.index}/{shard.count}")
            if rid in seen:
                raise InputError(f"{path}:{lineno}: duplicate record id {rid}")
            seen.add(rid)
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    except InputError as exc:
        if "malformed JSON" in str(exc):
            raise InputError(
                f"{exc}; if that shard's run was killed, finish it with `robustqa generate --resume`"
            ) from None
        raise
    return n


def _check_counts(
    shards: list[ShardInfo], manifests: list[dict[str, Any]], allow_partial: bool, report: MergeReport
) -> None:
    """A shard whose manifest states its plan must hold every planned record (kept or rejected)."""
    for shard, manifest in zip(shards, manifests, strict=True):
        writes_rejected = (manifest.get("config") or {}).get("write_rejected", True)
        if shard.planned is None or not writes_rejected:
            continue
        have = shard.kept + shard.rejected
        if have != shard.planned:
            message = (
                f"shard {shard.index}/{shard.count} ({shard.path}) holds {have} of {shard.planned} planned "
                f"records ({shard.planned - have} missing)"
            )
            if not allow_partial:
                raise InputError(message + "; finish it with `robustqa generate --resume`, or pass --allow-partial")
            report.notes.append(message)
    if all(s.planned is not None for s in shards):
        report.planned = sum(s.planned or 0 for s in shards)
    else:
        report.notes.append("a manifest lacks the planned count: completeness was checked by shard coverage only")


def _manifest_text(report: MergeReport, manifests: list[dict[str, Any]]) -> str:
    config = dict(manifests[0].get("config") or {})
    if "shard" in config:
        config["shard"] = None
    manifest = {
        "fingerprint": report.fingerprint,
        "robustqa": __version__,
        "shard": [0, 1],
        "config": config,
        "merged_from": [
            {"path": s.path, "shard": [s.index, s.count], "kept": s.kept, "rejected": s.rejected} for s in report.shards
        ],
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if report.planned is not None and not report.missing_shards:
        manifest["planned"] = report.planned
    return json.dumps(manifest, indent=2, default=str)
