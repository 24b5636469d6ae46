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
