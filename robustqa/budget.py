"""How a run's budget is split over documents, and which items fall in a shard: pure functions of the weights
and item ids, the same in every process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .types import stable_hash

if TYPE_CHECKING:
    import numpy as np

# Past this a run would never finish (and numpy's int64 arithmetic on the budget would overflow).
MAX_BUDGET = 10_000_000


def allocate_budget(weights: Sequence[float], budget: int) -> list[int]:
    """Largest-remainder split of `budget` proportional to `weights` (ties go to the earlier document)."""
    import numpy as np

    return _allocate(np.asarray(weights, dtype=np.float64).reshape(-1), budget).tolist()


def _allocate(weights: np.ndarray, budget: int) -> np.ndarray:
    """`allocate_budget` on an array (8 bytes per document, a few more while it runs), bit for bit the same
    split: the same float operations in the same order."""
    import numpy as np

    # Summed left to right like Python's sum (not numpy's pairwise sum), without a list of Python floats.
    total = float(sum(w for w in memoryview(np.ascontiguousarray(weights, dtype=np.float64)) if w > 0))
    if budget <= 0 or total <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    exact = np.maximum(weights, 0.0)
    exact *= budget
    exact /= total
    whole = np.floor(exact)
    exact -= whole  # the remainders
    np.negative(exact, out=exact)
    # A stable sort on the negated remainders: the largest first, ties to the earlier document.
    order = np.argsort(exact, kind="stable")
    del exact
    counts = whole.astype(np.int64)
    del whole
    counts[order[: budget - int(counts.sum())]] += 1
    return counts


def in_shard(item_id: str, shard: tuple[int, int]) -> bool:
    index, count = shard
    return count == 1 or int(stable_hash("shard", item_id, length=8), 16) % count == index
