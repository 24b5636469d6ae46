"""Give a strategy that counts tokens (a `tokenizer` parameter, like naive's chunk sizes) the model's own tokenizer.

Cartridges' chunker counts the tokens of the model's tokenizer. `robustqa generate` fills a registered strategy's
`tokenizer` parameter, when the config leaves it unset, with the answering model's local tokenizer: the model
directory for the hf backend, the served model's name for an OpenAI-compatible server when that tokenizer is in
the local Hugging Face cache. When there is none, the parameter stays unset (the strategy counts its own word
pieces) and the returned note says so.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from .lm.base import LM


def fill_model_tokenizer(cfg: Any, lm: LM) -> str | None:
    """Set `cfg.strategy_params["tokenizer"]` where it applies; returns a one-line note when it cannot."""
    if cfg.selector is not None or "tokenizer" in cfg.strategy_params:
        return None
    from .registry import REGISTRY

    REGISTRY.load_plugins()
    entry = REGISTRY.strategies.get(cfg.strategy)
    if entry is None or "tokenizer" not in _parameters(entry.factory):
        return None
    found = _local_tokenizer(lm)
    if found is None and lm.backend == "fake":  # the scripted test backend has no tokenizer to miss
        return None
    if found is None:
        return (
            f"note: no local tokenizer for {lm.model_id}: chunk sizes count robustqa's word pieces, not model "
            "tokens (set strategy_params.tokenizer to a tokenizer directory to count its tokens)"
        )
    cfg.strategy_params = {**cfg.strategy_params, "tokenizer": found}
    return None


def _parameters(factory: Any) -> set[str]:
    try:
        return set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return set()


def _local_tokenizer(lm: LM) -> str | None:
    model_dir = getattr(lm, "model_dir", None)  # the hf backend (also through the response cache)
    if model_dir is not None:
        return str(model_dir)
    if lm.backend != "openai":
        return None
    if Path(lm.model_id).expanduser().is_dir():  # a server started on a local model directory
        return str(Path(lm.model_id).expanduser())
    try:  # huggingface_hub only (no transformers import): is the served model's tokenizer in the local cache?
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(lm.model_id, "tokenizer_config.json")
    except Exception:  # noqa: BLE001 - a name that is not a hub id, no hub library: no local copy
        return None
    return lm.model_id if isinstance(found, str) else None
