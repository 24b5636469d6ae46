"""`robustqa train` (one student from QA records) and `robustqa compare` (students of several strategies)."""

from __future__ import annotations

from pathlib import Path

import typer


def train(
    qa: Path = typer.Argument(..., help="QA JSONL written by `robustqa generate` (kept records are used)."),
    base: str | None = typer.Option(None, "--base", help="Model dir (default: embedded SmolLM2)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output dir: model, tokenizer, config, log."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML file of TrainConfig fields."),
    method: str | None = typer.Option(None, "--method", help="full or lora (overrides the config)."),
    objective: str | None = typer.Option(
        None, "--objective", help="sft, or distill: towards the teacher top-k logprobs (--teacher-logprobs K)."
    ),
    epochs: float | None = typer.Option(None, "--epochs", help="Training epochs (overrides the config)."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after N optimizer steps."),
    seed: int | None = typer.Option(None, "--seed", help="Training seed (overrides the config)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Fine-tune a student on QA records, closed book, loss on the answers only (TRL SFTTrainer)."""
    from robustqa.training.config import TrainConfig
    from robustqa.training.sft import train_student

    cfg = TrainConfig.from_yaml(config) if config else TrainConfig()
    overrides = {
        "base": base,
        "method": method,
        "objective": objective,
        "epochs": epochs,
        "max_steps": max_steps,
        "seed": seed,
    }
    data = {**cfg.to_dict(), **{k: v for k, v in overrides.items() if v is not None}}
    cfg = TrainConfig.from_dict(data, source="command line")
    result = train_student(qa, cfg, out, progress=progress)
    typer.echo(
        f"trained on {result.num_examples} pairs: {result.steps} steps in {result.seconds:.1f}s, "
        f"loss {_loss(result.first_loss)} -> {_loss(result.final_loss)}\nstudent: {out}"
    )


def _loss(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def compare(
    experiment: Path = typer.Argument(..., help="EXPERIMENT.yaml (strategies, seeds, budget, train, eval)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output dir: data, students, results.json, report.md."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Train students on naive vs robust QA at an equal budget and compare them (results.json + report)."""
    from robustqa.training.compare import run_experiment
    from robustqa.training.experiment import Experiment

    exp = Experiment.from_yaml(experiment)
    run_experiment(exp, out, progress=progress, log=typer.echo)
