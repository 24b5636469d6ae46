"""Finding and loading student models: a local directory, or (null) the embedded SmolLM2-135M-Instruct."""

from __future__ import annotations

from pathlib import Path

from robustqa.errors import ConfigError


def resolve_model_dir(path: str | Path | None) -> Path:
    """The model directory to load: `path` itself, or the embedded model's cached safetensors directory."""
    if path is None:
        from robustqa.lm.embedded import embedded_model_dir

        return Path(embedded_model_dir())
    path = Path(path)
    if not (path / "config.json").exists():
        raise ConfigError(f"{path}: not a model directory (no config.json); give a local HF model dir")
    return path


def load_tokenizer(model_dir: str | Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise ConfigError(f"{model_dir}: the tokenizer has no chat template; students learn chat turns")
    return tokenizer


def use_cuda(device: str = "auto") -> bool:
    """Whether `device` ('auto', 'cpu' or 'cuda') means the GPU here. Nothing requires one."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but torch sees no GPU")
    return device == "cuda" or (device == "auto" and torch.cuda.is_available())


def load_model(model_dir: str | Path, device: str = "auto"):
    """A float32 causal LM in eval mode, on the GPU when `device` says so (see `use_cuda`)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    if use_cuda(device):
        model = model.to("cuda")
    model.eval()
    return model
