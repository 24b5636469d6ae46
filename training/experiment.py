"""The EXPERIMENT.yaml schema of `robustqa compare`: what to generate, train and evaluate, and how.

    name: student_default
    documents: [../data/xquad_en_dev.json]      # loader paths, relative to this file
    include: [Super_Bowl_50, Normans]           # document ids or id prefixes ("<title>" matches "<title>/3")
    eval_questions: ../data/xquad_en_dev.json   # SQuAD-format held-out human questions about those documents
    strategies:                                 # the first one is the reference of every difference
      - {name: naive}
      - {name: robust, params: {consistency_k: 3}}
    models: [{name: smollm2, backend: hf, model: null}]    # teachers (null: the embedded SmolLM2)
    seeds: [0, 1, 2]
    budget: 64                                  # KEPT QA pairs per student, equal for every strategy
    train: {epochs: 3, learning_rate: 5.0e-5}   # any TrainConfig field
    eval: {max_new_tokens: 32}                  # any EvalConfig field
    injections: {fraction: 0.5, data_dir: ../data/injections}
    control: {include: [Oxygen]}                # same count of QA about unrelated documents

An ablation grid (strategies x models x seeds) is the same file with more entries.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from robustqa.config import from_dict
from robustqa.errors import ConfigError

from .config import TrainConfig
from .evaluate import EvalConfig


def _f(default: Any, help: str) -> Any:
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: _copy(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@dataclass
class StrategySpec:
    name: str = _f("naive", "Registered strategy name (see `robustqa strategies`).")
    params: dict = _f({}, "Keyword arguments of the strategy.")
    label: str | None = _f(
        None,
        "Name in the results (default: the strategy name); lets one strategy appear twice with different params.",
    )

    @property
    def key(self) -> str:
        return self.label or self.name


@dataclass
class ModelSpec:
    name: str = _f("smollm2", "Name of this teacher in the results and output paths.")
    backend: str = _f("hf", "LM backend of the teacher: 'hf' (local transformers) or 'openai'.")
    model: str | None = _f(
        None,
        "hf: a local model directory (null: the embedded SmolLM2-135M-Instruct); openai: the served model name.",
    )
    base_url: str | None = _f(None, "openai: the server's base URL.")
    api_key_env: str = _f("OPENAI_API_KEY", "openai: the environment variable holding the API key.")
    concurrency: int = _f(8, "openai: requests in flight at once.")


@dataclass
class InjectionSpec:
    enabled: bool = _f(True, "Plant attack texts into a share of the documents before generation.")
    fraction: float = _f(0.5, "Share of the documents that get one planted attack.")
    data_dir: str | None = _f(
        None,
        "Folder with spikee/instructions.jsonl, spikee/jailbreaks.jsonl and "
        "bipia_text_attack_train.json (relative to the experiment file).",
    )
    seed: int = _f(0, "Seed of which documents, attacks, forms and positions are chosen.")


@dataclass
class ControlSpec:
    enabled: bool = _f(True, "Train a control student on as many QA pairs about unrelated documents.")
    documents: list = _f([], "Loader paths of the unrelated documents (default: the experiment's documents).")
    include: list = _f([], "Document ids or prefixes of the unrelated documents (must not overlap).")
    strategy: str | None = _f(None, "Strategy key that generates the control QA (default: the first strategy).")
    seeds: list = _f([], "Seeds of control students (default: the first experiment seed only).")


@dataclass
class Experiment:
    """Configuration of `robustqa compare` (see the module docstring for a complete file)."""

    name: str = _f("experiment", "Name of the experiment (report title).")
    documents: list = _f([], "Loader paths of the documents QA is generated from.")
    include: list = _f([], "Keep only documents whose id equals or starts with '<entry>/' (empty: all).")
    max_documents: int | None = _f(None, "Keep only the first N documents after `include` (null: all).")
    eval_questions: str | None = _f(
        None,
        "SQuAD-format file of held-out human questions about the documents (never shown to generation or training).",
    )
    strategies: list = _f(
        [{"name": "naive"}, {"name": "robust"}],
        "Strategies to compare; the first one is the reference of every difference.",
    )
    models: list = _f([{}], "Teacher models that generate the QA (an ablation axis).")
    seeds: list = _f([0, 1, 2], "Seeds: each seed generates its own QA and trains its own student.")
    budget: int = _f(64, "KEPT QA pairs per student, equal for every strategy.")
    generation_per_seed: bool = _f(
        True,
        "Each seed generates its own QA (the intervals then cover generation variance too); false: one QA set "
        "per strategy (from the first seed) shared by its students, which differ in training seed only.",
    )
    max_oversample: float = _f(3.0, "Plan at most budget x this pairs when a strategy rejects some.")
    generation_batch_size: int = _f(16, "Work items per generation batch.")
    cache: str | None = _f("auto", "SQLite response cache of the teacher: a path, 'auto' or null (off).")
    student_base: str | None = _f(None, "Local model directory every student starts from (null: embedded).")
    train: dict = _f({}, "TrainConfig fields shared by every student (base and seed are set per student).")
    eval: dict = _f({}, "EvalConfig fields.")
    injections: dict = _f({}, "InjectionSpec fields.")
    control: dict = _f({}, "ControlSpec fields.")
    baselines: bool = _f(True, "Evaluate the untrained base (floor) and the teacher open book (ceiling).")
    keep_students: bool = _f(False, "Keep every student's weights (hundreds of MB each); logs are always kept.")
    bootstrap_samples: int = _f(2000, "Bootstrap resamples of the confidence intervals.")
    bootstrap_seed: int = _f(0, "Seed of the bootstrap.")
    source_dir: str = _f(".", "Folder relative paths are resolved against (set to the file's folder on load).")

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ConfigError("budget must be >= 1")
        if self.max_oversample < 1:
            raise ConfigError("max_oversample must be >= 1")
        if not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in self.seeds):
            raise ConfigError("seeds must be a non-empty list of integers")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("seeds must be distinct")
        keys = [s.key for s in self.strategy_specs]
        if len(keys) < 2 or len(set(keys)) != len(keys):
            raise ConfigError(f"need at least two strategies with distinct names/labels, got {keys}")
        names = [m.name for m in self.model_specs]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"need at least one model, with distinct names, got {names}")
        # Parse every nested section now, so a typo fails before any work starts.
        self.train_config(0)
        _ = (self.eval_config, self.injection_spec)
        control = self.control_spec
        if control.enabled and control.strategy and control.strategy not in keys:
            raise ConfigError(f"control.strategy {control.strategy!r} is not one of the strategies {keys}")

    # -- parsed views of the nested sections ----------------------------------------------------------------
    @property
    def strategy_specs(self) -> list[StrategySpec]:
        return [_nested(StrategySpec, s if isinstance(s, dict) else {"name": s}, "strategies") for s in self.strategies]

    @property
    def model_specs(self) -> list[ModelSpec]:
        return [_nested(ModelSpec, m, "models") for m in self.models]

    def train_config(self, seed: int) -> TrainConfig:
        data = {**self.train, "seed": seed}
        if "base" in self.train:
            raise ConfigError("set the students' base with `student_base`, not train.base")
        data["base"] = self.path(self.student_base) if self.student_base else None
        return TrainConfig.from_dict(data, source="experiment train")

    @property
    def eval_config(self) -> EvalConfig:
        return _nested(EvalConfig, self.eval, "eval")

    @property
    def injection_spec(self) -> InjectionSpec:
        return _nested(InjectionSpec, self.injections, "injections")

    @property
    def control_spec(self) -> ControlSpec:
        return _nested(ControlSpec, self.control, "control")

    def path(self, value: str) -> str:
        """A path from the file: environment variables expanded, relative to the file's folder."""
        expanded = os.path.expandvars(os.path.expanduser(str(value)))
        if "$" in expanded:
            raise ConfigError(f"unset environment variable in path {value!r}")
        path = Path(expanded)
        return str(path if path.is_absolute() else Path(self.source_dir) / path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # -- loading --------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "experiment") -> Experiment:
        return from_dict(cls, data, source)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Experiment:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such experiment file") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the experiment must be a mapping of field: value")
        data.setdefault("source_dir", str(path.resolve().parent))
        return cls.from_dict(data, source=str(path))


def _nested(cls: type, data: Any, section: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"experiment {section}: expected a mapping, got {type(data).__name__} {data!r}")
    return from_dict(cls, data, source=f"experiment {section}")
