"""The distill objective on a tiny model: the tiny model as teacher writes naive records with teacher logprobs
(--teacher-logprobs 20), then a student with the same tokenizer is distilled on them, closed book: the loss
falls, the student is saved, and records without teacher logprobs are refused with the record named."""

from __future__ import annotations

import json

import pytest
import torch
from robustqa.training.config import TrainConfig
from robustqa.training.distill import distill_loss, distill_rows
from robustqa.training.sft import train_student

from robustqa.errors import ConfigError, InputError
from robustqa.lm.hf import HFLM
from robustqa.registry import REGISTRY
from robustqa.runner import generate_records
from robustqa.teacher_logprobs import TeacherSettings
from robustqa.types import Document

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def teacher_records(tiny_model, xquad_paragraphs, tmp_path_factory):
    lm = HFLM(tiny_model, batch_size=8).load()
    strategy = REGISTRY.make_strategy(
        "naive", min_tokens=30, max_tokens=60, max_tokens_a=12, max_tokens_b=12, tokenizer=str(tiny_model)
    )
    out = tmp_path_factory.mktemp("distill") / "qa.jsonl"
    docs = [Document(i, text) for i, text in xquad_paragraphs[:2]]
    generate_records(docs, strategy, lm, 8, 0, out, progress=False, teacher=TeacherSettings(20, 0.99))
    return out


def test_distill_loss_falls_and_the_student_is_saved(tiny_model, teacher_records, tmp_path):
    config = TrainConfig(
        base=str(tiny_model), objective="distill", learning_rate=3e-3, batch_size=4, max_steps=12, logging_steps=1
    )
    result = train_student(teacher_records, config, tmp_path / "student", progress=False)
    assert result.steps == 12 and len(result.losses) == 12
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert sum(result.losses[-3:]) / 3 < 0.8 * sum(result.losses[:3]) / 3
    assert (tmp_path / "student" / "config.json").exists()
    written = json.loads((tmp_path / "student" / "train_result.json").read_text())
    assert written["steps"] == 12
    assert written["out_dir"] == "." and str(tmp_path) not in json.dumps(written)  # paths relative, as SFT's


def test_the_loss_is_cartridges_cross_entropy_on_the_kept_entries():
    logits = torch.randn(1, 4, 6)
    batch = {
        "rows": torch.tensor([0, 0, 0]),
        "positions": torch.tensor([2, 2, 3]),
        "token_ids": torch.tensor([1, 4, 5]),
        "teacher_logprobs": torch.log(torch.tensor([0.7, 0.2, 0.99])),
    }
    lp = torch.log_softmax(logits, dim=-1)[0]
    expected = -(0.7 * lp[1, 1] + 0.2 * lp[1, 4] + 0.99 * lp[2, 5]) / 3  # the 0.1 tail at position 2 is dropped
    assert torch.allclose(distill_loss(logits, batch), expected)


def test_records_without_teacher_logprobs_are_refused(tiny_model, tmp_path):
    from robustqa.training.models import load_tokenizer

    path = tmp_path / "plain.jsonl"
    path.write_text(json.dumps({"question": "q?", "answer": "a", "kept": True, "meta": {}}) + "\n")
    with pytest.raises(InputError, match=r"plain.jsonl:1: no teacher logprobs"):
        distill_rows(path, load_tokenizer(tiny_model))
    with pytest.raises(ConfigError, match="objective must be one of sft, distill"):
        TrainConfig(objective="kl")
