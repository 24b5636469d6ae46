"""The generation run's configuration: one dataclass, every field with a default and help text, loadable from YAML.

A YAML file sets any field below. A strategy is either a registered name with keyword parameters:

    strategy: robust
    strategy_params: {consistency_k: 5}

or a composition of registered components (then `strategy` is only the name the records carry):

    strategy: my_ablation
    selector: {name: stratified, unit: sentence}
    question_writer: {name: targeted}
    answerer: {name: context, samples: 5, temperature: 0.7}
    span_filters: [{name: sanitizer}, {name: instruction}]
    filters: [{name: verifier}, {name: consistency}]
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .budget import MAX_BUDGET
from .config_base import ConfigBase, from_dict  # noqa: F401  (from_dict: its old import path)
from .config_base import option as _f
from .errors import ConfigError
from .registry import REGISTRY
from .strategy import ComposedStrategy, Strategy
from .typecheck import describe_value, type_ok
from .types import stable_hash

# Upper bounds of the run settings: past these a run would never finish.
MAX_BATCH = 100_000
MAX_ATTEMPTS = 100

COMPOSITION_KEYS = ("selector", "question_writer", "answerer", "span_filters", "filters")


@dataclass
class GenerateConfig(ConfigBase):
    """Configuration of `robustqa generate`.

    Strategy: strategy, strategy_params, selector, question_writer, answerer, span_filters, filters.
    Run: budget, seed, batch_size, shard, write_rejected.
    Model: backend, model, base_url, api_key_env, concurrency, max_retries, timeout, cache.
    Teacher logprobs: teacher_logprobs, min_prob_mass.
    """

    strategy: str = _f("naive", "Registered strategy name (see `robustqa strategies`), or the name of a composition.")
    strategy_params: dict = _f({}, "Keyword arguments for the registered strategy.")
    selector: dict | str | None = _f(None, "Composition: the selector spec {name: ..., **params}.")
    question_writer: dict | str | None = _f(None, "Composition: the question writer spec.")
    answerer: dict | str | None = _f(None, "Composition: the answerer spec.")
    span_filters: list = _f([], "Composition: span filter specs, applied before any question is asked.")
    filters: list = _f([], "Composition: QA filter specs, applied in order after answering.")
    attempts: int = _f(
        1,
        "Composition: tries per target; a rejected pair is asked again on the same target with a derived seed "
        "(more LM calls, higher coverage of kept pairs).",
    )
    budget: int = _f(100, "Number of QA pairs to plan over the whole corpus (kept plus rejected).")
    seed: int = _f(0, "Run seed; every item's seed derives from it, the document and the item index.")
    batch_size: int = _f(16, "Work items handed to the strategy (and so to the LM backend) at once.")
    shard: str | None = _f(None, "'I/N': run only the I-th of N deterministic partitions of the work (0-based).")
    write_rejected: bool = _f(True, "Write rejected pairs, with their decisions, to OUT.rejected.jsonl.")
    backend: str = _f(
        "auto",
        "LM backend: 'auto' (the embedded model on CTranslate2 in float32 when ctranslate2 is installed, else "
        "transformers), 'hf' (local transformers), 'ct2' (local CTranslate2, int8) or 'openai' (any "
        "OpenAI-compatible server).",
    )
    model: str | None = _f(
        None,
        "hf: a local model directory (default: the embedded SmolLM2-135M-Instruct); openai: the served model name.",
    )
    base_url: str | None = _f(None, "openai: the server's base URL, e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str = _f("OPENAI_API_KEY", "openai: the environment variable holding the API key.")
    concurrency: int = _f(8, "openai: requests in flight at once.")
    max_retries: int = _f(6, "openai: retries of a request on transient errors (429, 5xx, timeouts).")
    timeout: float = _f(120.0, "openai: seconds before a request times out (then retried).")
    cache: str | None = _f("auto", "SQLite response cache: a path, 'auto' (the user cache dir) or null (off).")
    teacher_logprobs: int = _f(
        0,
        "K > 0: store, for every kept record, the teacher's token ids of the answer and its top-K log-probabilities "
        "at each position (teacher-forced with the answering context; needs a backend that scores: hf, ct2, or "
        "openai on a vLLM server). "
        "Cartridges' default is 20.",
    )
    min_prob_mass: float = _f(
        0.99, "With teacher_logprobs: keep per position the leading top-K entries until their mass reaches this."
    )

    # -- building -----------------------------------------------------------------------------------------------
    def build_strategy(self) -> Strategy:
        if self.selector is None:
            if any(getattr(self, k) for k in COMPOSITION_KEYS):
                raise ConfigError("a composition needs a selector (plus question_writer and answerer)")
            if self.attempts != 1:
                raise ConfigError(
                    "attempts is a composition key; for a registered strategy set strategy_params.attempts"
                )
            return REGISTRY.make_strategy(self.strategy, **self.strategy_params)
        if self.question_writer is None or self.answerer is None:
            raise ConfigError("a composition needs selector, question_writer and answerer")
        strategy = ComposedStrategy(
            selector=REGISTRY.make_component("selector", self.selector),
            question_writer=REGISTRY.make_component("question_writer", self.question_writer),
            answerer=REGISTRY.make_component("answerer", self.answerer),
            span_filters=[REGISTRY.make_component("span_filter", s) for s in self.span_filters],
            filters=[REGISTRY.make_component("filter", s) for s in self.filters],
            name=self.strategy,
            attempts=self.attempts,
        )
        strategy.validate()
        return strategy

    def fingerprint(self, strategy: Strategy, model_id: str) -> str:
        """Hash of everything that decides the records' content: strategy, model, budget and seed."""
        payload = {
            "strategy": strategy.describe(),
            "name": self.strategy,
            "backend": self.backend,
            "model": model_id,
            "budget": self.budget,
            "seed": self.seed,
        }
        if self.teacher_logprobs:  # absent otherwise, so runs without teacher logprobs keep their fingerprint
            payload["teacher"] = {"top_k": self.teacher_logprobs, "min_prob_mass": self.min_prob_mass}
        return stable_hash(json.dumps(payload, sort_keys=True))

    def validate(self) -> None:
        """Bounds of the run settings, checked before anything is read or written (types are checked on load)."""
        for key in ("budget", "seed", "batch_size", "attempts", "concurrency", "max_retries"):
            if not type_ok(getattr(self, key), int):
                raise ConfigError(f"{key} must be int, got {describe_value(getattr(self, key))}")
        if not 1 <= self.budget <= MAX_BUDGET:
            raise ConfigError(f"budget must be between 1 and {MAX_BUDGET:,}, got {self.budget}")
        if not -(2**63) <= self.seed < 2**63:
            raise ConfigError(f"seed must fit in 64 bits, got {self.seed}")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ConfigError(f"batch_size must be between 1 and {MAX_BATCH:,}, got {self.batch_size}")
        attempts = self.strategy_params.get("attempts", self.attempts)
        if type_ok(attempts, int) and not 1 <= attempts <= MAX_ATTEMPTS:
            raise ConfigError(f"attempts must be between 1 and {MAX_ATTEMPTS}, got {attempts}")
        if not 1 <= self.concurrency <= 4096:
            raise ConfigError(f"concurrency must be between 1 and 4096, got {self.concurrency}")
        if not 0 <= self.max_retries <= 1000:
            raise ConfigError(f"max_retries must be between 0 and 1000, got {self.max_retries}")
        if not (type_ok(self.timeout, float) and 0 < self.timeout < float("inf")):
            raise ConfigError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        self.parsed_shard()

    def teacher_settings(self):
        """The teacher-logprob post-step's settings, or None when teacher_logprobs is 0."""
        from .teacher_logprobs import TeacherSettings

        if not self.teacher_logprobs:
            return None
        settings = TeacherSettings(self.teacher_logprobs, self.min_prob_mass)
        settings.check()
        return settings

    def parsed_shard(self) -> tuple[int, int]:
        if self.shard is None:
            return (0, 1)
        try:
            index, count = (int(x) for x in str(self.shard).split("/"))
        except ValueError:
            raise ConfigError(f"shard must look like I/N (e.g. 0/4), got {self.shard!r}") from None
        if not 0 <= index < count:
            raise ConfigError(f"shard {self.shard!r}: need 0 <= I < N")
        return index, count
