"""Build a backend from configuration values: `make_lm("auto" | "hf" | "ct2" | "openai" | "fake", ...)`,
optionally cached. `auto` is CTranslate2 in float32 for the embedded model when ctranslate2 is installed (the same
greedy outputs as transformers, faster), else transformers.

Configs carry the settings of every backend (a `concurrency` means nothing to the local backend), so
keyword arguments that belong to another known backend are ignored, and any other unknown keyword is a
ConfigError. A value of None means "the backend's default".
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from robustqa.errors import ConfigError

from .base import LM

BACKENDS = ("hf", "ct2", "openai", "fake")
CHOICES = ("auto", *BACKENDS)


def _backend_class(backend: str) -> type[LM]:
    if backend == "hf":
        from .hf import HFLM

        return HFLM
    if backend == "ct2":
        from .ct2 import CT2LM

        return CT2LM
    if backend == "openai":
        from .openai_compat import OpenAILM

        return OpenAILM
    if backend == "fake":
        from .fake import FakeLM

        return FakeLM
    raise ConfigError(f"unknown LM backend {backend!r}; choose one of {', '.join(CHOICES)}")


def _keywords(cls: type[LM]) -> set[str]:
    return {n for n in inspect.signature(cls.__init__).parameters if n != "self"}


def make_lm(
    backend: str = "hf",
    model: str | Path | None = None,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    cache_path: str | Path | None = None,
    **kwargs: Any,
) -> LM:
    if backend == "auto":
        from .ct2 import AUTO_COMPUTE_TYPE, default_backend

        backend = default_backend(model)
        if backend == "ct2" and kwargs.get("compute_type") is None:
            kwargs["compute_type"] = AUTO_COMPUTE_TYPE
    cls = _backend_class(backend)
    own = _keywords(cls)
    others = set().union(*(_keywords(_backend_class(b)) for b in BACKENDS if b != backend))
    unknown = sorted(set(kwargs) - own - others)
    if unknown:
        raise ConfigError(f"{backend} backend: unknown option(s) {', '.join(unknown)}")
    args = {k: v for k, v in kwargs.items() if k in own and v is not None}
    if backend in ("hf", "ct2"):
        lm: LM = cls(model=model, **args)
    elif backend == "openai":
        lm = cls(base_url=base_url, model=None if model is None else str(model), api_key_env=api_key_env, **args)
    else:
        if model is not None:
            args.setdefault("model_id", str(model))
        lm = cls(**args)
    if cache_path is not None:
        from .cache import CachedLM

        lm = CachedLM(lm, cache_path)
    return lm
