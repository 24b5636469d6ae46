"""GenerateConfig: YAML loading, unknown keys and wrong types, compositions."""

from __future__ import annotations

import dataclasses

import pytest

from robustqa.config import GenerateConfig
from robustqa.errors import ConfigError
from robustqa.strategy import ComposedStrategy


def test_every_field_has_a_default_and_help_text():
    for f in dataclasses.fields(GenerateConfig):
        assert f.metadata.get("help"), f.name
        assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def test_yaml_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("strategy: naive\nbudget: 7\nstrategy_params: {min_tokens: 16, max_tokens: 32}\n")
    cfg = GenerateConfig.from_yaml(path)
    assert cfg.budget == 7
    strategy = cfg.build_strategy()
    assert strategy.min_tokens == 16


@pytest.mark.parametrize(
    "text, message",
    [
        ("budgett: 3\n", "unknown key"),
        ("budget: three\n", "budget must be int"),
        ("seed: 1.5\n", "seed must be int"),
        ("- a\n- b\n", "mapping"),
        ("budget: [1\n", "not valid YAML"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        GenerateConfig.from_yaml(path)


def test_unknown_strategy_and_bad_strategy_params():
    with pytest.raises(ConfigError, match="unknown strategy"):
        GenerateConfig(strategy="nope").build_strategy()
    with pytest.raises(ConfigError, match="naive"):
        GenerateConfig(strategy="naive", strategy_params={"bogus": 1}).build_strategy()


def test_composition_from_components():
    cfg = GenerateConfig.from_dict(
        {
            "strategy": "my_mix",
            "selector": {"name": "token_window", "min_tokens": 8, "max_tokens": 16},
            "question_writer": {"name": "seed_prompt", "temperature": 0.9},
            "answerer": "context",
        }
    )
    strategy = cfg.build_strategy()
    assert isinstance(strategy, ComposedStrategy)
    assert strategy.name == "my_mix" and strategy.question_writer.temperature == 0.9
    with pytest.raises(ConfigError, match="unknown selector"):
        GenerateConfig.from_dict(
            {"selector": "nope", "question_writer": "seed_prompt", "answerer": "context"}
        ).build_strategy()


def test_attempts_reach_compositions_and_presets():
    cfg = GenerateConfig.from_dict(
        {
            "strategy": "retrying",
            "selector": "stratified",
            "question_writer": "targeted",
            "answerer": "context",
            "attempts": 3,
        }
    )
    assert cfg.build_strategy().attempts == 3
    preset = GenerateConfig.from_dict({"strategy": "robust", "strategy_params": {"attempts": 2}}).build_strategy()
    assert preset.attempts == 2
    with pytest.raises(ConfigError, match="strategy_params.attempts"):
        GenerateConfig.from_dict({"strategy": "robust", "attempts": 2}).build_strategy()


def test_fingerprint_changes_with_what_decides_content():
    cfg = GenerateConfig()
    s = cfg.build_strategy()
    fp = cfg.fingerprint(s, "m")
    assert fp == GenerateConfig().fingerprint(GenerateConfig().build_strategy(), "m")
    assert fp != GenerateConfig(seed=1).fingerprint(s, "m")
    assert fp != cfg.fingerprint(s, "other-model")
    assert fp != GenerateConfig(strategy_params={"temperature_a": 0.9}).fingerprint(
        GenerateConfig(strategy_params={"temperature_a": 0.9}).build_strategy(), "m"
    )
