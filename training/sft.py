"""Train a student on QA records with TRL's SFTTrainer, closed book, with the loss on the answer only.

Each kept record becomes one conversational prompt/completion row: the prompt is the user turn (the question,
no document) and the completion the assistant turn (the answer). TRL computes the loss on completion tokens
only for such rows, which works with SmolLM2's chat template (it has no `{% generation %}` markers, so TRL's
`assistant_only_loss` cannot be used).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustqa.errors import ConfigError, InputError
from robustqa.paths import portable_path

from .config import TrainConfig
from .models import load_tokenizer, resolve_model_dir, use_cuda

LOG_FILE = "training_log.json"
CONFIG_FILE = "train_config.yaml"
RESULT_FILE = "train_result.json"


@dataclass
class TrainResult:
    """What a training run did. `log` is TRL's log history: one dict per logging step (loss, lr, ...)."""

    out_dir: str
    base: str
    num_examples: int
    steps: int
    seconds: float
    trainable_parameters: int
    losses: list[float] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def first_loss(self) -> float | None:
        return self.losses[0] if self.losses else None

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir,
            "base": self.base,
            "num_examples": self.num_examples,
            "steps": self.steps,
            "seconds": round(self.seconds, 2),
            "trainable_parameters": self.trainable_parameters,
            "first_loss": self.first_loss,
            "final_loss": self.final_loss,
            "losses": self.losses,
        }

    def portable(self, folder: str | Path) -> dict[str, Any]:
        """`to_dict` with its paths relative to `folder` (the file it goes in lives there), so a committed
        result names no directory of the machine that trained."""
        return {
            **self.to_dict(),
            "out_dir": portable_path(self.out_dir, folder),
            "base": portable_path(self.base, folder),
        }


def record_to_row(record: Mapping[str, Any], where: str) -> dict[str, list[dict[str, str]]]:
    """One record -> {"prompt": [user turn], "completion": [assistant turn]}; InputError names the record."""
    messages = record.get("messages")
    if messages is None and "question" in record and "answer" in record:
        messages = [
            {"role": "user", "content": record["question"]},
            {"role": "assistant", "content": record["answer"]},
        ]
    if not isinstance(messages, list) or len(messages) < 2:
        raise InputError(f"{where}: a record needs `messages` (user, assistant) or `question` and `answer`")
    for m in messages:
        if not isinstance(m, Mapping) or not isinstance(m.get("content"), str) or "role" not in m:
            raise InputError(f"{where}: every message needs a `role` and a string `content`")
    if messages[-1]["role"] != "assistant":
        raise InputError(f"{where}: the last message must be the assistant's, got {messages[-1]['role']!r}")
    # An empty turn is trained as it is: naive keeps empty model output, as Cartridges does, and trains on it.
    prompt = [{"role": m["role"], "content": m["content"]} for m in messages[:-1]]
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": messages[-1]["content"]}]}


def load_rows(records: str | Path | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Prompt/completion rows of the kept records of a JSONL path or an iterable of record dicts."""
    from robustqa.io.jsonl import iter_jsonl

    if isinstance(records, (str, Path)):
        numbered = ((f"{records}:{lineno}", rec) for lineno, rec in iter_jsonl(records))
    else:
        numbered = ((f"record {i}", rec) for i, rec in enumerate(records))
    rows = [record_to_row(rec, where) for where, rec in numbered if rec.get("kept", True)]
    if not rows:
        source = records if isinstance(records, (str, Path)) else "records"
        raise InputError(f"{source}: no kept QA records to train on")
    return rows


def build_sft_config(config: TrainConfig, out_dir: Path, has_eval: bool, progress: bool):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(out_dir / "checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=config.weight_decay,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accumulation,
        max_length=config.max_length,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=config.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps if has_eval else None,
        completion_only_loss=True,
        # TRL's GPU-oriented defaults do not fit a CPU: no bf16, no activation checkpointing (facts.md); fp32
        # on a GPU too, so CPU and GPU runs train the same numbers.
        bf16=False,
        fp16=False,
        activation_checkpointing=False,
        use_cpu=not use_cuda(config.device),
        report_to="none",
        save_strategy="no",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
    )


def make_trainer(
    records: str | Path | Iterable[Mapping[str, Any]],
    config: TrainConfig,
    out_dir: Path,
    progress: bool = True,
):
    """An SFTTrainer ready to train `config.base` on the records (its datasets are already tokenized)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, PrinterCallback
    from trl import SFTTrainer

    base = resolve_model_dir(config.base)
    if config.threads:
        torch.set_num_threads(config.threads)

    # 1. Rows: closed-book prompt/completion pairs, with an optional held-out share for an evaluation loss.
    dataset = Dataset.from_list(load_rows(records))
    eval_dataset = None
    if config.eval_fraction > 0 and len(dataset) >= 4:
        split = dataset.train_test_split(test_size=config.eval_fraction, seed=config.seed)
        dataset, eval_dataset = split["train"], split["test"]

    # 2. Model and tokenizer from the base directory, in float32 (CPU).
    tokenizer = load_tokenizer(base)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    peft_config = None
    if config.method == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.lora_target_modules,
            task_type="CAUSAL_LM",
        )
    trainer = SFTTrainer(
        model=model,
        args=build_sft_config(config, out_dir, eval_dataset is not None, progress),
        train_dataset=dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    if len(trainer.train_dataset) == 0:  # TRL drops examples whose answer truncation cut off entirely
        raise ConfigError(
            f"max_length {config.max_length} cuts off the answer of every one of the {len(dataset)} training "
            "examples (prompts are longer); raise max_length"
        )
    if not progress:
        trainer.remove_callback(PrinterCallback)  # it prints every log dict when tqdm is off
    return trainer


def train_student(
    records: str | Path | Iterable[Mapping[str, Any]],
    config: TrainConfig | None = None,
    out_dir: str | Path = "student",
    progress: bool = True,
) -> TrainResult:
    """Fine-tune `config.base` on the kept QA records; save model, tokenizer, config and log to `out_dir`."""
    config = config or TrainConfig()
    if config.objective == "distill":
        from .distill import train_distill

        return train_distill(records, config, out_dir, progress)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer = make_trainer(records, config, out_dir, progress)
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)

    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0

    # Save a plain model directory (LoRA merged unless asked otherwise), the config and the log.
    trained = trainer.model
    if config.method == "lora" and config.merge_lora:
        trained = trained.merge_and_unload()
    trained.save_pretrained(str(out_dir))
    trainer.processing_class.save_pretrained(str(out_dir))
    _remove_if_empty(out_dir / "checkpoints")
    config.to_yaml(out_dir / CONFIG_FILE)
    log = [dict(entry) for entry in trainer.state.log_history]
    (out_dir / LOG_FILE).write_text(json.dumps(log, indent=1), encoding="utf-8")
    result = TrainResult(
        out_dir=str(out_dir),
        base=str(resolve_model_dir(config.base)),
        num_examples=len(trainer.train_dataset),
        steps=trainer.state.global_step,
        seconds=seconds,
        trainable_parameters=trainable,
        losses=[float(e["loss"]) for e in log if "loss" in e],
        log=log,
    )
    (out_dir / RESULT_FILE).write_text(json.dumps(result.portable(out_dir), indent=1), encoding="utf-8")
    return result


def _remove_if_empty(path: Path) -> None:
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
