"""`robustqa generate`: documents in, QA records with provenance out (append-only JSONL, resumable)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from robustqa.config import GenerateConfig
from robustqa.io.loaders import DocumentSource
from robustqa.io.lock import lock_path
from robustqa.io.outputs import refuse_overlap, require_file_path
from robustqa.keyvalue import parse_pairs
from robustqa.lm.factory import make_lm
from robustqa.model_tokenizer import fill_model_tokenizer
from robustqa.paths import response_cache_path
from robustqa.run_files import manifest_path, rejected_path
from robustqa.runner import generate_records


def generate(
    paths: list[Path] = typer.Argument(
        ..., help="Documents: .txt .md .html(.gz) .jsonl (id, text), SQuAD .json, dirs."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output QA JSONL (kept pairs); rejected go beside it."),
    strategy: str | None = typer.Option(None, "--strategy", "-s", help="Registered strategy name."),
    budget: int | None = typer.Option(None, "--budget", "-n", help="QA pairs to plan over the corpus."),
    seed: int | None = typer.Option(None, "--seed", help="Run seed."),
    backend: str | None = typer.Option(
        None,
        "--backend",
        help="auto (the default: the embedded model on CTranslate2 in float32 when ctranslate2 is installed, "
        "else hf), hf (local transformers), ct2 (local CTranslate2, int8) or openai.",
    ),
    model: str | None = typer.Option(None, "--model", help="hf: local model dir; openai: served model name."),
    base_url: str | None = typer.Option(None, "--base-url", help="openai: server base URL (…/v1)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config (any GenerateConfig field)."),
    shard: str | None = typer.Option(None, "--shard", help="I/N: run the I-th of N partitions (0-based)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Items per strategy/LM batch."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run: finished items are skipped."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not use the SQLite response cache."),
    teacher_logprobs: int | None = typer.Option(
        None,
        "--teacher-logprobs",
        help="K: store the teacher's answer token ids and top-K logprobs per kept record (Cartridges: 20).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    params: list[str] = typer.Option(
        [],
        "--param",
        "-p",
        help="KEY=VALUE strategy parameter (YAML value), repeatable: -p attempts=3 -p consistency_k=5. "
        "For a composition, -p attempts=N sets its attempts.",
    ),
) -> None:
    """Generate QA pairs from documents with a strategy and a language model."""
    cfg = GenerateConfig.from_yaml(config) if config else GenerateConfig()
    overrides = {
        "strategy": strategy,
        "budget": budget,
        "seed": seed,
        "backend": backend,
        "model": model,
        "base_url": base_url,
        "shard": shard,
        "batch_size": batch_size,
        "teacher_logprobs": teacher_logprobs,
    }
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    if no_cache:
        cfg.cache = None
    for key, value in parse_pairs(params).items():
        if cfg.selector is not None and key == "attempts":
            cfg.attempts = value
        else:
            cfg.strategy_params = {**cfg.strategy_params, key: value}

    # Validate everything before touching the output, so bad input leaves nothing a resume could mistake for work:
    # the config here, the documents in the runner's first pass (they are streamed, never loaded all at once).
    cfg.validate()
    strat = cfg.build_strategy()
    teacher = cfg.teacher_settings()
    documents = DocumentSource(paths)
    outputs = [out, rejected_path(out), manifest_path(out), lock_path(out)]
    for path in outputs[:3]:
        require_file_path(path)
    refuse_overlap(outputs, [*paths, *([config] if config else [])])
    shard_pair = cfg.parsed_shard()
    lm = make_lm(
        cfg.backend,
        model=cfg.model,
        base_url=cfg.base_url,
        api_key_env=cfg.api_key_env,
        cache_path=response_cache_path(cfg.cache),
        concurrency=cfg.concurrency,
        max_retries=cfg.max_retries,
        timeout=cfg.timeout,
    )
    note = fill_model_tokenizer(cfg, lm)  # chunk sizes count the model's tokens, as Cartridges' do
    if note:
        typer.echo(note)  # stdout: a note, not an error (stderr keeps one line per error)
    strat = cfg.build_strategy()
    fingerprint = cfg.fingerprint(strat, lm.model_id)
    try:
        summary = generate_records(
            documents,
            strat,
            lm,
            cfg.budget,
            cfg.seed,
            out,
            resume=resume,
            overwrite=overwrite,
            batch_size=cfg.batch_size,
            shard=shard_pair,
            write_rejected=cfg.write_rejected,
            fingerprint=fingerprint,
            config=_config_dict(cfg),
            progress=progress,
            teacher=teacher,
        )
    finally:
        lm.close()
    typer.echo(
        f"{summary.kept} kept, {summary.rejected} rejected of {summary.planned} planned "
        f"({summary.skipped_done} done before) in {summary.seconds:.1f}s "
        f"({summary.pairs_per_minute:.1f} pairs/min, {summary.usage.get('total_tokens', 0)} LM tokens)\n"
        f"records: {out}   rejected: {rejected_path(out)}"
    )
    if summary.rejected_by:
        counts = ", ".join(f"{name} {n}" for name, n in sorted(summary.rejected_by.items(), key=lambda kv: -kv[1]))
        typer.echo(f"rejected by: {counts} (first filter to reject each pair; reasons in the rejected file)")


def _config_dict(cfg: GenerateConfig) -> dict:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(cfg), default=str))
