"""Train the Punkt sentence-splitter parameters that ship as robustqa/data/punkt_params.json.

nltk's pretrained Punkt model (`punkt_tab`) must be downloaded, which robustqa never does; an untrained
PunktSentenceTokenizer splits after "Dr.", "Jan.", "U.S.". So the parameters are learnt here, offline, with
nltk's own unsupervised PunktTrainer on real English text (Wikipedia paragraphs, scientific papers, news
articles), and common English abbreviations are added to what it learns. The output is deterministic for the
same inputs and nltk version (sorted keys and lists), so re-running this script reproduces the shipped file:

    python tools/train_punkt.py                       # default inputs under ../shared/data
    python tools/train_punkt.py --check               # exit 1 if the shipped file differs from a fresh run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import nltk
from nltk.tokenize.punkt import PunktTrainer

from robustqa.paths import portable_path

REPO = Path(__file__).resolve().parent.parent
# The third-party data, which this project's machines keep beside the repository (../shared/data).
DATA = REPO.parent / "shared" / "data"
OUT = REPO / "robustqa" / "data" / "punkt_params.json"

# Lower-cased, without the final period, as Punkt stores abbreviation types ("e.g." -> "e.g").
# Left out on purpose: weekday names and "May" (ordinary words too often: "sun", "sat", "wed", "may").
EXTRA_ABBREVIATIONS = sorted(
    # titles and names
    "dr mr mrs ms prof st jr sr mt rev hon gen gov sen rep lt col capt sgt cpl adm maj messrs mme mlle "
    # months
    "jan feb mar apr jun jul aug sep sept oct nov dec "
    # Latin and scholarly
    "e.g i.e etc vs cf ca al approx viz ibid resp fig figs eq eqs ref refs vol vols no nos pp ch sec ed eds "
    "dept univ ph.d m.d b.a m.a b.sc m.sc "
    # organisations and places
    "inc ltd co corp bros u.s u.k u.n e.u u.s.a ave blvd rd "
    # times and quantities
    "a.m p.m min max est avg dia wt".split()
)


def training_texts(data: Path) -> list[tuple[Path, list[str]]]:
    """(source file, texts) in a fixed order: XQuAD contexts, COVID-QA papers, web article bodies."""
    sources = []
    for path in (data / "xquad_en_dev.json", data / "covidqa" / "covidqa_dev.json"):
        squad = json.loads(path.read_text(encoding="utf-8"))
        sources.append((path, [p["context"] for a in squad["data"] for p in a["paragraphs"]]))
    path = data / "web" / "ground-truth.json"
    truth = json.loads(path.read_text(encoding="utf-8"))
    sources.append((path, [truth[key]["articleBody"] for key in sorted(truth)]))
    return sources


def train(data: Path) -> dict:
    sources = training_texts(data)
    trainer = PunktTrainer()
    for _, texts in sources:
        # Paragraph breaks between texts, so no sentence is learnt across two documents.
        trainer.train("\n\n".join(texts), finalize=False)
    trainer.finalize_training()
    params = trainer.get_params()
    # Single letters are left to Punkt's own initials heuristic ("J. Smith" vs "vitamin E. The"): listed as
    # abbreviations they could never end a sentence.
    learnt = {a for a in params.abbrev_types if len(a) > 1}
    params.abbrev_types = learnt | set(EXTRA_ABBREVIATIONS)
    return {
        "format": "robustqa-punkt-params/1",
        "nltk_version": nltk.__version__,
        "sources": [
            {
                # Relative to the repository (../shared/data/...), so the shipped file names no machine.
                "path": portable_path(path, REPO),
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "texts": len(texts),
                "chars": sum(len(t) for t in texts),
            }
            for path, texts in sources
        ],
        "learnt_abbreviations": sorted(learnt),
        "extra_abbreviations": EXTRA_ABBREVIATIONS,
        "abbrev_types": sorted(params.abbrev_types),
        "collocations": sorted([a, b] for a, b in params.collocations),
        "sent_starters": sorted(params.sent_starters),
        "ortho_context": {k: v for k, v in sorted(params.ortho_context.items()) if v},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding the shared data sets")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the parameters")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = parser.parse_args(argv)
    text = json.dumps(train(args.data), ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n"
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print(f"{args.out}: {'up to date' if same else 'DIFFERS from a fresh training run'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode()) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
