"""A JSON-over-HTTP test server on a free port of 127.0.0.1: `handle(path, body)` returns (status, payload).

The fake OpenAI-compatible servers of the tests share it, so each fakes only its answers, not the HTTP plumbing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handle = Callable[[str, dict], tuple[int, Any]]


@contextmanager
def serve_json(handle: Handle, keep_alive: bool = False) -> Iterator[str]:
    """Serve `handle` in a thread and yield the root URL ("http://127.0.0.1:PORT"); stopped when the context exits.
    `keep_alive` speaks HTTP/1.1 with persistent connections, as real servers do."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
            status, answer = handle(self.path, body)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
