"""Start a real OpenAI-compatible server (`transformers serve`) on 127.0.0.1 for tests.

The start-up code lives in robustqa.lm.local_server, shared with benchmarks/openai_throughput.py.
"""

from robustqa.lm.local_server import ServedModel, free_port, transformers_server  # noqa: F401
