"""Context distillation (`objective: distill`): train the student, closed book, towards the teacher's stored top-k
log-probabilities of each answer token (`--teacher-logprobs K` at generation), as Cartridges trains with
`targets="logits"`.

Each kept record becomes: the chat template of the user turn (the question, no document) with the generation
prompt, then the teacher's own answer token ids (end of turn included), and one target per stored top-k entry.
The loss is Cartridges' training loss: at the position before each answer token, the student's log-probability
of each stored entry weighted by the teacher's probability, negated and averaged over all entries of the batch,
that is the cross-entropy to the teacher's kept top-k distribution (its KL up to the teacher's entropy, which
does not depend on the student). The tail mass below the cut (`min_prob_mass`) is dropped, neither renormalised
nor given its own bucket, as in Cartridges. The student must share the teacher's tokenizer (the ids are the
teacher's); a record without teacher logprobs, or a student whose vocabulary cannot hold the ids, is an error
naming it.

A plain AdamW loop (linear or constant schedule after warmup, gradient accumulation, LoRA through peft), so
the objective does not depend on TRL internals; `TrainConfig`'s schedule fields mean what they mean for SFT.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from robustqa.errors import ConfigError, InputError

from .config import TrainConfig
from .models import load_tokenizer, resolve_model_dir, use_cuda


def distill_rows(records: str | Path | Iterable[Mapping[str, Any]], tokenizer) -> list[dict[str, Any]]:
    """Per kept record: input ids, and (position, token id, teacher logprob) of every stored entry."""
    from robustqa.io.jsonl import iter_jsonl
    from robustqa.teacher_logprobs import decode

    if isinstance(records, (str, Path)):
        numbered = ((f"{records}:{lineno}", rec) for lineno, rec in iter_jsonl(records))
    else:
        numbered = ((f"record {i}", rec) for i, rec in enumerate(records))
    rows = []
    for where, rec in numbered:
        if not rec.get("kept", True):
            continue
        teacher = (rec.get("meta") or {}).get("teacher")
        if teacher is None:
            raise InputError(f"{where}: no teacher logprobs (meta.teacher); generate with --teacher-logprobs K")
        flat = decode(teacher)
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": rec["question"]}], tokenize=False, add_generation_prompt=True
        )
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        start = len(prompt_ids)
        rows.append(
            {
                "input_ids": list(prompt_ids) + flat.token_ids.tolist(),
                "positions": (flat.token_idx + start).tolist(),
                "token_ids": flat.token_id.tolist(),
                "logprobs": flat.logprobs.tolist(),
            }
        )
    if not rows:
        raise InputError(f"{records if isinstance(records, (str, Path)) else 'records'}: no kept records to distill")
    return rows


def distill_loss(logits, batch: Mapping[str, Any]):
    """Cartridges' logits loss on a padded batch: logits [B, L, V]; batch rows/positions/ids/logprobs flat."""
    import torch

    logprobs = torch.log_softmax(logits.float(), dim=-1)
    picked = logprobs[batch["rows"], batch["positions"] - 1, batch["token_ids"]]
    return (-batch["teacher_logprobs"].exp() * picked).mean()


def _collate(rows: list[dict[str, Any]], pad_id: int, max_length: int):
    import torch

    width = min(max(len(r["input_ids"]) for r in rows), max_length)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    flat: dict[str, list] = {"rows": [], "positions": [], "token_ids": [], "teacher_logprobs": []}
    for b, row in enumerate(rows):
        seq = row["input_ids"][:width]  # right padding: positions stay as computed; cut entries past the end
        ids[b, : len(seq)] = torch.tensor(seq)
        mask[b, : len(seq)] = 1
        for pos, tid, lp in zip(row["positions"], row["token_ids"], row["logprobs"], strict=True):
            if pos < width:
                flat["rows"].append(b)
                flat["positions"].append(pos)
                flat["token_ids"].append(tid)
                flat["teacher_logprobs"].append(lp)
    kinds = {k: torch.float32 if k == "teacher_logprobs" else torch.long for k in flat}
    batch = {k: torch.tensor(v, dtype=kinds[k]) for k, v in flat.items()}
    return ids, mask, batch


def train_distill(
    records: str | Path | Iterable[Mapping[str, Any]],
    config: TrainConfig,
    out_dir: str | Path,
    progress: bool = True,
):
    """Distill `config.base` on the records' teacher logprobs; saves like `train_student` and returns its result."""
    import torch
    from transformers import AutoModelForCausalLM, get_scheduler

    from .sft import CONFIG_FILE, LOG_FILE, RESULT_FILE, TrainResult, _remove_if_empty

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = resolve_model_dir(config.base)
    if config.threads:
        torch.set_num_threads(config.threads)
    tokenizer = load_tokenizer(base)
    rows = distill_rows(records, tokenizer)
    device = torch.device("cuda" if use_cuda(config.device) else "cpu")
    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    vocab = model.get_input_embeddings().num_embeddings
    top = max(max(r["input_ids"]) for r in rows)
    if top >= vocab:
        raise ConfigError(
            f"distill: the teacher's token id {top} is outside the student's vocabulary ({vocab}); the student "
            "must share the teacher's tokenizer"
        )
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=config.lora_target_modules,
                task_type="CAUSAL_LM",
            ),
        )
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    batches_per_epoch = math.ceil(len(rows) / config.batch_size)
    steps_per_epoch = max(1, batches_per_epoch // config.grad_accumulation)
    total = config.max_steps if config.max_steps > 0 else max(1, math.ceil(config.epochs * steps_per_epoch))
    scheduler = get_scheduler(
        config.lr_scheduler, optimizer, num_warmup_steps=int(config.warmup_ratio * total), num_training_steps=total
    )
    pad = tokenizer.pad_token_id
    order_rng = random.Random(config.seed)
    log: list[dict[str, Any]] = []
    losses: list[float] = []
    step, running, micro = 0, 0.0, 0
    t0 = time.perf_counter()
    while step < total:
        order = list(range(len(rows)))
        order_rng.shuffle(order)
        for start in range(0, len(order), config.batch_size):
            chosen = [rows[i] for i in order[start : start + config.batch_size]]
            ids, mask, batch = _collate(chosen, pad, config.max_length)
            if not len(batch["rows"]):
                continue
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            loss = distill_loss(logits, {k: v.to(device) for k, v in batch.items()}) / config.grad_accumulation
            loss.backward()
            running += float(loss.detach())
            micro += 1
            if micro % config.grad_accumulation:
                continue
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            if step % config.logging_steps == 0:
                losses.append(running)
                log.append({"step": step, "loss": running, "learning_rate": scheduler.get_last_lr()[0]})
                if progress:
                    print(f"step {step}/{total} distill loss {running:.4f}", flush=True)
            running = 0.0
            if step >= total:
                break
    seconds = time.perf_counter() - t0
    trained = model.merge_and_unload() if config.method == "lora" and config.merge_lora else model
    trained.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    _remove_if_empty(out_dir / "checkpoints")
    config.to_yaml(out_dir / CONFIG_FILE)
    (out_dir / LOG_FILE).write_text(json.dumps(log, indent=1), encoding="utf-8")
    result = TrainResult(
        out_dir=str(out_dir),
        base=str(base),
        num_examples=len(rows),
        steps=step,
        seconds=seconds,
        trainable_parameters=sum(p.numel() for p in params),
        losses=losses,
        log=log,
    )
    (out_dir / RESULT_FILE).write_text(json.dumps(result.portable(out_dir), indent=1), encoding="utf-8")
    return result
