"""Start `transformers serve` on 127.0.0.1 for a local model directory, for tests and benchmarks.

Needs the `transformers[serving]` extra (fastapi, uvicorn). The server is pinned to the directory, so requests
must name the directory's path as their `model`. Start-up is measured (`ServedModel.startup_seconds`). The
process is ours: it is stopped by its own pid when the context exits, and its log is shown when it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from robustqa.errors import BackendError


@dataclass
class ServedModel:
    base_url: str  # ends in /v1
    model: str  # the name requests must use
    startup_seconds: float
    port: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_command() -> list[str]:
    exe = shutil.which("transformers") or str(Path(sys.executable).with_name("transformers"))
    return [exe, "serve"]


@contextmanager
def transformers_server(
    model_dir: str | Path,
    startup_timeout: float = 120.0,
    *,
    dtype: str = "float32",
    threads: int = 1,
    extra_args: Sequence[str] = (),
) -> Iterator[ServedModel]:
    """Serve `model_dir` on a free port; `threads` sets the server's torch threads (OMP_NUM_THREADS), and
    `extra_args` go to `transformers serve` as they are (e.g. `["--continuous-batching"]`)."""
    port = free_port()
    model = str(model_dir)
    cmd = [
        *_serve_command(),
        model,
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--device", "cpu", "--dtype", dtype, "--log-level", "warning"),
        *extra_args,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    log = tempfile.NamedTemporaryFile("w+", prefix="robustqa-serve-", suffix=".log", delete=False)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}/health", startup_timeout, log.name)
        yield ServedModel(f"http://127.0.0.1:{port}/v1", model, time.perf_counter() - t0, port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()
        os.unlink(log.name)


def _wait_ready(proc: subprocess.Popen, health_url: str, timeout: float, log_path: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BackendError(f"transformers serve exited with {proc.returncode}:\n{_tail(log_path)}")
        try:
            if httpx.get(health_url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise BackendError(f"transformers serve not ready after {timeout}s:\n{_tail(log_path)}")


def _tail(path: str, chars: int = 3000) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")[-chars:]
