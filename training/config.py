"""The student-training configuration: one dataclass, every field with a default and help text, from YAML.

Fields map onto TRL's `SFTConfig` (see `robustqa.training.sft`); the CPU-friendly settings TRL does not
default to (no bf16, no activation checkpointing, `use_cpu`) are fixed there, not exposed here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from robustqa.config import from_dict
from robustqa.errors import ConfigError

METHODS = ("full", "lora")
OBJECTIVES = ("sft", "distill")
DEVICES = ("auto", "cpu", "cuda")


def _f(default: Any, help: str) -> Any:
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Configuration of `robustqa train` (and of every student in `robustqa compare`).

    Objective: objective (sft or distill).
    Model: base, method, lora_r, lora_alpha, lora_dropout, lora_target_modules, merge_lora.
    Schedule: epochs, max_steps, learning_rate, lr_scheduler, warmup_ratio, weight_decay, batch_size,
    grad_accumulation, max_length, seed.
    Logging and evaluation: logging_steps, eval_fraction, eval_steps.
    Machine: threads, device.
    """

    base: str | None = _f(
        None,
        "Local Hugging Face model directory of the student before training "
        "(null: the embedded SmolLM2-135M-Instruct, converted once to a cached directory).",
    )
    objective: str = _f(
        "sft",
        "'sft': cross-entropy on the answer tokens (TRL); 'distill': Cartridges' context distillation, towards the "
        "teacher's stored top-k logprobs of each answer token (records generated with --teacher-logprobs K; the "
        "student must share the teacher's tokenizer; the mass below the cut is dropped, as in Cartridges).",
    )
    method: str = _f("full", "'full' fine-tuning of every weight, or 'lora' adapters (peft).")
    lora_r: int = _f(16, "lora: rank of the adapter matrices.")
    lora_alpha: int = _f(32, "lora: scaling numerator (the update is scaled by alpha / r).")
    lora_dropout: float = _f(0.05, "lora: dropout on the adapter input.")
    lora_target_modules: str | list = _f("all-linear", "lora: module names to adapt, or 'all-linear'.")
    merge_lora: bool = _f(
        True,
        "lora: merge the adapters into the base weights before saving, so the output is a plain model "
        "directory (false: save the adapter only).",
    )
    epochs: float = _f(3.0, "Passes over the QA pairs (ignored when max_steps > 0).")
    max_steps: int = _f(-1, "Stop after this many optimizer steps; -1: run `epochs` epochs.")
    learning_rate: float = _f(5e-5, "Peak learning rate (AdamW).")
    lr_scheduler: str = _f("linear", "Learning-rate schedule after warmup: linear, cosine, constant, ...")
    warmup_ratio: float = _f(0.0, "Share of the steps spent warming the learning rate up from 0, in [0, 1).")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    batch_size: int = _f(8, "QA pairs per device batch.")
    grad_accumulation: int = _f(1, "Batches per optimizer step (effective batch = batch_size x this).")
    max_length: int = _f(256, "Tokens per example (chat template + question + answer); longer ones are cut.")
    seed: int = _f(0, "Seed of weight init (LoRA), data order and dropout.")
    logging_steps: int = _f(1, "Log the training loss every this many optimizer steps.")
    eval_fraction: float = _f(0.0, "Share of the QA pairs held out to log an evaluation loss (0: none).")
    eval_steps: int = _f(10, "With eval_fraction > 0: evaluate the held-out loss every this many steps.")
    threads: int | None = _f(None, "torch CPU threads (null: torch's default, one per core).")
    device: str = _f("auto", "'cpu', 'cuda', or 'auto' (a GPU when one is visible, else the CPU).")

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "train config") -> TrainConfig:
        return from_dict(cls, data, source)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the config must be a mapping of field: value")
        return cls.from_dict(data, source=str(path))
