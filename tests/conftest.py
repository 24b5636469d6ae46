"""Shared fixtures: real third-party documents vendored under tests/data (see its README), tiny models."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
SHARED = str(REPO.parent / "shared")


def _refuse_shared_data(event: str, args: tuple) -> None:
    # The suite must pass on a fresh clone, where ../shared does not exist: reading it is a bug, not a skip.
    if event == "open" and isinstance(args[0], (str, os.PathLike)):
        path = os.path.abspath(os.fspath(args[0]))
        if path.startswith(SHARED + os.sep):
            raise PermissionError(f"a test read {path}: tests use tests/data (vendored), never ../shared")


def pytest_configure(config):
    sys.addaudithook(_refuse_shared_data)
    # Keep test runs from writing the response cache into the user's real cache dir; the embedded model's
    # conversion cache stays shared so it is converted once per machine, not once per run.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def fixture_data() -> Path:
    """The vendored subset, laid out like the full data folder the benchmarks read (`--data DIR`)."""
    return DATA


@pytest.fixture(scope="session")
def xquad_paragraphs(fixture_data) -> list[tuple[str, str]]:
    """(id, context) of the vendored XQuAD paragraphs, in file order."""
    data = json.loads((fixture_data / "xquad_en_dev.json").read_text(encoding="utf-8"))
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
