"""Shared fixtures: real documents from ../shared/data, and a scripted fake LM."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ROBUSTQA_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_configure(config):
    # Keep test runs from writing the response cache into the user's real cache dir; the embedded model's
    # conversion cache stays shared so it is converted once per machine, not once per run.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def xquad_paragraphs(shared_data) -> list[tuple[str, str]]:
    """(id, context) of the XQuAD dev paragraphs, in file order."""
    data = json.loads((shared_data / "xquad_en_dev.json").read_text(encoding="utf-8"))
    out = []
    for article in data["data"]:
        for i, para in enumerate(article["paragraphs"]):
            out.append((f"{article['title']}/{i}", para["context"]))
    return out


@pytest.fixture
def real_docs(xquad_paragraphs):
    from robustqa.types import Document

    return [Document(doc_id, text) for doc_id, text in xquad_paragraphs[:3]]


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from a second thread, and on a busy machine torch's thread pool spins: one step
    took 25x longer with 2 threads than with 1 while other jobs ran."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, xquad_paragraphs):
    """A tiny randomly initialised causal LM with the embedded model's tokenizer, built locally (no download)."""
    from robustqa.training.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"), [text for _, text in xquad_paragraphs[:15]])
