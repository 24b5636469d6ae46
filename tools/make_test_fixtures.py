"""Rebuild the vendored test fixtures from a full copy of the third-party data (see README.md here).

    python tools/make_test_fixtures.py /path/to/shared/data

The tests never read that copy; this script only documents, and repeats, how each small subset was cut.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "tests" / "data"
XQUAD_ARTICLES = 4  # 20 paragraphs, 123 questions: enough for a tiny tokenizer, hosts and held-out questions
COVIDQA_DOCS = ("28", "1", "21")  # indices of the three shortest papers (4-6k characters)
WEB_PAGES = (  # the six smallest pages (by gzip size)
    "ba07d1e64775f4090e39116c382111f5a2cfe9528dd179673f4e9bfcea370c15",
    "4648a420af9984d45b76a4afedf4f74965f8a2e0bf1c69bd3da2dc189020f3c9",
    "e372e42c0a3df7b86e1c0bacf7bc14d042144a01e88833bc5a643d61b3547090",
    "3cb22bfabed8de715c0813a7bb5052363c96bd71ccce3bb2dfb3ab9d1d7a9bbc",
    "06ee193de4bd611f7fafbab0c59b0f6fe3495093516720632cd093b24c7a0e98",
    "c4a3637c6696f238cf9fe1c7fbb17bbb6731a71d4f5fe399b9b4fc3294a96a6b",
)
# The smallest page of each of the 7 types with main content, and two pages without any.
WCXB_PAGES = ("5475", "4145", "5385", "5659", "5090", "4169", "4440", "4181", "4482")
COPIED = (
    "CC-BY-SA4.0.txt",
    "covidqa/LICENSE",
    "web/LICENSE",
    "wcxb/LICENSE",
    "injections/LICENSE-BIPIA",
    "injections/bipia_text_attack_train.json",
    "injections/bipia_code_attack_train.json",
    "injections/notinject/LICENSE",
    "injections/notinject/NotInject_one.json",
    "injections/spikee/LICENSE.txt",
    "injections/spikee/benign_lookalikes.jsonl",
    "injections/spikee/instructions.jsonl",
    "injections/spikee/jailbreaks.jsonl",
)


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def main(source: Path) -> None:
    for name in COPIED:
        (HERE / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, HERE / name)
    xquad = json.loads((source / "xquad_en_dev.json").read_text(encoding="utf-8"))
    _write_json(HERE / "xquad_en_dev.json", {**xquad, "data": xquad["data"][:XQUAD_ARTICLES]})
    covid = json.loads((source / "covidqa" / "covidqa_dev.json").read_text(encoding="utf-8"))
    _write_json(HERE / "covidqa" / "covidqa_dev.json", {**covid, "data": [covid["data"][int(i)] for i in COVIDQA_DOCS]})
    truth = json.loads((source / "web" / "ground-truth.json").read_text(encoding="utf-8"))
    _write_json(HERE / "web" / "ground-truth.json", {page: truth[page] for page in sorted(WEB_PAGES)})
    for page in WEB_PAGES:
        (HERE / "web" / "html").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / "web" / "html" / f"{page}.html.gz", HERE / "web" / "html" / f"{page}.html.gz")
    for page in WCXB_PAGES:
        for sub, ext in (("html", ".html.gz"), ("ground-truth", ".json")):
            (HERE / "wcxb" / sub).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / "wcxb" / sub / f"{page}{ext}", HERE / "wcxb" / sub / f"{page}{ext}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
