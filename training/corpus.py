"""The documents of an experiment: the included ones, with attacks planted, and their held-out questions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from robustqa.errors import ConfigError, InputError
from robustqa.types import Document

from .evaluate import HeldoutQuestion, load_heldout_questions
from .experiment import Experiment
from .leakage import PlantedAttack, load_attacks, plant_attacks


@dataclass
class Corpus:
    documents: list[Document]  # as the teacher sees them (attacks planted)
    clean: dict[str, str]  # doc id -> clean text
    planted: dict[str, PlantedAttack]
    questions: list[HeldoutQuestion]


def select_documents(documents: Sequence[Document], include: Sequence[str], limit: int | None) -> list[Document]:
    if include:
        wanted = [str(x) for x in include]

        def matches(doc: Document, entry: str) -> bool:
            return doc.id == entry or doc.id.startswith(entry.rstrip("/") + "/")

        # An entry that matches nothing is a typo or a YAML flow list split at a comma ("Jacksonville,_Florida"
        # unquoted is two entries): shrinking the experiment silently would change what it measures.
        unmatched = [w for w in wanted if not any(matches(d, w) for d in documents)]
        if unmatched:
            raise ConfigError(f"include: no document id equals or starts with {unmatched} (quote ids with commas)")
        documents = [d for d in documents if any(matches(d, w) for w in wanted)]
    documents = list(documents)[:limit] if limit else list(documents)
    return documents


def load_corpus(experiment: Experiment) -> Corpus:
    from robustqa.io.loaders import load_documents

    if not experiment.documents:
        raise ConfigError("experiment: `documents` is empty")
    if not experiment.eval_questions:
        raise ConfigError("experiment: `eval_questions` (SQuAD-format held-out questions) is required")
    docs = select_documents(
        load_documents([Path(experiment.path(p)) for p in experiment.documents]),
        experiment.include,
        experiment.max_documents,
    )
    if not docs:
        raise InputError(f"no documents left after include={experiment.include}")
    questions = load_heldout_questions(experiment.path(experiment.eval_questions), {d.id for d in docs})
    max_q = experiment.eval_config.max_questions
    questions = questions[:max_q] if max_q else questions
    if not questions:
        raise InputError(
            f"{experiment.eval_questions}: no held-out questions about the {len(docs)} documents "
            f"(ids like {docs[0].id!r}; SQuAD ids are '<title>/<paragraph index>')"
        )
    clean = {d.id: d.text for d in docs}
    spec = experiment.injection_spec
    planted: dict[str, PlantedAttack] = {}
    if spec.enabled:
        if not spec.data_dir:
            raise ConfigError("injections.data_dir is required when injections are enabled")
        attacks = load_attacks(experiment.path(spec.data_dir))
        docs, planted_list = plant_attacks(docs, attacks, spec.fraction, spec.seed)
        planted = {p.doc_id: p for p in planted_list}
    return Corpus(docs, clean, planted, questions)


def load_control_documents(experiment: Experiment, corpus: Corpus) -> list[Document]:
    from robustqa.io.loaders import load_documents

    spec = experiment.control_spec
    paths = spec.documents or experiment.documents
    if not spec.include and not spec.documents:
        raise ConfigError("control: give `include` (unrelated document ids) or `documents`")
    docs = select_documents(load_documents([Path(experiment.path(p)) for p in paths]), spec.include, None)
    overlap = {d.id for d in docs} & set(corpus.clean)
    if overlap:
        raise ConfigError(f"control documents overlap the experiment's documents: {sorted(overlap)[:5]}")
    if not docs:
        raise InputError(f"control: no documents left after include={spec.include}")
    return docs
