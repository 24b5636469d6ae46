"""The student-training configuration: one dataclass, every field with a default and help text, from YAML.

Fields map onto TRL's `SFTConfig` (see `robustqa.training.sft`); the CPU-friendly settings TRL does not
default to (no bf16, no activation checkpointing, `use_cpu`) are fixed there, not exposed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from robustqa.config_base import ConfigBase, option
from robustqa.errors import ConfigError

METHODS = ("full", "lora")
OBJECTIVES = ("sft", "distill")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig(ConfigBase):
    """Configuration of `robustqa train` (and of every student in `robustqa compare`).

    Objective: objective (sft or distill).
    Model: base, method, lora_r, lora_alpha, lora_dropout, lora_target_modules, merge_lora.
    Schedule: epochs, max_steps, learning_rate, lr_scheduler, warmup_ratio, weight_decay, batch_size,
    grad_accumulation, max_length, seed.
    Logging and evaluation: logging_steps, eval_fraction, eval_steps.
    Machine: threads, device.
    """

    kind = "train config"

    base: str | None = option(
        None,
        "Local Hugging Face model directory of the student before training "
        "(null: the embedded SmolLM2-135M-Instruct, converted once to a cached directory).",
    )
    objective: str = option(
        "sft",
        "'sft': cross-entropy on the answer tokens (TRL); 'distill': Cartridges' context distillation, towards the "
        "teacher's stored top-k logprobs of each answer token (records generated with --teacher-logprobs K; the "
        "student must share the teacher's tokenizer; the mass below the cut is dropped, as in Cartridges).",
    )
    method: str = option("full", "'full' fine-tuning of every weight, or 'lora' adapters (peft).")
    lora_r: int = option(16, "lora: rank of the adapter matrices.")
    lora_alpha: int = option(32, "lora: scaling numerator (the update is scaled by alpha / r).")
    lora_dropout: float = option(0.05, "lora: dropout on the adapter input.")
    lora_target_modules: str | list = option("all-linear", "lora: module names to adapt, or 'all-linear'.")
    merge_lora: bool = option(
        True,
        "lora: merge the adapters into the base weights before saving, so the output is a plain model "
        "directory (false: save the adapter only).",
    )
    epochs: float = option(3.0, "Passes over the QA pairs (ignored when max_steps > 0).")
    max_steps: int = option(-1, "Stop after this many optimizer steps; -1: run `epochs` epochs.")
    learning_rate: float = option(5e-5, "Peak learning rate (AdamW).")
    lr_scheduler: str = option("linear", "Learning-rate schedule after warmup: linear, cosine, constant, ...")
    warmup_ratio: float = option(0.0, "Share of the steps spent warming the learning rate up from 0, in [0, 1).")
    weight_decay: float = option(0.0, "AdamW weight decay.")
    batch_size: int = option(8, "QA pairs per device batch.")
    grad_accumulation: int = option(1, "Batches per optimizer step (effective batch = batch_size x this).")
    max_length: int = option(256, "Tokens per example (chat template + question + answer); longer ones are cut.")
    seed: int = option(0, "Seed of weight init (LoRA), data order and dropout.")
    logging_steps: int = option(1, "Log the training loss every this many optimizer steps.")
    eval_fraction: float = option(0.0, "Share of the QA pairs held out to log an evaluation loss (0: none).")
    eval_steps: int = option(10, "With eval_fraction > 0: evaluate the held-out loss every this many steps.")
    threads: int | None = option(None, "torch CPU threads (null: torch's default, one per core).")
    device: str = option("auto", "'cpu', 'cuda', or 'auto' (a GPU when one is visible, else the CPU).")

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        checks = [
            (self.epochs > 0 or self.max_steps > 0, "epochs must be > 0 (or set max_steps)"),
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must lie in [0, 1)"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.grad_accumulation >= 1, "grad_accumulation must be >= 1"),
            (self.max_length >= 8, "max_length must be >= 8"),
            (self.logging_steps >= 1, "logging_steps must be >= 1"),
            (0 <= self.eval_fraction < 1, "eval_fraction must lie in [0, 1)"),
            (self.lora_r >= 1, "lora_r must be >= 1"),
            (self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
