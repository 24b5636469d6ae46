"""robustqa: robust self-study QA generation, audit and student training."""

__version__ = "0.1.0"
