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
    objectives: [sft, distill]                  # one student per objective on the same QA (default: train's)
    eval: {max_new_tokens: 32}                  # any EvalConfig field
    injections: {fraction: 0.5, data_dir: ../data/injections}
    control: {include: [Oxygen]}                # same count of QA about unrelated documents

An ablation grid (strategies x models x seeds) is the same file with more entries. With `objectives`, every
strategy's kept QA trains one student per objective: the first objective's students are keyed by the strategy,
each other objective's by `<strategy>+<objective>` (e.g. `naive+distill`), trained on the same records and
compared with the first objective's student in the differences. Where a student distills, generation stores the
teacher's top-`teacher_logprobs` log-probabilities with every kept record (`robustqa generate --teacher-logprobs`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustqa.config_base import ConfigBase, from_dict, option
from robustqa.errors import ConfigError
from robustqa.teacher_logprobs import TeacherSettings

from .complying import ComplyingRecipe
from .config import OBJECTIVES, TrainConfig
from .evaluate import EvalConfig


@dataclass
class StrategySpec(ConfigBase):
    name: str = option("naive", "Registered strategy name (see `robustqa strategies`).")
    params: dict = option({}, "Keyword arguments of the strategy.")
    label: str | None = option(
        None,
        "Name in the results (default: the strategy name); lets one strategy appear twice with different params.",
    )

    @property
    def key(self) -> str:
        return self.label or self.name


@dataclass
class ModelSpec(ConfigBase):
    name: str = option("smollm2", "Name of this teacher in the results and output paths.")
    backend: str = option("hf", "LM backend of the teacher: 'hf' (local transformers) or 'openai'.")
    model: str | None = option(
        None,
        "hf: a local model directory (null: the embedded SmolLM2-135M-Instruct); openai: the served model name.",
    )
    base_url: str | None = option(None, "openai: the server's base URL.")
    api_key_env: str = option("OPENAI_API_KEY", "openai: the environment variable holding the API key.")
    concurrency: int = option(8, "openai: requests in flight at once.")
    complying: dict | None = option(
        None,
        "hf only: make this teacher a complying one (issue 15), `model` (null: the embedded model) LoRA-trained "
        "to obey instructions planted in its context: ComplyingTeacherSpec fields. Trained once and cached by the "
        "recipe's fingerprint (about 30 minutes on 2 CPU cores), merged into its base for generation.",
    )


@dataclass
class ComplyingTeacherSpec(ConfigBase):
    """A complying teacher of `robustqa.training.complying`, as `benchmarks/complying_teacher.py` trains it."""

    recipe: dict = option({}, "ComplyingRecipe fields (attacked_share, learning_rate, epochs, seed, ...).")
    squad: str | None = option(
        None,
        "SQuAD-format file whose paragraphs and human questions the teacher trains on (default: eval_questions; "
        "relative to the experiment file).",
    )
    pairs: int = option(400, "Training pairs: the first of the training paragraphs' examples.")
    eval_share: float = option(0.25, "Share of the paragraphs kept out of the teacher's training pairs.")


@dataclass
class InjectionSpec(ConfigBase):
    enabled: bool = option(True, "Plant attack texts into a share of the documents before generation.")
    fraction: float = option(0.5, "Share of the documents that get one planted attack.")
    data_dir: str | None = option(
        None,
        "Folder with spikee/instructions.jsonl, spikee/jailbreaks.jsonl and "
        "bipia_text_attack_train.json (relative to the experiment file).",
    )
    seed: int = option(0, "Seed of which documents, attacks, forms and positions are chosen.")


@dataclass
class ControlSpec(ConfigBase):
    enabled: bool = option(True, "Train a control student on as many QA pairs about unrelated documents.")
    documents: list = option([], "Loader paths of the unrelated documents (default: the experiment's documents).")
    include: list = option([], "Document ids or prefixes of the unrelated documents (must not overlap).")
    per_strategy: bool = option(
        True,
        "Every strategy gets its own control (the same strategy on the unrelated documents, same count), so each "
        "strategy's knowledge gain is measured against its own format effect; false: one control from `strategy`.",
    )
    strategy: str | None = option(
        None, "With per_strategy false: the strategy key that generates the control QA (default: the first)."
    )
    seeds: list = option([], "Seeds of control students (default: the first experiment seed only).")


@dataclass
class Experiment(ConfigBase):
    """Configuration of `robustqa compare` (see the module docstring for a complete file)."""

    kind = "experiment"

    name: str = option("experiment", "Name of the experiment (report title).")
    documents: list = option([], "Loader paths of the documents QA is generated from.")
    include: list = option([], "Keep only documents whose id equals or starts with '<entry>/' (empty: all).")
    max_documents: int | None = option(None, "Keep only the first N documents after `include` (null: all).")
    eval_questions: str | None = option(
        None,
        "SQuAD-format file of held-out human questions about the documents (never shown to generation or training).",
    )
    strategies: list = option(
        [{"name": "naive"}, {"name": "robust"}],
        "Strategies to compare; the first one is the reference of every difference.",
    )
    models: list = option([{}], "Teacher models that generate the QA (an ablation axis).")
    seeds: list = option([0, 1, 2], "Seeds: each seed generates its own QA and trains its own student.")
    budget: int = option(64, "KEPT QA pairs per student, equal for every strategy.")
    generation_per_seed: bool = option(
        True,
        "Each seed generates its own QA (the intervals then cover generation variance too); false: one QA set "
        "per strategy (from the first seed) shared by its students, which differ in training seed only.",
    )
    max_oversample: float = option(3.0, "Plan at most budget x this pairs when a strategy rejects some.")
    generation_batch_size: int = option(16, "Work items per generation batch.")
    cache: str | None = option("auto", "SQLite response cache of the teacher: a path, 'auto' or null (off).")
    student_base: str | None = option(None, "Local model directory every student starts from (null: embedded).")
    train: dict = option(
        {}, "TrainConfig fields shared by every student (base, seed and, with `objectives`, objective are per student)."
    )
    objectives: list = option(
        [],
        "Training objectives ('sft', 'distill'), each training its own student on the SAME kept QA of every strategy "
        "and seed (empty: train.objective alone). The first one's students (and the controls) are keyed by the "
        "strategy; every other one's by '<strategy>+<objective>', compared with the first on the same data.",
    )
    teacher_logprobs: int = option(
        20,
        "Top-K teacher log-probabilities generation stores with every kept record when a student trained on them "
        "distills (Cartridges' num_top_logprobs); unused when every student is SFT.",
    )
    min_prob_mass: float = option(
        0.99,
        "With teacher logprobs: keep per answer token the leading top-K entries until their probability mass "
        "reaches this (Cartridges' min_prob_mass).",
    )
    eval: dict = option({}, "EvalConfig fields.")
    injections: dict = option({}, "InjectionSpec fields.")
    control: dict = option({}, "ControlSpec fields.")
    baselines: bool = option(True, "Evaluate the untrained base (floor) and the teacher open book (ceiling).")
    keep_students: bool = option(False, "Keep every student's weights (hundreds of MB each); logs are always kept.")
    bootstrap_samples: int = option(2000, "Bootstrap resamples of the confidence intervals.")
    bootstrap_seed: int = option(0, "Seed of the bootstrap.")
    source_dir: str = option(".", "Folder relative paths are resolved against (set to the file's folder on load).")

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ConfigError("budget must be >= 1")
        if self.max_oversample < 1:
            raise ConfigError("max_oversample must be >= 1")
        if not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in self.seeds):
            raise ConfigError("seeds must be a non-empty list of integers")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("seeds must be distinct")
        if self.objectives and "objective" in self.train:
            raise ConfigError("set the students' objective with `objectives` or train.objective, not both")
        if any(o not in OBJECTIVES for o in self.objectives) or len(set(self.objectives)) != len(self.objectives):
            raise ConfigError(f"objectives must be distinct entries of {', '.join(OBJECTIVES)}, got {self.objectives}")
        keys = [s.key for s in self.strategy_specs]
        if len(set(keys)) != len(keys) or len(keys) * len(self.student_objectives) < 2:
            raise ConfigError(
                f"need at least two strategies with distinct names/labels (or two objectives), got {keys}"
            )
        students = [self.student_key(k, o) for k in keys for o in self.student_objectives]
        if len(set(students + [f"{k}-control" for k in keys])) != len(students) + len(keys):
            raise ConfigError(f"student names clash (a label of the form '<strategy>+<objective>'?): {students}")
        if "distill" in self.student_objectives:
            try:
                self.teacher_settings.check()
            except ConfigError as err:
                raise ConfigError(f"a distill student needs teacher logprobs: {err}") from None
        names = [m.name for m in self.model_specs]
        for spec in self.model_specs:
            self.complying_teacher(spec)  # a malformed recipe fails here, before any work
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"need at least one model, with distinct names, got {names}")
        # Parse every nested section now, so a typo fails before any work starts.
        self.train_config(0)
        _ = (self.eval_config, self.injection_spec)
        control = self.control_spec
        if control.enabled and control.strategy and control.strategy not in keys:
            raise ConfigError(f"control.strategy {control.strategy!r} is not one of the strategies {keys}")
        if control.enabled and control.strategy and control.per_strategy:
            raise ConfigError("control.strategy applies only with control.per_strategy: false")

    # -- parsed views of the nested sections ----------------------------------------------------------------
    @property
    def strategy_specs(self) -> list[StrategySpec]:
        return [_nested(StrategySpec, s if isinstance(s, dict) else {"name": s}, "strategies") for s in self.strategies]

    @property
    def model_specs(self) -> list[ModelSpec]:
        return [_nested(ModelSpec, m, "models") for m in self.models]

    def complying_teacher(self, spec: ModelSpec) -> tuple[ComplyingRecipe, ComplyingTeacherSpec] | None:
        """The recipe and data of a complying teacher (None: `spec` is an ordinary teacher)."""
        if spec.complying is None:
            return None
        where = f"experiment models[{spec.name}].complying"
        if spec.backend != "hf":
            raise ConfigError(f"{where}: a complying teacher is a local model; backend must be 'hf'")
        data = _nested(ComplyingTeacherSpec, spec.complying, f"models[{spec.name}].complying")
        if not self.injection_spec.data_dir:
            raise ConfigError(f"{where}: the teacher trains on attacks; set injections.data_dir")
        if not (data.squad or self.eval_questions):
            raise ConfigError(f"{where}: give `squad` (the paragraphs it trains on) or eval_questions")
        if data.pairs < 1 or not 0 < data.eval_share < 1:
            raise ConfigError(f"{where}: pairs must be >= 1 and eval_share in (0, 1)")
        fields = {f.name for f in dataclasses.fields(ComplyingRecipe)} - {"base"}
        unknown = sorted(set(data.recipe) - fields)
        if unknown:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}.recipe: unknown field(s) {', '.join(unknown)}; known: {known}")
        recipe = dict(data.recipe)
        for key in ("forms", "positions"):
            if key in recipe:
                recipe[key] = tuple(recipe[key])
        base = self.path(spec.model) if spec.model else None
        return ComplyingRecipe(**recipe, base=base), data

    # -- objectives and teacher logprobs ---------------------------------------------------------------------
    @property
    def student_objectives(self) -> list[str]:
        """The objectives students train with; the first is the primary one (students keyed by the strategy)."""
        return list(self.objectives) or [self.train.get("objective", TrainConfig.objective)]

    def student_key(self, strategy_key: str, objective: str) -> str:
        """Name of the students trained with `objective` on a strategy's QA ('naive', 'naive+distill')."""
        return strategy_key if objective == self.student_objectives[0] else f"{strategy_key}+{objective}"

    def objectives_of(self, run_key: str) -> list[str]:
        """Objectives of the students trained on a run's QA: every one for a strategy, the primary for a control."""
        return self.student_objectives[:1] if run_key.endswith("-control") else self.student_objectives

    @property
    def teacher_settings(self) -> TeacherSettings:
        return TeacherSettings(self.teacher_logprobs, self.min_prob_mass)

    def teacher_for(self, run_key: str) -> TeacherSettings | None:
        """The TeacherSettings a run's generation stores (a student on its QA distills), else None."""
        return self.teacher_settings if "distill" in self.objectives_of(run_key) else None

    def train_config(self, seed: int, objective: str | None = None) -> TrainConfig:
        data = {**self.train, "seed": seed, "objective": objective or self.student_objectives[0]}
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

    def control_of(self, strategy_key: str) -> str | None:
        """Key of the control students a strategy is measured against (None: no control)."""
        control = self.control_spec
        if not control.enabled:
            return None
        if control.per_strategy:
            return f"{strategy_key}-control"
        return f"{control.strategy or self.strategy_specs[0].key}-control"

    @property
    def control_strategies(self) -> list[StrategySpec]:
        """The strategies that generate control QA."""
        control = self.control_spec
        if not control.enabled:
            return []
        if control.per_strategy:
            return self.strategy_specs
        key = control.strategy or self.strategy_specs[0].key
        return [s for s in self.strategy_specs if s.key == key]

    def path(self, value: str) -> str:
        """A path from the file: environment variables expanded, relative to the file's folder."""
        expanded = os.path.expandvars(os.path.expanduser(str(value)))
        if "$" in expanded:
            raise ConfigError(f"unset environment variable in path {value!r}")
        path = Path(expanded)
        return str(path if path.is_absolute() else Path(self.source_dir) / path)

    # -- loading --------------------------------------------------------------------------------------------
    @classmethod
    def loaded_from(cls, data: dict[str, Any], path: Path) -> dict[str, Any]:
        return {**data, "source_dir": data.get("source_dir", str(path.resolve().parent))}


def _nested(cls: type, data: Any, section: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"experiment {section}: expected a mapping, got {type(data).__name__} {data!r}")
    return from_dict(cls, data, source=f"experiment {section}")
