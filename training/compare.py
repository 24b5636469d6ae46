"""`robustqa compare`: generate QA per strategy, train one student per strategy and seed, evaluate, compare.

1. Documents: load, keep the included ones, plant attack texts into a share of them (the teacher sees those).
2. Generation: for every teacher x strategy x seed, generate until `budget` pairs are kept; count LM tokens.
   A control set of QA about unrelated documents is generated the same way.
3. Equal budget: every student trains on the same number K of kept pairs (the smallest count any run reached,
   normally the budget itself).
4. Baselines: the untrained base closed book (floor) and each teacher open book on the planted documents
   (ceiling).
5. Students: train from the same base with the same hyperparameters; evaluate closed book on the held-out
   human questions; leakage on the questions about planted documents. With `objectives: [sft, distill]`, each
   strategy's kept records train one student per objective (generation then stores teacher logprobs).
6. Differences of every strategy against the first one (and against the control), and of every further
   objective against the first on the same records, with paired bootstrap intervals over seeds and questions;
   results.json and report.md with plots.
Finished steps are recorded next to their outputs, so a rerun with the same experiment skips them.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from robustqa.errors import ConfigError, InputError
from robustqa.lm.base import LM
from robustqa.paths import portable_path
from robustqa.teacher_logprobs import require_teacher
from robustqa.types import Document, stable_hash

from .config import TrainConfig
from .corpus import Corpus, load_control_documents, load_corpus
from .evaluate import (
    ProbeQuestion,
    answers_in_training,
    evaluate_closed_book,
    teacher_open_book,
    training_exposure,
    training_probe,
)
from .experiment import Experiment, ModelSpec
from .generation import GenerationResult, generate_kept, select_kept, write_jsonl
from .models import resolve_model_dir
from .results import assemble_results
from .sft import train_student

LMFactory = Callable[[ModelSpec], LM]


def default_lm_factory(experiment: Experiment) -> LMFactory:
    def make(spec: ModelSpec) -> LM:
        from robustqa.lm.factory import make_lm
        from robustqa.paths import response_cache_path

        model = teacher_model_dir(experiment, spec) if spec.backend == "hf" else spec.model
        complying = spec.complying is not None  # name it by its fingerprint, not by a path of this machine
        return make_lm(
            spec.backend,
            model=model,
            base_url=spec.base_url,
            api_key_env=spec.api_key_env,
            cache_path=response_cache_path(experiment.cache),
            concurrency=spec.concurrency,
            model_id=f"complying-teacher:{Path(model).parent.name}" if complying else None,
        )

    return make


def teacher_model_dir(experiment: Experiment, spec: ModelSpec) -> str | None:
    """The local model directory of an hf teacher (None: the embedded model). A complying teacher is trained
    (or found in the cache) and merged here, on first use, so a resumed run whose steps are done never trains it."""
    complying = experiment.complying_teacher(spec)
    if complying is None:
        return experiment.path(spec.model) if spec.model else None
    from .complying import complying_teacher_dir

    recipe, data = complying
    squad = experiment.path(data.squad or experiment.eval_questions)
    injections = experiment.path(experiment.injection_spec.data_dir)
    return str(complying_teacher_dir(recipe, squad, injections, data.pairs, data.eval_share, progress=True))


def _fingerprint(*parts: Any) -> str:
    return stable_hash(json.dumps(parts, sort_keys=True, default=str))


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str), encoding="utf-8")


def _cached_step(
    marker: Path, fingerprint: str, timing: dict[str, float], compute: Callable[[dict[str, float]], Any]
) -> Any:
    """Run `compute(seconds)` unless `marker` holds its result for the same fingerprint.

    `compute` adds the seconds it spent to its argument (by timing key); they are saved with the result, so a
    resumed experiment still reports what every step cost.
    """
    if marker.exists():
        done = json.loads(marker.read_text(encoding="utf-8"))
        if done.get("fingerprint") == fingerprint:
            for key, value in done.get("seconds", {}).items():
                timing[key] = timing.get(key, 0.0) + value
            return done["result"]
    seconds: dict[str, float] = {}
    result = compute(seconds)
    _save(marker, {"fingerprint": fingerprint, "result": result, "seconds": seconds})
    for key, value in seconds.items():
        timing[key] = timing.get(key, 0.0) + value
    return result


class _Timer:
    def __init__(self, seconds: dict[str, float], key: str) -> None:
        self.seconds, self.key = seconds, key

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: Any) -> None:
        self.seconds[self.key] = self.seconds.get(self.key, 0.0) + time.perf_counter() - self.t0


def run_experiment(
    experiment: Experiment,
    out_dir: str | Path,
    lm_factory: LMFactory | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the whole comparison (see the module docstring); returns what it writes to results.json."""
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lm_factory = lm_factory or default_lm_factory(experiment)
    timing = {"generation_s": 0.0, "baselines_s": 0.0, "training_s": 0.0, "evaluation_s": 0.0}

    # 1. Documents and held-out questions; every strategy and model is checked before any work starts.
    from robustqa.registry import get_strategy

    for strat in experiment.strategy_specs:
        get_strategy(strat.name, **strat.params)
    base_dir = resolve_model_dir(experiment.path(experiment.student_base) if experiment.student_base else None)
    corpus = load_corpus(experiment)
    control_docs = load_control_documents(experiment, corpus) if experiment.control_spec.enabled else []
    _save(out / "planted.json", {"planted": [p.to_dict() for p in corpus.planted.values()]})
    log(
        f"{len(corpus.documents)} documents ({len(corpus.planted)} with a planted attack), "
        f"{len(corpus.questions)} held-out questions, {len(control_docs)} control documents"
    )

    # A distill student needs teacher logprobs: every teacher must score, checked before any work (no weights load).
    teachers = {spec.name: _LazyLM(lm_factory, spec) for spec in experiment.model_specs}
    if "distill" in experiment.student_objectives:
        for name, teacher in teachers.items():
            try:
                require_teacher(teacher.get(), experiment.teacher_settings)
            except ConfigError as err:
                raise ConfigError(f"teacher {name!r} (a student distills): {err}") from None

    # 2. Generation and the teachers' open-book ceilings, one teacher loaded at a time.
    generations: list[GenerationResult] = []  # the runs
    training_sets: list[GenerationResult] = []  # one per student
    ceilings: dict[str, dict[str, Any]] = {}
    for spec in experiment.model_specs:
        teacher = teachers[spec.name]
        runs, per_student = _generate_all(experiment, spec, teacher, corpus, control_docs, out, timing, progress, log)
        generations += runs
        training_sets += per_student
        if experiment.baselines:
            ceilings[spec.name] = _cached_step(
                out / "eval" / f"teacher-{spec.name}.json",
                _fingerprint(spec, experiment.eval, [q.id for q in corpus.questions], _planted_ids(corpus)),
                timing,
                lambda seconds, spec=spec, teacher=teacher: _teacher_step(
                    seconds, teacher, spec, experiment, corpus, log
                ),
            )
        teacher.close()

    # 3. Equal budget of kept pairs for every student.
    k = min(g.kept for g in generations)
    if k == 0:
        raise InputError(f"a generation run kept no QA pair; see the rejected files under {out / 'data'}")
    if k < experiment.budget:
        log(
            f"warning: a run kept only {k} of {experiment.budget} pairs at the oversampling cap; "
            f"every student trains on {k}"
        )

    # 4. Floor: the untrained base, closed book.
    floor = None
    if experiment.baselines:

        def base_step(seconds: dict[str, float]) -> dict[str, Any]:
            log("base model, closed book")
            with _Timer(seconds, "baselines_s"):
                return evaluate_closed_book(base_dir, "base", corpus, experiment.eval_config)

        floor = _cached_step(
            out / "eval" / "base.json",
            _fingerprint(str(base_dir), experiment.eval, [q.id for q in corpus.questions], _planted_ids(corpus)),
            timing,
            base_step,
        )

    # 5. Students: the same base and hyperparameters, K pairs each; one student per objective on the same records.
    plans: list[tuple[GenerationResult, list[dict[str, Any]], str, str]] = []
    written: list[tuple[list[dict[str, Any]], Path]] = []
    for gen in training_sets:
        folder = out / "data" / gen.model / gen.strategy
        records = select_kept(gen.files, k, folder)
        path = next((path for earlier, path in written if earlier == records), None)
        if path is None:  # students sharing one QA set share its file too: no byte-identical copies
            path = folder / f"seed{gen.seed}.train.jsonl"
            write_jsonl(path, records)
            written.append((records, path))
        for objective in experiment.objectives_of(gen.strategy):
            plans.append((gen, records, objective, portable_path(path, out)))
    # A distill student needs the teacher's logprobs on every record: checked before any student trains.
    for _, records, objective, train_file in plans:
        if objective == "distill":
            _require_teacher_logprobs(records, train_file)
    # The probe of each teacher: what its strategies' training QA asked about planted documents.
    probes: dict[str, list[ProbeQuestion]] = {}
    if experiment.eval_config.training_probe and corpus.planted:
        for spec in experiment.model_specs:
            sets: dict[str, list[dict[str, Any]]] = {}
            for gen, records, _, _ in plans:
                if gen.model == spec.name and not gen.strategy.endswith("-control"):
                    sets.setdefault(gen.strategy, []).extend(records)  # every seed's; repeats are dropped
            probes[spec.name] = training_probe(sets, corpus)
    students = []
    for gen, records, objective, train_file in plans:
        config = experiment.train_config(gen.seed, objective)
        group = experiment.student_key(gen.strategy, objective)
        key = f"{gen.model}__{group}__seed{gen.seed}"
        probe = probes.get(gen.model, [])
        entry = _cached_step(
            out / "eval" / f"{key}.json",
            _fingerprint(
                config.to_dict(),
                str(base_dir),
                experiment.eval,
                [q.id for q in corpus.questions],
                _planted_ids(corpus),
                records,
                *([[dataclasses.astuple(p) for p in probe]] if probe else []),  # absent: earlier steps keep their key
            ),
            timing,
            lambda seconds, gen=gen, records=records, config=config, key=key, probe=probe: _student_step(
                seconds, key, gen, records, config, experiment, corpus, out, progress, log, probe
            ),
        )
        # What the student is (set here, so a step finished by an earlier version reads the same).
        entry.update(strategy=group, data=gen.strategy, objective=objective, train_file=train_file)
        students.append(entry)

    # 6. Aggregates, differences, results.json and the report.
    results = assemble_results(experiment, corpus, generations, students, floor, ceilings, k, timing)
    results["timing"]["wall_s"] = round(time.perf_counter() - t_start, 1)
    results["experiment"]["source_dir"] = portable_path(experiment.source_dir, out)
    _save(out / "results.json", results)
    from .report import write_report

    write_report(results, out)
    log(f"results: {out / 'results.json'}  report: {out / 'report.md'}")
    return results


class _LazyLM:
    """The teacher, loaded on first use only (a fully resumed run never loads it)."""

    def __init__(self, factory: LMFactory, spec: ModelSpec) -> None:
        self.factory, self.spec, self.lm = factory, spec, None

    def get(self) -> LM:
        if self.lm is None:
            self.lm = self.factory(self.spec)
        return self.lm

    def close(self) -> None:
        if self.lm is not None:
            self.lm.close()
            self.lm = None
            gc.collect()


def _planted_ids(corpus: Corpus) -> list[Any]:
    return [(p.doc_id, p.attack_id, p.form, p.position) for p in corpus.planted.values()]


def _generate_all(
    experiment: Experiment,
    spec: ModelSpec,
    teacher: _LazyLM,
    corpus: Corpus,
    control_docs: Sequence[Document],
    out: Path,
    timing: dict[str, float],
    progress: bool,
    log: Callable[[str], None],
) -> tuple[list[GenerationResult], list[GenerationResult]]:
    """The generation runs, and for every student (strategy x seed, controls) the run it trains on."""
    from robustqa.registry import get_strategy

    jobs = [(s, seed, corpus.documents, s.key) for s in experiment.strategy_specs for seed in experiment.seeds]
    for strategy in experiment.control_strategies:
        for seed in experiment.control_spec.seeds or [experiment.seeds[0]]:
            jobs.append((strategy, seed, control_docs, f"{strategy.key}-control"))
    runs: dict[tuple[str, int], GenerationResult] = {}
    per_student = []
    for strat, student_seed, docs, key in jobs:
        # One QA set per seed, or (generation_per_seed: false) one per strategy, shared by its students.
        seed = student_seed if experiment.generation_per_seed else experiment.seeds[0]
        if (key, seed) in runs:
            per_student.append(dataclasses.replace(runs[key, seed], seed=student_seed))
            continue
        prefix = out / "data" / spec.name / key / f"seed{seed}"
        teacher_logprobs = experiment.teacher_for(key)  # a student on this QA distills

        def step(
            seconds: dict[str, float], strat=strat, seed=seed, docs=docs, key=key, prefix=prefix, tl=teacher_logprobs
        ):
            log(f"generate {spec.name}/{key} seed {seed}")
            with _Timer(seconds, "generation_s"):
                gen = generate_kept(
                    docs,
                    get_strategy(strat.name, **strat.params),
                    teacher.get(),
                    experiment.budget,
                    seed,
                    prefix,
                    spec.name,
                    key,
                    experiment.max_oversample,
                    experiment.generation_batch_size,
                    progress,
                    tl,
                )
            return gen.to_dict()

        fingerprint = _fingerprint(
            strat.name,
            strat.params,
            spec,
            experiment.budget,
            experiment.max_oversample,
            seed,
            [(d.id, stable_hash(d.text)) for d in docs],
            *([teacher_logprobs.describe()] if teacher_logprobs else []),  # absent: SFT-only runs keep their marker
        )
        marker = prefix.with_name(prefix.name + ".done.json")
        runs[key, seed] = GenerationResult.from_dict(_cached_step(marker, fingerprint, timing, step))
        per_student.append(dataclasses.replace(runs[key, seed], seed=student_seed))
    return list(runs.values()), per_student


def _teacher_step(
    seconds: dict[str, float],
    teacher: _LazyLM,
    spec: ModelSpec,
    experiment: Experiment,
    corpus: Corpus,
    log: Callable[[str], None],
) -> dict[str, Any]:
    log(f"teacher {spec.name}, open book, on {len(corpus.questions)} questions")
    teacher_dir = resolve_model_dir(teacher_model_dir(experiment, spec)) if spec.backend == "hf" else None
    with _Timer(seconds, "baselines_s"):
        return teacher_open_book(
            teacher.get(), spec.name, corpus, experiment.eval_config, experiment.generation_batch_size, teacher_dir
        )


def _student_step(
    seconds: dict[str, float],
    key: str,
    gen: GenerationResult,
    records: list[dict[str, Any]],
    config: TrainConfig,
    experiment: Experiment,
    corpus: Corpus,
    out: Path,
    progress: bool,
    log: Callable[[str], None],
    probe: Sequence[ProbeQuestion] = (),
) -> dict[str, Any]:
    log(f"train {key} on {len(records)} pairs")
    student_dir = out / "students" / key
    with _Timer(seconds, "training_s"):
        trained = train_student(records, config, student_dir, progress=progress)
    with _Timer(seconds, "evaluation_s"):
        evaluation = evaluate_closed_book(student_dir, key, corpus, experiment.eval_config, probe)
    for row, stated in zip(evaluation["questions"], answers_in_training(records, corpus.questions), strict=True):
        row["answer_in_training"] = stated
    if not experiment.keep_students:
        _drop_weights(student_dir)
    return {
        "key": key,
        "model": gen.model,
        "strategy": gen.strategy,
        "seed": gen.seed,
        "kind": "control" if gen.strategy.endswith("-control") else "strategy",
        "train": trained.portable(out),
        "train_exposure": training_exposure(records, corpus),
        **evaluation,
    }


def _require_teacher_logprobs(records: Sequence[dict[str, Any]], train_file: str) -> None:
    missing = [r.get("id", "?") for r in records if (r.get("meta") or {}).get("teacher") is None]
    if missing:
        raise InputError(
            f"a distill student trains on {train_file}, but {len(missing)} of its {len(records)} records (first: "
            f"{missing[0]}) carry no teacher logprobs (meta.teacher); regenerate that run (remove its .done.json)"
        )


def _drop_weights(student_dir: Path) -> None:
    for path in student_dir.glob("*.safetensors"):
        path.unlink()
    shutil.rmtree(student_dir / "checkpoints", ignore_errors=True)
