"""A small HTTP proxy on 127.0.0.1 that injects faults in front of a real server, for the backend's retry
tests.

Each incoming request takes the next fault from a schedule (then `default`, which is "ok" unless told
otherwise):

  ok        forward to the upstream server and relay its answer
  500, 502, 503, 504, 400    answer with that status and a JSON error body, without forwarding
  429       answer 429 with `Retry-After: <retry_after>`
  hang      read the request, then say nothing for `hang_seconds` (longer than the client's timeout) and close
  drop      read the request, then close the connection without a byte of answer
  truncate  forward, then send the status line and half the headers and close (dropped mid-response)
  null      forward, then relay the answer with every choice's content set to null

The proxy runs an asyncio loop in a daemon thread; every answer closes its connection, which keeps the HTTP
handling trivial. `injected` counts the faults served by kind, `forwarded` the requests that reached
upstream and `peak` the most connections open at once.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter, deque
from collections.abc import Iterable

import httpx

_REASONS = {
    200: "OK",
    400: "Bad Request",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


FAULTS = frozenset({"ok", "hang", "drop", "truncate", "null", *(str(code) for code in _REASONS if code != 200)})


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        schedule: Iterable[str] = (),
        default: str = "ok",
        retry_after: float = 0.2,
        hang_seconds: float = 3.0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.schedule = deque(schedule)
        unknown = set(self.schedule) - FAULTS | ({default} - FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {sorted(FAULTS)}")
        self.default = default
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.injected: Counter[str] = Counter()
        self.forwarded = 0
        self.peak = 0
        self._open_now = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fault-proxy")
        self._server: asyncio.AbstractServer | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _start(self) -> asyncio.AbstractServer:
        self._client = httpx.AsyncClient(timeout=120.0)
        return await asyncio.start_server(self._handle, "127.0.0.1", 0)

    def stop(self) -> None:
        async def _stop() -> None:
            assert self._server is not None
            self._server.close()
            # End connections still hanging, so none outlives the loop.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._client.aclose()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- one connection --------------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open_now += 1
        self.peak = max(self.peak, self._open_now)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            length = int({k.lower(): v for k, v in headers.items()}.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
            fault = self.schedule.popleft() if self.schedule else self.default
            if fault != "ok":
                self.injected[fault] += 1
            await self._serve(fault, method, path, body, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away first; nothing to answer
        finally:
            self._open_now -= 1
            writer.close()

    async def _serve(self, fault: str, method: str, path: str, body: bytes, writer: asyncio.StreamWriter) -> None:
        if fault == "drop":
            return
        if fault == "hang":
            await asyncio.sleep(self.hang_seconds)
            return
        if fault.isdigit():
            status = int(fault)
            extra = {"Retry-After": f"{self.retry_after:g}"} if status == 429 else {}
            payload = json.dumps({"error": {"message": f"injected fault {status}", "code": status}}).encode()
            await _respond(writer, status, payload, extra)
            return
        upstream = await self._client.request(
            method, self.upstream + path, content=body, headers={"content-type": "application/json"}
        )
        self.forwarded += 1
        if fault == "truncate":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: applic")
            await writer.drain()
            return
        payload = upstream.content
        if fault == "null":
            data = upstream.json()
            for choice in data.get("choices", []):
                choice["message"]["content"] = None
            payload = json.dumps(data).encode()
        await _respond(writer, upstream.status_code, payload, {})


async def _respond(writer: asyncio.StreamWriter, status: int, payload: bytes, extra: dict[str, str]) -> None:
    head = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Connection: close",
    ]
    head += [f"{k}: {v}" for k, v in extra.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
    await writer.drain()
