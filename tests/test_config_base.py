"""robustqa.config_base: every configuration dataclass has a default and help text for every field, and one
YAML reader loads them all."""

from __future__ import annotations

import dataclasses

import pytest
from robustqa.training.config import TrainConfig
from robustqa.training.evaluate import EvalConfig
from robustqa.training.experiment import ControlSpec, Experiment, InjectionSpec, ModelSpec, StrategySpec

from robustqa.audit.config import AuditConfig
from robustqa.config import GenerateConfig
from robustqa.config_base import ConfigBase, read_yaml
from robustqa.errors import ConfigError

CONFIGS = [GenerateConfig, AuditConfig, TrainConfig, EvalConfig, Experiment, StrategySpec, ModelSpec]
CONFIGS += [InjectionSpec, ControlSpec]


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_config_uses_the_base():
    assert set(CONFIGS) <= set(_subclasses(ConfigBase))


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_has_a_default_and_help(cls):
    for f in dataclasses.fields(cls):
        assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING, f.name
        assert len(f.metadata.get("help", "")) >= 10, f"{cls.__name__}.{f.name} has no help text"
    assert list(cls.help()) == [f.name for f in dataclasses.fields(cls)]


def test_mutable_defaults_are_not_shared():
    a, b = Experiment(), Experiment()
    a.strategies[0]["params"] = {"x": 1}
    assert b.strategies == [{"name": "naive"}, {"name": "robust"}]


def test_one_yaml_reader(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("epochs: 2\nlearning_rate: 1.0e-4\n", encoding="utf-8")
    assert TrainConfig.from_yaml(path).epochs == 2
    path.write_text("", encoding="utf-8")
    assert read_yaml(path) == {} and AuditConfig.from_yaml(path) == AuditConfig()
    path.write_text("- 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="the experiment must be a mapping"):
        Experiment.from_yaml(path)
    with pytest.raises(ConfigError, match="no such train config file"):
        TrainConfig.from_yaml(tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match="train config: unknown key"):
        TrainConfig.from_dict({"epoch": 1})


def test_an_experiment_file_resolves_paths_against_its_folder(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("strategies: [naive, robust]\n", encoding="utf-8")
    assert Experiment.from_yaml(path).source_dir == str(tmp_path.resolve())
