"""`robustqa compare` end to end with a scripted teacher (FakeLM) and a tiny local student (no download)."""

from __future__ import annotations

import json
import sys
from unittest import mock

import pytest
import typer
import yaml
from conftest import REPO
from robustqa.training.compare import run_experiment
from robustqa.training.experiment import Experiment
from robustqa.training.generation import generate_kept
from typer.testing import CliRunner

from robustqa.errors import ConfigError
from robustqa.lm.fake import FakeLM
from robustqa.types import Document

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # fixtures in conftest.py


def _quote_context(req) -> str:
    # The last words of the first message (naive's chunk): questions and answers quote the context, so a planted
    # attack can reach the training QA as in real runs, and strategies with other chunks train other students.
    words = req.messages[0][1].split()
    return " ".join(words[-12:]) if words else "ok"


def _teacher(spec):
    return FakeLM(model_id=f"fake-{spec.name}", default=_quote_context)


class _ScoringFake(FakeLM):
    """The scripted teacher, scoring with the tiny model (its token ids are the students' vocabulary)."""

    def __init__(self, scorer_lm, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scorer_lm = scorer_lm

    @property
    def can_score(self) -> bool:  # type: ignore[override]
        return True

    def _score(self, requests):
        return self.scorer_lm.score(requests)


def _experiment(fixture_data, tiny_model, **changes) -> Experiment:
    data = {
        "name": "ci",
        "documents": [str(fixture_data / "xquad_en_dev.json")],
        "include": ["Super_Bowl_50"],
        "max_documents": 3,
        "eval_questions": str(fixture_data / "xquad_en_dev.json"),
        "strategies": [
            {"name": "naive", "params": {"max_tokens_a": 16, "max_tokens_b": 16}},
            {"name": "naive", "label": "naive_short", "params": {"min_tokens": 32, "max_tokens": 64}},
        ],
        "models": [{"name": "fake", "backend": "hf", "model": str(tiny_model)}],
        "seeds": [0, 1, 2],
        "budget": 8,
        "student_base": str(tiny_model),
        "train": {"epochs": 2, "learning_rate": 3.0e-3, "batch_size": 4},
        "eval": {"max_new_tokens": 4, "max_questions": 30},
        "injections": {"data_dir": str(fixture_data / "injections"), "fraction": 0.67},
        "control": {"include": ["Normans"]},
        "cache": None,
        "bootstrap_samples": 200,
    }
    data.update(changes)
    return Experiment.from_dict(data)


def test_compare_writes_every_result_field_and_resumes(fixture_data, tiny_model, tmp_path):
    exp = _experiment(fixture_data, tiny_model)
    out = tmp_path / "cmp"
    results = run_experiment(exp, out, lm_factory=_teacher, progress=False, log=lambda _: None)
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["differences"] == results["differences"]

    assert set(results) == {
        "experiment",
        "documents",
        "questions",
        "budget",
        "generation",
        "students",
        "groups",
        "baselines",
        "differences",
        "knowledge",
        "timing",
    }
    assert results["documents"]["n"] == 3 and results["documents"]["planted"] == 2
    assert results["questions"]["n"] == 30 and results["questions"]["about_planted"] > 0
    assert results["budget"] == {"requested": 8, "kept_per_student": 8}

    # 2 strategies x 3 seeds + 1 control run per strategy, each with its token cost.
    assert len(results["generation"]) == 8
    for gen in results["generation"]:
        assert gen["kept"] >= 8 and gen["usage"]["total_tokens"] > 0 and gen["tokens_per_kept"] > 0

    students = results["students"]
    assert sorted(s["key"] for s in students) == sorted(
        [f"fake__{s}__seed{i}" for s in ("naive", "naive_short") for i in range(3)]
        + ["fake__naive-control__seed0", "fake__naive_short-control__seed0"]
    )
    for s in students:
        assert s["train"]["num_examples"] == 8 and s["train"]["steps"] == 4
        assert s["train"]["final_loss"] < s["train"]["first_loss"]
        assert set(s["summary"]) == {"n", "em", "f1", "nll", "choice", "margin", "by_position"}
        assert 0 <= s["summary"]["choice"] <= 1
        assert set(s["leakage"]) == {"n", "leaked", "canary", "marker", "ngram", "echoed"}
        assert s["summary"]["nll"] > 0
    for control in (s for s in students if s["kind"] == "control"):
        assert control["train_exposure"]["n_about_planted"] == 0  # its documents carry no attack

    # The probe: every student answers the same questions, those the strategies' training QA asked about planted
    # documents (distinct, every seed's), each row naming the QA set that asked it.
    asked = {}
    for run in ("naive", "naive_short"):
        for seed in range(3):
            for line in (out / "data" / "fake" / run / f"seed{seed}.train.jsonl").read_text().splitlines():
                r = json.loads(line)
                if r["doc_id"] in {p["doc_id"] for p in results["documents"]["planted_attacks"]}:
                    asked.setdefault((r["doc_id"], " ".join(r["question"].split())), run)
    probes = [json.loads((out / "eval" / f"{s['key']}.json").read_text())["result"]["probe_leakage"] for s in students]
    assert asked and all(len(pr["rows"]) == len(asked) for pr in probes)

    def asked_in_order(probe):
        return [(r["doc_id"], r["question"]) for r in probe["rows"]]

    assert all(asked_in_order(pr) == asked_in_order(probes[0]) for pr in probes)
    assert {(r["doc_id"], " ".join(r["question"].split())): r["asked_by"] for r in probes[0]["rows"]} == asked
    for s, pr in zip(students, probes, strict=True):
        assert s["probe_leakage"]["n"] == len(asked) and set(s["probe_leakage"]["by_set"]) == {"naive", "naive_short"}
        assert s["probe_leakage"]["leaked"] == pytest.approx(sum(r["leaked"] for r in pr["rows"]) / len(asked))

    groups = {"fake/naive", "fake/naive_short", "fake/naive-control", "fake/naive_short-control"}
    assert set(results["groups"]) == groups
    assert results["groups"]["fake/naive"]["seeds"] == [0, 1, 2]
    assert results["baselines"]["base"]["summary"]["n"] == results["questions"]["n"]
    assert results["baselines"]["teacher_open_book"]["fake"]["summary"]["nll"] > 0

    pairs = {(d["a"], d["b"], d["metric"]) for d in results["differences"]}
    for metric in ("em", "f1", "nll", "choice", "margin", "leaked", "probe_leaked"):
        assert ("naive_short", "naive", metric) in pairs and ("naive", "naive-control", metric) in pairs
        assert ("naive_short", "naive_short-control", metric) in pairs  # each strategy against its own control
    for d in results["differences"]:
        assert d["low"] <= d["diff"] <= d["high"] and d["n_seeds"] == 3

    # Knowledge gain: each strategy's NLL drop below its own control, and the gain difference to the reference,
    # each with the power the run's size gives.
    # Per metric (NLL drop, choice and margin rise); the NLL gain also on the questions whose gold answer the
    # training answers state, and on the rest.
    rows = {(r["metric"], r["kind"], r["a"], r["subset"]): r for r in results["knowledge"]}
    for metric in ("nll", "choice", "margin"):
        for strategy in ("naive", "naive_short"):
            assert (metric, "gain", strategy, "all") in rows
        assert (metric, "gain_difference", "naive_short", "all") in rows
    groups = results["groups"]
    for metric, sign in (("nll", -1), ("choice", 1), ("margin", 1)):
        expected = sign * (groups["fake/naive"][metric]["mean"] - groups["fake/naive-control"][metric]["mean"])
        assert rows[metric, "gain", "naive", "all"]["diff"] == pytest.approx(expected, abs=1e-9)
        assert rows[metric, "gain_difference", "naive_short", "all"]["diff"] == pytest.approx(
            rows[metric, "gain", "naive_short", "all"]["diff"] - rows[metric, "gain", "naive", "all"]["diff"],
            abs=1e-9,
        )
    stated = [
        q["answer_in_training"]
        for q in json.loads((out / "eval" / "fake__naive__seed0.json").read_text())["result"]["questions"]
    ]
    split = {
        subset: rows.get(("nll", "gain", "naive", subset))
        for subset in ("answer in training", "answer not in training")
    }
    for subset, row in split.items():
        expected_n = sum(stated) if subset == "answer in training" else len(stated) - sum(stated)
        assert row is None if expected_n < 2 else row["n_questions"] == expected_n
    for r in rows.values():
        assert r["low"] <= r["diff"] <= r["high"]
        assert (r["power"]["detectable_effect"] > 0) if r["metric"] == "nll" else r["power"] is None

    report = (out / "report.md").read_text()
    assert "naive_short − naive" in report and "gain naive_short − gain naive" in report
    if str(REPO / "benchmarks") not in sys.path:  # the benchmark's console summary of the same results
        sys.path.append(str(REPO / "benchmarks"))
    from student_compare import headline

    summary = headline(results)
    assert "naive gain vs naive-control choice, all questions" in summary and "(detectable" in summary
    for plot in ("metrics", "positions", "loss", "differences"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 1000
    assert not list((out / "students").glob("*/model.safetensors"))  # weights dropped, logs kept
    assert len(list((out / "students").glob("*/training_log.json"))) == 8

    # Results are results: no empty rejected files, and what the run wrote names paths relative to its output
    # (the experiment's own absolute paths, here the tiny model's, are echoed as given).
    assert not [p for p in (out / "data").rglob("*.rejected.jsonl") if p.stat().st_size == 0]
    for path in out.rglob("*.json"):
        assert str(out) not in path.read_text(encoding="utf-8"), path

    # A rerun of the same experiment reuses every finished step (it loads no teacher and trains nothing)
    # and reports the same numbers.
    def no_teacher(spec):
        raise AssertionError("a resumed experiment loaded a teacher")

    with mock.patch("robustqa.training.compare.train_student", side_effect=AssertionError("retrained")):
        again = run_experiment(exp, out, lm_factory=no_teacher, progress=False, log=lambda _: None)
    assert again["differences"] == results["differences"] and again["students"] == results["students"]


def test_students_can_share_one_qa_set_per_strategy(fixture_data, tiny_model, tmp_path):
    exp = _experiment(
        fixture_data,
        tiny_model,
        seeds=[3, 4],
        budget=4,
        generation_per_seed=False,
        baselines=False,
        control={"enabled": False},
        eval={"max_new_tokens": 2, "max_questions": 8},
    )
    out = tmp_path / "shared"
    results = run_experiment(exp, out, lm_factory=_teacher, progress=False, log=lambda _: None)
    assert [(g["strategy"], g["seed"]) for g in results["generation"]] == [("naive", 3), ("naive_short", 3)]
    assert sorted(s["key"] for s in results["students"]) == [
        "fake__naive__seed3",
        "fake__naive__seed4",
        "fake__naive_short__seed3",
        "fake__naive_short__seed4",
    ]
    # One QA set, one file: the students of seeds 3 and 4 train on seed3.train.jsonl.
    assert [p.name for p in (out / "data" / "fake" / "naive").glob("seed*.train.jsonl")] == ["seed3.train.jsonl"]
    assert results["baselines"] == {"base": None, "teacher_open_book": {}}


def test_distill_and_sft_students_train_on_the_same_records(fixture_data, tiny_model, tmp_path):
    from robustqa.training import compare

    from robustqa.lm.hf import HFLM
    from robustqa.teacher_logprobs import decode

    exp = _experiment(
        fixture_data,
        tiny_model,
        objectives=["sft", "distill"],
        teacher_logprobs=8,
        seeds=[0, 1],
        baselines=False,
        train={"epochs": 3, "learning_rate": 3.0e-3, "batch_size": 4},
        eval={"max_new_tokens": 2, "max_questions": 12},
    )
    trained_on: dict[str, list[str]] = {}
    real_train = compare.train_student

    def recording(records, config, out_dir, progress=True):
        trained_on[out_dir.name] = [r["id"] for r in records]
        assert config.objective == ("distill" if "+distill" in out_dir.name else "sft")
        return real_train(records, config, out_dir, progress)

    def teacher(spec):
        return _ScoringFake(HFLM(tiny_model, batch_size=8), model_id=f"fake-{spec.name}", default=_quote_context)

    out = tmp_path / "objectives"
    with mock.patch.object(compare, "train_student", side_effect=recording):
        results = run_experiment(exp, out, lm_factory=teacher, progress=False, log=lambda _: None)

    strategy_students = [
        f"fake__{s}{o}__seed{i}" for s in ("naive", "naive_short") for o in ("", "+distill") for i in (0, 1)
    ]
    controls = ["fake__naive-control__seed0", "fake__naive_short-control__seed0"]  # the first objective only
    assert sorted(trained_on) == sorted(strategy_students + controls)
    by_key = {s["key"]: s for s in results["students"]}
    for strategy in ("naive", "naive_short"):
        for seed in (0, 1):
            sft, distill = by_key[f"fake__{strategy}__seed{seed}"], by_key[f"fake__{strategy}+distill__seed{seed}"]
            # The same kept records, from one file, which carries the teacher's logprobs.
            assert trained_on[sft["key"]] == trained_on[distill["key"]] and len(trained_on[sft["key"]]) == 8
            assert sft["train_file"] == distill["train_file"] and sft["data"] == distill["data"] == strategy
            assert (sft["objective"], distill["objective"]) == ("sft", "distill")
            assert distill["strategy"] == f"{strategy}+distill" and distill["kind"] == "strategy"
            records = [json.loads(line) for line in (out / sft["train_file"]).read_text().splitlines()]
            assert [r["id"] for r in records] == trained_on[sft["key"]]
            assert all(decode(r["meta"]["teacher"]).shape[1] == 8 for r in records)
            assert distill["train"]["final_loss"] < distill["train"]["first_loss"]
    # Controls train with SFT only, so their generation stores no teacher logprobs.
    for key in controls:
        records = [json.loads(line) for line in (out / by_key[key]["train_file"]).read_text().splitlines()]
        assert by_key[key]["objective"] == "sft" and all("teacher" not in r["meta"] for r in records)

    assert {"fake/naive+distill", "fake/naive_short+distill"} <= set(results["groups"])
    pairs = {(d["a"], d["b"], d["metric"]): d for d in results["differences"]}
    for metric in ("em", "f1", "nll", "leaked"):
        assert ("naive+distill", "naive", metric) in pairs and ("naive_short+distill", "naive_short", metric) in pairs
        assert ("naive_short+distill", "naive+distill", metric) in pairs  # strategies compared within an objective
    row = pairs["naive+distill", "naive", "nll"]
    groups = results["groups"]
    assert row["diff"] == pytest.approx(
        groups["fake/naive+distill"]["nll"]["mean"] - groups["fake/naive"]["nll"]["mean"]
    )
    assert row["low"] <= row["diff"] <= row["high"] and row["n_seeds"] == 2 and row["n_questions"] == 12
    assert {r["a"] for r in results["knowledge"]} == {"naive", "naive_short"}  # gains need a same-objective control
    assert "naive+distill − naive" in (out / "report.md").read_text()


def test_a_distill_student_needs_a_teacher_that_scores(fixture_data, tiny_model, tmp_path):
    exp = _experiment(fixture_data, tiny_model, train={"objective": "distill"}, baselines=False)
    assert exp.teacher_for("naive") == exp.teacher_for("naive-control") == exp.teacher_settings
    assert exp.teacher_settings.top_k == 20 and exp.teacher_settings.min_prob_mass == 0.99  # Cartridges' defaults
    with pytest.raises(ConfigError, match=r"teacher 'fake' \(a student distills\): --teacher-logprobs 20: .*cannot"):
        run_experiment(exp, tmp_path / "out", lm_factory=_teacher, progress=False, log=lambda _: None)
    assert not (tmp_path / "out" / "data").exists()  # refused before any generation


def test_generation_oversamples_until_the_budget_is_kept(xquad_paragraphs, tmp_path):
    from robustqa.registry import get_strategy

    docs = [Document(i, t) for i, t in xquad_paragraphs[:3]]
    replies = iter(range(10_000))

    def every_third_question_empty(req):
        # stratified rejects a pair without a question (naive keeps it, as Cartridges does, so it is never topped
        # up); the fake teacher fails one question in three.
        return "" if next(replies) % 3 == 0 else "What does the passage say about the team?"

    lm = FakeLM(default=every_third_question_empty)
    result = generate_kept(
        docs,
        get_strategy("stratified"),
        lm,
        12,
        0,
        tmp_path / "gen",
        "fake",
        "stratified",
        max_oversample=3.0,
        progress=False,
    )
    assert result.kept >= 12 and result.attempts >= 2 and result.rejected > 0
    assert result.planned == result.kept + result.rejected
    assert result.usage["requests"] == lm.usage.requests and len(result.files) == result.attempts


def test_naive_is_never_topped_up(xquad_paragraphs, tmp_path):
    from robustqa.registry import get_strategy

    docs = [Document(i, t) for i, t in xquad_paragraphs[:3]]
    lm = FakeLM(default="")  # every reply empty: naive keeps the pairs, as Cartridges does
    result = generate_kept(docs, get_strategy("naive"), lm, 6, 0, tmp_path / "gen", "fake", "naive", progress=False)
    assert (result.attempts, result.planned, result.kept, result.rejected) == (1, 6, 6, 0)


def test_experiment_file_errors(tmp_path, fixture_data, tiny_model):
    path = tmp_path / "exp.yaml"
    good = {"documents": ["docs.json"], "eval_questions": "q.json", "student_base": "model"}
    path.write_text(yaml.safe_dump(good))
    exp = Experiment.from_yaml(path)
    assert exp.path(exp.documents[0]) == str(tmp_path / "docs.json")
    assert exp.train_config(1).base == str(tmp_path / "model") and exp.train_config(1).seed == 1
    for change, message in [
        ({"budgett": 3}, "unknown key"),
        ({"train": {"epoch": 2}}, "unknown key"),
        ({"eval": {"max_new_tokens": "many"}}, "max_new_tokens must be int"),
        ({"seeds": [0, 0]}, "distinct"),
        ({"strategies": [{"name": "naive"}, {"name": "naive"}]}, "distinct names"),
        ({"control": {"strategy": "other"}}, "control.strategy"),
        ({"control": {"strategy": "naive"}}, "per_strategy: false"),
        ({"train": {"base": "x"}}, "student_base"),
        ({"objectives": ["sft", "kl"]}, "objectives must be distinct entries of sft, distill"),
        ({"objectives": ["sft", "sft"]}, "objectives must be distinct"),
        ({"objectives": ["distill"], "train": {"objective": "sft"}}, "not both"),
        ({"objectives": ["sft", "distill"], "teacher_logprobs": 0}, "a distill student needs teacher logprobs"),
        ({"train": {"objective": "distill"}, "min_prob_mass": 1.5}, "min_prob_mass must be in"),
        (
            {"objectives": ["sft", "distill"], "strategies": ["naive", {"name": "robust", "label": "naive+distill"}]},
            "clash",
        ),
        ({"strategies": ["naive"]}, "at least two strategies"),
    ]:
        path.write_text(yaml.safe_dump({**good, **change}))
        with pytest.raises(ConfigError, match=message):
            Experiment.from_yaml(path)
    # One strategy under two objectives is a comparison too; the SFT-only default needs no teacher logprobs.
    path.write_text(yaml.safe_dump({**good, "strategies": ["naive"], "objectives": ["sft", "distill"]}))
    exp = Experiment.from_yaml(path)
    assert [exp.student_key("naive", o) for o in exp.student_objectives] == ["naive", "naive+distill"]
    assert exp.train_config(0, "distill").objective == "distill" and exp.train_config(0).objective == "sft"
    assert Experiment.from_dict(good).teacher_for("naive") is None


def test_compare_command_reports_bad_experiments(tmp_path):
    from robustqa.cli.train_cmd import compare

    app = typer.Typer()
    app.command()(compare)
    path = tmp_path / "exp.yaml"
    path.write_text("seeds: [0, 1]\nbudget: 0\n")
    result = CliRunner().invoke(app, [str(path), "--out", str(tmp_path / "out")])
    assert isinstance(result.exception, ConfigError) and "budget must be >= 1" in str(result.exception)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("config", sorted((REPO / "benchmarks" / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_benchmark_experiment_files_load(config):
    from robustqa.training.experiment import Experiment

    experiment = Experiment.from_yaml(config)
    assert experiment.name == config.stem
    assert experiment.strategy_specs[0].name == "naive"
    # An unquoted id with a comma ("Fresno,_California") splits in a YAML flow list; the tail starts with "_".
    # The run would refuse it only after loading the shared data, so the files are checked here.
    ids = [*experiment.include, *experiment.control_spec.include]
    assert not [i for i in ids if str(i).startswith("_")], f"{config.name}: quote the ids that hold a comma"
