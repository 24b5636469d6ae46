"""Reading Cartridges self-study configs: the knobs reach the strategy, what cannot carry over is reported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from robustqa.cartridges_compat import from_cartridges, read_cartridges
from robustqa.config import GenerateConfig
from robustqa.errors import ConfigError
from robustqa.lm.fake import FakeLM
from robustqa.registry import REGISTRY
from robustqa.runner import generate_records
from robustqa.segment import word_spans

# The README example of HazyResearch/cartridges (TextFileResource, TokenChunker, SelfStudySynthesizer).
NESTED = """
name: cartridges-tutorial
num_samples: 24
batch_size: 8
max_num_batches_in_parallel: 4
synthesizer:
  _config_type: cartridges.synthesizers.self_study.SelfStudySynthesizer.Config
  client:
    model_name: Qwen/Qwen3-4b
    url: http://localhost:8000
  resources:
    - path: {doc}
      seed_prompts: [structuring, summarization, question]
      chunker:
        tokenizer: Qwen/Qwen3-4b
        min_tokens_per_chunk: 20
        max_tokens_per_chunk: 40
  temperature_a: 0.7
  max_completion_tokens_a: 64
  temperature_b: 0.1
  max_completion_tokens_b: 96
  max_rounds: 1
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def doc(tmp_path, xquad_paragraphs):
    return write(tmp_path, "paper.txt", "\n\n".join(text for _, text in xquad_paragraphs[:4]))


def test_nested_config_maps_every_knob(tmp_path, doc):
    imported = read_cartridges(write(tmp_path, "c.yaml", NESTED.format(doc=doc)))
    cfg = imported.config
    assert cfg.strategy == "naive" and cfg.budget == 24 and cfg.batch_size == 8
    assert cfg.strategy_params == {
        "temperature_a": 0.7,
        "max_tokens_a": 64,
        "temperature_b": 0.1,
        "max_tokens_b": 96,
        "seed_prompts": ["structuring", "summarization", "question"],
        "min_tokens": 20,
        "max_tokens": 40,
        "prob_thinking": 0.0,
    }
    assert (cfg.teacher_logprobs, cfg.min_prob_mass) == (20, 0.99)  # Cartridges' defaults: targets="logits"
    assert (cfg.backend, cfg.model, cfg.base_url) == ("openai", "Qwen/Qwen3-4b", "http://localhost:8000/v1")
    assert imported.documents == [str(doc)]
    notes = " ".join(imported.notes)
    assert "tokenizer 'Qwen/Qwen3-4b' is not a local directory" in notes
    assert "not recognised" not in notes and "NOT reproduced" not in notes


def test_flat_json_config_and_cartridges_defaults(tmp_path):
    path = write(
        tmp_path,
        "c.json",
        json.dumps(
            {
                "num_samples": 5,
                "seed_prompts": ["generic"],
                "min_tokens_per_chunk": 8,
                "max_tokens_per_chunk": 8,
            }
        ),
    )
    cfg = from_cartridges(path)
    # Knobs the file leaves out take Cartridges' defaults, not robustqa's.
    assert cfg.strategy_params == {
        "temperature_a": 0.6,
        "max_tokens_a": 512,
        "temperature_b": 0.0,
        "max_tokens_b": 1024,
        "seed_prompts": ["generic"],
        "min_tokens": 8,
        "max_tokens": 8,
        "prob_thinking": 0.0,
    }
    assert cfg.backend == GenerateConfig().backend and cfg.budget == 5


def test_the_knobs_reach_the_model_calls(tmp_path, doc):
    from robustqa.io.loaders import load_documents

    cfg = from_cartridges(write(tmp_path, "c.yaml", NESTED.format(doc=doc)))
    lm = FakeLM(default="A reply.")
    generate_records(
        load_documents([doc]), cfg.build_strategy(), lm, cfg.budget, 0, tmp_path / "qa.jsonl", progress=False
    )
    calls_a = [c for c in lm.calls if c.params.temperature == 0.7]
    calls_b = [c for c in lm.calls if c.params.temperature == 0.1]
    assert len(calls_a) == len(calls_b) == 24 and len(lm.calls) == 48
    assert {c.params.max_tokens for c in calls_a} == {64} and {c.params.max_tokens for c in calls_b} == {96}
    text = doc.read_text()
    rows = [json.loads(line) for line in (tmp_path / "qa.jsonl").read_text().splitlines()]
    assert {r["meta"]["seed_prompt"] for r in rows} <= {"structuring", "summarization", "question"}
    for r in rows:
        n_tokens = len(word_spans(text[r["context"]["start"] : r["context"]["end"]]))
        assert 20 <= n_tokens <= 40


def test_another_strategy_takes_the_knobs_it_shares_and_reports_the_rest(tmp_path, doc):
    REGISTRY.load_plugins()
    make_naive = REGISTRY.strategies["naive"].factory

    def make_other(temperature_a: float = 0.3, window: int = 2):
        return make_naive(temperature_a=temperature_a)

    REGISTRY.strategy("test_same_knobs", make_naive, help="test")
    REGISTRY.strategy("test_other_knobs", make_other, help="test")
    try:
        path = write(tmp_path, "c.yaml", NESTED.format(doc=doc))
        same = read_cartridges(path, strategy="test_same_knobs")
        assert same.config.strategy_params == from_cartridges(path).strategy_params
        assert not any("NOT applied" in n for n in same.notes)
        other = read_cartridges(path, strategy="test_other_knobs")
        assert other.config.strategy_params == {"temperature_a": 0.7}
        assert (other.config.budget, other.config.model) == (24, "Qwen/Qwen3-4b")
        skipped = next(n for n in other.notes if "NOT applied" in n)
        for knob in (
            "max_tokens_a",
            "temperature_b",
            "max_tokens_b",
            "seed_prompts",
            "min_tokens",
            "max_tokens",
        ):
            assert knob in skipped
        assert other.config.build_strategy().temperature_a == 0.7
    finally:
        REGISTRY.unregister("test_same_knobs")
        REGISTRY.unregister("test_other_knobs")


def test_the_robust_preset_runs_a_cartridges_config(tmp_path, doc):
    REGISTRY.load_plugins()
    if "robust" not in REGISTRY.strategies:
        pytest.skip("no robust strategy registered")
    imported = read_cartridges(write(tmp_path, "c.yaml", NESTED.format(doc=doc)), strategy="robust")
    cfg = imported.config
    assert cfg.strategy == "robust" and cfg.budget == 24 and cfg.base_url == "http://localhost:8000/v1"
    assert any("strategy 'robust' has no knob(s)" in n and "seed_prompts" in n for n in imported.notes)
    assert cfg.build_strategy().name == "robust"


def test_an_unknown_strategy_is_named(tmp_path, doc):
    with pytest.raises(ConfigError, match="unknown strategy 'nosuch'"):
        from_cartridges(write(tmp_path, "c.yaml", NESTED.format(doc=doc)), strategy="nosuch")


def test_what_does_not_carry_over_is_reported(tmp_path, doc):
    text = NESTED.format(doc=doc).replace("max_rounds: 1", "max_rounds: 3\n  use_tools_a: true\n  zzz_knob: 1")
    notes = " ".join(read_cartridges(write(tmp_path, "c.yaml", text)).notes)
    assert "max_rounds=3 is NOT reproduced" in notes and "use_tools_a=True is NOT reproduced" in notes
    assert "not recognised, ignored: zzz_knob" in notes


@pytest.mark.parametrize(
    "change, message",
    [
        (("[structuring, summarization, question]", "[aggregation]"), r"unknown seed prompt types \['aggregation'\]"),
        (
            ("min_tokens_per_chunk: 20", "min_tokens_per_chunk: 50"),
            "min_tokens_per_chunk <= max_tokens_per_chunk",
        ),
        (("num_samples: 24", "num_samples: lots"), "budget must be int"),
        (("resources:", "resources: 3\n  x:"), "'resources' must be a list"),
    ],
)
def test_bad_cartridges_configs_are_config_errors(tmp_path, doc, change, message):
    text = NESTED.format(doc=doc).replace(*change)
    with pytest.raises(ConfigError, match=message):
        from_cartridges(write(tmp_path, "c.yaml", text))


def test_resources_that_disagree_are_refused(tmp_path, doc):
    data = yaml.safe_load(NESTED.format(doc=doc))
    second = dict(data["synthesizer"]["resources"][0], seed_prompts=["creative"])
    data["synthesizer"]["resources"].append(second)
    with pytest.raises(ConfigError, match="set seed_prompts differently"):
        from_cartridges(write(tmp_path, "c.yaml", yaml.safe_dump(data)))


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-c", "from robustqa.cli import main; main()", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_cartridges_writes_a_config_that_generate_runs(tmp_path, doc):
    source = write(tmp_path, "c.yaml", NESTED.format(doc=doc))
    out = tmp_path / "robustqa.yaml"
    proc = run_cli("import-cartridges", source, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert f"robustqa generate {doc} --config {out}" in proc.stdout
    assert GenerateConfig.from_yaml(out) == from_cartridges(source)
    assert "# note: chunk sizes count robustqa's word pieces" in out.read_text()

    qa = tmp_path / "qa.jsonl"
    # The scripted backend cannot score, so the imported teacher logprobs (Cartridges' default 20) are turned off.
    proc = run_cli(
        "generate",
        doc,
        "--config",
        out,
        "--backend",
        "fake",
        "--out",
        qa,
        "--no-cache",
        "--no-progress",
        "--teacher-logprobs",
        "0",
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in qa.read_text().splitlines()]
    assert len(rows) == 24 and {r["strategy"] for r in rows} == {"naive"}

    again = run_cli("import-cartridges", source, "--out", out)
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_a_null_minimum_means_fixed_length_chunks(tmp_path, doc):
    text = NESTED.format(doc=doc).replace("min_tokens_per_chunk: 20", "min_tokens_per_chunk: null")
    cfg = from_cartridges(write(tmp_path, "c.yaml", text))
    assert cfg.strategy_params["min_tokens"] is None and cfg.strategy_params["max_tokens"] == 40
    from robustqa.io.loaders import load_documents

    items = cfg.build_strategy().plan(load_documents([doc])[0], 6, 0)
    source = doc.read_text()
    assert {len(word_spans(source[it.context[0] : it.context[1]])) for it in items} == {40}


def test_teacher_thinking_and_template_settings_carry_over(tmp_path, doc):
    text = NESTED.format(doc=doc).replace(
        "  max_rounds: 1",
        "  max_rounds: 1\n  num_top_logprobs: 5\n  min_prob_mass: 0.9\n  prob_thinking: 0.2\n"
        "  system_prompt_template: 'About this: <info>{subcorpus}</info>'\n"
        "  tool_prompt_template: 'x'\n  max_tool_tokens: 128",
    )
    imported = read_cartridges(write(tmp_path, "c.yaml", text))
    cfg = imported.config
    assert (cfg.teacher_logprobs, cfg.min_prob_mass) == (5, 0.9)
    assert cfg.strategy_params["prob_thinking"] == 0.2
    assert cfg.strategy_params["system_prompt_template"] == "About this: <info>{subcorpus}</info>"
    notes = " ".join(imported.notes)
    assert "tool_prompt_template: no effect without tools" in notes and "NOT reproduced" not in notes
    off = read_cartridges(write(tmp_path, "d.yaml", text.replace("num_top_logprobs: 5", "num_top_logprobs: null")))
    assert off.config.teacher_logprobs == 0


def test_resource_and_chunker_classes_and_nested_keys_are_reported(tmp_path, doc):
    data = yaml.safe_load(NESTED.format(doc=doc))
    resource = data["synthesizer"]["resources"][0]
    resource["_config_type"] = "cartridges.data.tex.resources.LaTeXResource.Config"
    resource["arxiv_id"] = "2506.06266"
    resource["chunker"]["_config_type"] = "cartridges.data.chunkers.CharacterChunker.Config"
    resource["chunker"]["overlap"] = 100
    data["synthesizer"]["client"]["thinking_mode"] = "toggleable"
    notes = " ".join(read_cartridges(write(tmp_path, "c.yaml", yaml.safe_dump(data))).notes)
    assert "resources[0] is a LaTeXResource: NOT reproduced" in notes
    assert "resources[0].chunker is a CharacterChunker: NOT reproduced" in notes
    assert "resources[0].arxiv_id" in notes and "resources[0].chunker.overlap" in notes
    assert "client settings thinking_mode ignored" in notes
