"""The report's matplotlib figures (Agg backend), each returned as PNG bytes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display here, and the report embeds PNGs anyway

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .corpus import CorpusIndex  # noqa: E402

HEATMAP_BINS = 50
HEATMAP_ROWS = 40


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def coverage_curves(curves: dict[str, np.ndarray], saturation: dict[str, int | None]) -> bytes:
    """Coverage against the number of questions in generation order, one line per dataset."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, curve in curves.items():
        (line,) = ax.plot(np.arange(len(curve)), curve, label=name)
        point = saturation.get(name)
        if point is not None:
            ax.plot([point], [curve[point]], "o", color=line.get_color())
    ax.set_xlabel("questions (generation order)")
    ax.set_ylabel("share of content sentences covered")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(title="dots: saturation point", fontsize=8)
    return _png(fig)


def position_histogram(shares: dict[str, list[float]], content_share: list[float]) -> bytes:
    """Share of questions per relative position bin, per dataset, against the share of content sentences."""
    bins = len(content_share)
    edges = np.arange(bins) / bins
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 1.0 / bins / max(1, len(shares))
    for k, (name, share) in enumerate(shares.items()):
        ax.bar(edges + k * width, share, width=width, align="edge", label=name, alpha=0.85)
    ax.step(
        np.r_[edges, 1.0],
        np.r_[content_share, content_share[-1]],
        where="post",
        color="black",
        label="content sentences",
    )
    ax.set_xlabel("relative position in the document")
    ax.set_ylabel("share")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    return _png(fig)


def lorenz_curves(counts: dict[str, np.ndarray]) -> bytes:
    """Lorenz curves of questions per content sentence (the Gini coefficient is twice the area between the
    curve and the diagonal)."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, label="equal")
    for name, x in counts.items():
        x = np.sort(x)
        if x.sum() <= 0:
            continue
        ax.plot(np.r_[0, np.arange(1, len(x) + 1) / len(x)], np.r_[0, np.cumsum(x) / x.sum()], label=name)
    ax.set_xlabel("share of content sentences (fewest questions first)")
    ax.set_ylabel("share of questions")
    ax.legend(fontsize=8)
    return _png(fig)


def coverage_heatmap(corpus: CorpusIndex, weight: np.ndarray, docs: list[int]) -> bytes:
    """Questions per sentence along each document (rows: documents, columns: relative position), so skew along
    documents and between documents shows at a glance."""
    grid = np.full((len(docs), HEATMAP_BINS), np.nan)
    for r, d in enumerate(docs):
        lo, hi = corpus.sent_ptr[d], corpus.sent_ptr[d + 1]
        if hi == lo:
            continue
        length = max(1, corpus.doc_lengths[d])
        first = np.minimum(corpus.sent_start[lo:hi] * HEATMAP_BINS // length, HEATMAP_BINS - 1)
        last = np.minimum((corpus.sent_end[lo:hi] - 1) * HEATMAP_BINS // length, HEATMAP_BINS - 1)
        # Each sentence paints the bins it spans (the busiest sentence wins a shared bin), so short documents
        # fill their rows; boilerplate stays grey.
        for c0, c1, w, content in zip(first, last, weight[lo:hi], corpus.content[lo:hi], strict=True):
            if content:
                cells = grid[r, c0 : c1 + 1]
                grid[r, c0 : c1 + 1] = np.where(np.isnan(cells), w, np.maximum(cells, w))
    fig, ax = plt.subplots(figsize=(8, 0.25 * len(docs) + 1.5))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
    image = ax.imshow(
        np.ma.masked_invalid(grid),
        aspect="auto",
        cmap=cmap,
        interpolation="nearest",
        extent=(0, 1, len(docs), 0),
    )
    ax.set_yticks(np.arange(len(docs)) + 0.5)
    ax.set_yticklabels([_short(corpus.doc_ids[d]) for d in docs], fontsize=6)
    ax.set_xlabel("relative position in the document (grey: boilerplate or no sentence)")
    fig.colorbar(image, ax=ax, label="questions on the sentence")
    return _png(fig)


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
