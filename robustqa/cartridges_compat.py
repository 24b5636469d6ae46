"""Read a Cartridges self-study configuration and turn it into a robustqa `GenerateConfig`.

Cartridges configures self-study in Python (`SynthesizeConfig(synthesizer=SelfStudySynthesizer.Config(...),
num_samples=...)`); its dumped form, or a hand-written YAML/JSON file in either of these shapes, is read here:

    # nested, as SynthesizeConfig                      # flat
    num_samples: 512                                   num_samples: 512
    batch_size: 32                                     seed_prompts: [structuring, question]
    synthesizer:                                       min_tokens_per_chunk: 512
      client: {model_name: Qwen/Qwen3-4b,              max_tokens_per_chunk: 1024
               url: "http://localhost:8000"}           temperature_a: 0.6
      temperature_a: 0.6                               temperature_b: 0.0
      max_completion_tokens_a: 512                     max_completion_tokens_a: 512
      temperature_b: 0.0                               max_completion_tokens_b: 1024
      max_completion_tokens_b: 1024                    paths: [paper.tex]
      resources:
        - path: paper.tex
          seed_prompts: [structuring, summarization, question]
          chunker: {tokenizer: Qwen/Qwen3-4b, min_tokens_per_chunk: 512, max_tokens_per_chunk: 1024}

Mapping: num_samples -> budget; seed_prompts, min/max_tokens_per_chunk (a null minimum: fixed length),
temperature_a/b, max_completion_tokens_a/b, prob_thinking and system_prompt_template -> the strategy's knobs
(`seed_prompts`, `min_tokens`, `max_tokens`, `temperature_a`, `temperature_b`, `max_tokens_a`,
`max_tokens_b`, `prob_thinking`, `system_prompt_template`); num_top_logprobs and min_prob_mass ->
`teacher_logprobs` and `min_prob_mass` (the teacher's top-k logprobs that Cartridges' default
`targets="logits"` training needs); client.model_name/url -> the `openai` backend's model and base URL (`/v1`
appended); the chunker's tokenizer -> `tokenizer` when it is a local directory. Knobs the file leaves out
take Cartridges' defaults (temperature_a 0.6, max_completion_tokens_a 512, temperature_b 0.0,
max_completion_tokens_b 1024, prob_thinking 0.0, num_top_logprobs 20, min_prob_mass 0.99), and settings are
compared with Cartridges' defaults, so a config means what it meant in Cartridges. What robustqa does not
reproduce (multi-round conversations, tools, resource and chunker classes other than text files and token
chunks, keys it does not know, at any depth) is reported in `notes`,
never silently dropped. Run as another strategy (`strategy="robust"`), the corpus,
budget, model and server carry over, and so does every knob the strategy's factory takes by the same name; the
knobs it does not take (a fixed-target strategy has no chunk sizes or seed prompts) are listed in `notes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import GenerateConfig
from .errors import ConfigError
from .io.bounded import YamlBoundsError, load_yaml
from .io.outputs import require_regular_input
from .types import Document

# Cartridges knob -> robustqa strategy parameter, with Cartridges' own defaults where it has them.
SYNTHESIZER_KNOBS = {
    "temperature_a": ("temperature_a", 0.6),
    "max_completion_tokens_a": ("max_tokens_a", 512),
    "temperature_b": ("temperature_b", 0.0),
    "max_completion_tokens_b": ("max_tokens_b", 1024),
    "prob_thinking": ("prob_thinking", 0.0),
}
# Mapped only when the file sets it: robustqa's own template has the same form (the chunk in <info> tags).
TEMPLATE_KNOB = ("system_prompt_template", "system_prompt_template")
# Cartridges' teacher-logprob settings (SelfStudySynthesizer.Config) -> GenerateConfig fields, with its defaults.
TEACHER_KNOBS = {"num_top_logprobs": ("teacher_logprobs", 20), "min_prob_mass": ("min_prob_mass", 0.99)}
CHUNKER_KNOBS = {"min_tokens_per_chunk": "min_tokens", "max_tokens_per_chunk": "max_tokens"}
# Settings that do not change the generated data (logging, saving, scheduling).
NO_EFFECT_KEYS = {
    "name",
    "wandb",
    "upload_to_wandb",
    "save_wandb_preview",
    "upload_to_hf",
    "hf_repo_id",
    "output_dir",
    "run_dir",
    "max_num_batches_in_parallel",
    "worker_timeout",
    "launch_id",
    "script_id",
    "run_id",
    "previous_run_dir",
    "parallelism",
    "save_wandb_artifact",
    "handle_exceptions",
}
# Settings that change the data, which robustqa's single-round strategies do not reproduce, with Cartridges'
# defaults (at which they change nothing).
UNSUPPORTED = {"max_rounds": 1, "use_tools_a": False, "use_tools_b": False, "tools": []}
# Tool settings that only matter when tools are used.
TOOL_ONLY = ("tool_prompt_template", "max_tool_tokens")
# Resource and chunker classes robustqa reproduces (a text or a text file cut into token windows).
TEXT_RESOURCES = {"TextResource", "TextFileResource"}
TOKEN_CHUNKERS = {"TokenChunker"}
RESOURCE_KEYS = {"path", "text", "seed_prompts", "chunker", "tokenizer", "year", "include_year", *CHUNKER_KNOBS}
CHUNKER_KEYS = {"tokenizer", *CHUNKER_KNOBS}
CLIENT_KEYS = {"model_name", "url", "base_url"}
CLASS_KEYS = ("_config_type", "_target_", "target", "_class", "class")


@dataclass
class CartridgesImport:
    """A translated Cartridges config: robustqa config, the documents it names, what did not carry over."""

    config: GenerateConfig
    documents: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str = ""


def from_cartridges(path: str | Path, strategy: str = "naive") -> GenerateConfig:
    """The `GenerateConfig` equivalent to a Cartridges self-study config, run as `strategy`: `naive` takes
    every knob; another strategy those its factory has by name (`read_cartridges().notes` lists the rest)."""
    return read_cartridges(path, strategy).config


def read_cartridges(path: str | Path, strategy: str = "naive") -> CartridgesImport:
    path = Path(path)
    data = _load(path)
    source = str(path)
    synth = data.get("synthesizer", data)
    if not isinstance(synth, Mapping):
        raise ConfigError(f"{source}: 'synthesizer' must be a mapping, got {type(synth).__name__}")
    notes: list[str] = []
    resources = _resources(synth, data, source)

    # Knobs the file sets, then Cartridges' defaults for the rest (so the config means what it meant there).
    explicit: dict[str, Any] = {}
    for key, (param, _) in SYNTHESIZER_KNOBS.items():
        if key in synth or key in data:
            explicit[param] = synth.get(key, data.get(key))
    if TEMPLATE_KNOB[0] in synth or TEMPLATE_KNOB[0] in data:
        explicit[TEMPLATE_KNOB[1]] = synth.get(TEMPLATE_KNOB[0], data.get(TEMPLATE_KNOB[0]))
    explicit.update(_agreeing("seed_prompts", resources, source, lambda r: r.get("seed_prompts")))
    for key, param in CHUNKER_KNOBS.items():
        setting = _agreeing(key, resources, source, lambda r, k=key: _chunker(r).get(k, _UNSET), unset=_UNSET)
        if key in setting:  # a null minimum is kept: Cartridges then cuts chunks of exactly the maximum
            explicit[param] = setting[key]
    tokenizer = _agreeing("tokenizer", resources, source, lambda r: _chunker(r).get("tokenizer"))
    tokenizer = tokenizer.get("tokenizer")
    if tokenizer is not None:
        if Path(str(tokenizer)).expanduser().is_dir():
            explicit["tokenizer"] = str(Path(str(tokenizer)).expanduser())
        else:
            notes.append(
                f"chunk sizes count robustqa's word pieces unless generate finds the model's tokenizer locally: "
                f"tokenizer {tokenizer!r} is not a local directory (download it and set strategy_params.tokenizer "
                "to count its tokens)"
            )
    defaults = {param: default for param, default in SYNTHESIZER_KNOBS.values()}
    params, skipped = _applicable(strategy, {**defaults, **explicit}, source)
    skipped = [k for k in skipped if k in explicit]
    if skipped:
        notes.append(
            f"strategy {strategy!r} has no knob(s) {', '.join(skipped)}: NOT applied (it samples its own "
            "way; its own defaults hold)"
        )

    fields: dict[str, Any] = {"strategy": strategy, "strategy_params": params}
    for key, (name, default) in TEACHER_KNOBS.items():
        value = synth.get(key, data.get(key, default))
        fields[name] = 0 if value is None and name == "teacher_logprobs" else value
    if "num_samples" in data:
        fields["budget"] = data["num_samples"]
    else:
        notes.append(f"no num_samples: budget stays at the default {GenerateConfig().budget}")
    if "batch_size" in data:
        fields["batch_size"] = data["batch_size"]
        notes.append(
            "batch_size: in Cartridges all conversations of a batch share one chunk; robustqa draws a "
            "window per pair and uses batch_size only to batch LM requests"
        )
    fields.update(_client(synth.get("client"), source, notes))
    if fields["teacher_logprobs"] and fields.get("backend") == "openai":
        notes.append(
            f"teacher_logprobs {fields['teacher_logprobs']} (Cartridges' targets='logits' needs them): the openai "
            "backend scores a given answer on a vLLM server only (prompt log-probabilities, checked at start-up); "
            "with another server run generate with --backend hf --model LOCAL_DIR for them, or --teacher-logprobs 0 "
            "and train with targets='tokens'"
        )
    notes += _unsupported(synth, data)
    notes += _unrecognised(synth, data)
    notes += _resource_notes(resources)

    _check_knobs(params, source)
    config = GenerateConfig.from_dict(fields, source=source)
    try:
        # The knob values must be valid for the strategy: build it and plan one item on a small text.
        config.teacher_settings()
        built = config.build_strategy()
        built.plan(Document("check", "A short text to check that the strategy can plan with these knobs."), 1, 0)
    except ConfigError as exc:
        raise ConfigError(f"{source}: cannot run as strategy {strategy!r}: {exc}") from None
    documents = [str(r["path"]) for r in resources if r.get("path")]
    documents += [str(p) for p in _as_list(data.get("paths", []))]
    if any("text" in r and "path" not in r for r in resources):
        notes.append("a resource holds inline 'text': save it to a file and pass that file to robustqa generate")
    return CartridgesImport(config, documents, notes, source)


def to_yaml(imported: CartridgesImport) -> str:
    """A robustqa YAML config (for `robustqa generate --config`), with the translation notes on top."""
    cfg = imported.config
    body: dict[str, Any] = {
        "strategy": cfg.strategy,
        "strategy_params": dict(cfg.strategy_params),
        "budget": cfg.budget,
        "batch_size": cfg.batch_size,
        "teacher_logprobs": cfg.teacher_logprobs,
        "min_prob_mass": cfg.min_prob_mass,
    }
    if cfg.backend == "openai":
        body.update(backend=cfg.backend, model=cfg.model, base_url=cfg.base_url)
    docs = " ".join(imported.documents) or "DOCUMENTS..."
    header = [
        f"# robustqa config imported from the Cartridges self-study config {imported.source}",
        f"# run: robustqa generate {docs} --config THIS_FILE --out qa.jsonl",
    ]
    header += [f"# note: {n}" for n in imported.notes]
    return "\n".join(header) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


# -- helpers -------------------------------------------------------------------------------------------------


def _load(path: Path) -> Mapping[str, Any]:
    require_regular_input(path, ConfigError)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))  # YAML is a superset of JSON; bombs are refused
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except YamlBoundsError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML or JSON ({exc})".replace("\n", " ")) from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a Cartridges config must be a mapping, got {type(data).__name__}")
    return data


def _resources(synth: Mapping[str, Any], top: Mapping[str, Any], source: str) -> list[Mapping[str, Any]]:
    resources = synth.get("resources")
    if resources is None:  # the flat form: the resource's fields sit at the top level
        flat = {k: top[k] for k in ("seed_prompts", "tokenizer", *CHUNKER_KNOBS) if k in top}
        if "chunker" in top:
            flat["chunker"] = top["chunker"]
        return [flat]
    if not isinstance(resources, list) or not all(isinstance(r, Mapping) for r in resources):
        raise ConfigError(f"{source}: 'resources' must be a list of mappings")
    return resources


def _chunker(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    chunker = resource.get("chunker") or {}
    merged = {k: resource[k] for k in ("tokenizer", *CHUNKER_KNOBS) if k in resource}
    return {**merged, **chunker} if isinstance(chunker, Mapping) else merged


_UNSET = object()


def _agreeing(key: str, resources: list[Mapping[str, Any]], source: str, get, unset: Any = None) -> dict[str, Any]:
    """{key: value} when every resource that sets `key` agrees (robustqa applies one setting to all). A value
    equal to `unset` counts as not set (None by default; pass a sentinel to keep an explicit null)."""
    values = [get(r) for r in resources]
    values = [v for v in values if v is not unset]
    if not values:
        return {}
    if any(v != values[0] for v in values[1:]):
        raise ConfigError(
            f"{source}: the resources set {key} differently ({values}); robustqa applies one "
            "setting to every document: import each resource as its own config"
        )
    return {key: values[0]}


def _client(client: Any, source: str, notes: list[str]) -> dict[str, Any]:
    if client is None:
        return {}
    if not isinstance(client, Mapping):
        raise ConfigError(f"{source}: 'client' must be a mapping with model_name and url")
    fields: dict[str, Any] = {}
    ignored = sorted(k for k in set(client) - CLIENT_KEYS - set(CLASS_KEYS) if not str(k).startswith("_"))
    if ignored:
        notes.append(
            f"client settings {', '.join(ignored)} ignored: robustqa's openai backend has its own (concurrency, "
            "max_retries, timeout; thinking is sent as chat_template_kwargs.enable_thinking)"
        )
    if client.get("model_name"):
        fields["model"] = str(client["model_name"])
    url = client.get("url") or client.get("base_url")
    if url:
        url = str(url).rstrip("/")
        fields["backend"] = "openai"
        fields["base_url"] = url if url.endswith("/v1") else url + "/v1"
        notes.append(f"the server at {url} is reached through its OpenAI-compatible API ({fields['base_url']})")
    return fields


def _unsupported(synth: Mapping[str, Any], top: Mapping[str, Any]) -> list[str]:
    notes = []
    for key, default in UNSUPPORTED.items():
        value = synth.get(key, top.get(key, default))
        if value != default and value not in (None, []):
            notes.append(f"{key}={value!r} is NOT reproduced: robustqa's strategies run one round, without tools")
    uses_tools = any(synth.get(k, top.get(k)) for k in ("use_tools_a", "use_tools_b"))
    for key in TOOL_ONLY:
        if key in synth or key in top:
            effect = "NOT reproduced (tools are not)" if uses_tools else "no effect without tools"
            notes.append(f"{key}: {effect}")
    return notes


def _class_name(obj: Mapping[str, Any]) -> str | None:
    for key in CLASS_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value:
            parts = [p for p in value.replace(":", ".").split(".") if p and p != "Config"]
            return parts[-1] if parts else None
    return None


def _resource_notes(resources: list[Mapping[str, Any]]) -> list[str]:
    """Resource and chunker classes robustqa does not reproduce, and keys it does not know inside them."""
    notes = []
    for i, resource in enumerate(resources):
        kind = _class_name(resource)
        if kind is not None and kind not in TEXT_RESOURCES:
            notes.append(
                f"resources[{i}] is a {kind}: NOT reproduced as such; robustqa cuts token windows from the "
                "documents you pass to generate (save the resource's text to files and pass them)"
            )
        unknown = sorted(k for k in set(resource) - RESOURCE_KEYS - set(CLASS_KEYS) if not str(k).startswith("_"))
        if unknown:
            notes.append(f"not recognised, ignored: {', '.join(f'resources[{i}].{k}' for k in unknown)}")
        if resource.get("year") is not None or resource.get("include_year"):
            notes.append(f"resources[{i}].year/include_year: only Cartridges' genconvo seed prompts use them; ignored")
        chunker = resource.get("chunker")
        if isinstance(chunker, Mapping):
            kind = _class_name(chunker)
            if kind is not None and kind not in TOKEN_CHUNKERS:
                notes.append(
                    f"resources[{i}].chunker is a {kind}: NOT reproduced; robustqa cuts token windows "
                    "(min/max_tokens_per_chunk)"
                )
            unknown = sorted(k for k in set(chunker) - CHUNKER_KEYS - set(CLASS_KEYS) if not str(k).startswith("_"))
            if unknown:
                notes.append(f"not recognised, ignored: {', '.join(f'resources[{i}].chunker.{k}' for k in unknown)}")
    return notes


def _unrecognised(synth: Mapping[str, Any], top: Mapping[str, Any]) -> list[str]:
    known = (
        set(SYNTHESIZER_KNOBS)
        | set(CHUNKER_KNOBS)
        | set(TEACHER_KNOBS)
        | {TEMPLATE_KNOB[0], *TOOL_ONLY, *CLASS_KEYS}
        | NO_EFFECT_KEYS
        | set(UNSUPPORTED)
        | {
            "synthesizer",
            "client",
            "resources",
            "num_samples",
            "batch_size",
            "seed_prompts",
            "tokenizer",
            "chunker",
            "paths",
        }
    )
    keys = set(synth) | set(top)
    unknown = sorted(k for k in keys if k not in known and not str(k).startswith("_"))  # _: pydrantic internals
    return [f"not recognised, ignored: {', '.join(map(str, unknown))}"] if unknown else []


def _applicable(strategy: str, knobs: dict[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """(the knobs the strategy's factory takes, the names of those it does not)."""
    import inspect

    from .registry import REGISTRY

    REGISTRY.load_plugins()
    entry = REGISTRY.strategies.get(strategy)
    if entry is None:
        raise ConfigError(
            f"{source}: unknown strategy {strategy!r}; available: {', '.join(sorted(REGISTRY.strategies))}"
        )
    try:
        parameters = inspect.signature(entry.factory).parameters.values()
    except (TypeError, ValueError):  # a factory without a signature: let it judge the knobs itself
        return dict(knobs), []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return dict(knobs), []
    names = {p.name for p in parameters}
    return {k: v for k, v in knobs.items() if k in names}, [k for k in knobs if k not in names]


def _check_knobs(params: Mapping[str, Any], source: str) -> None:
    """Fail at import time, naming the Cartridges setting, rather than midway through a run (the strategy's
    own checks, run by planning one item, catch the rest, e.g. seed-prompt types it does not have)."""
    seeds = params.get("seed_prompts")
    if seeds is not None and (not isinstance(seeds, list) or not seeds):
        raise ConfigError(f"{source}: seed_prompts must be a non-empty list, got {seeds!r}")
    low = params.get("min_tokens", 1)
    if low is None:
        low = params.get("max_tokens", 1)
    high = params.get("max_tokens", low)
    if isinstance(low, int) and isinstance(high, int) and not 0 < low <= high:
        raise ConfigError(f"{source}: need 0 < min_tokens_per_chunk <= max_tokens_per_chunk, got {low}, {high}")


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]
