"""Student training on generated QA (TRL)."""

if __name__ != "robustqa.training":  # pragma: no cover - the guard itself is tested from a subprocess
    # PyPI has an unrelated top-level `training` package; this folder must only ever be robustqa.training.
    raise ImportError("import robustqa.training, not training: the folder is installed as robustqa.training")
