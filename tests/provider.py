"""A real HTTP SMS provider on loopback for the tests (stdlib server): it can fail its first
requests, and keeps every request and the Idempotency-Key of each one it accepted."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar


class Provider(http.server.BaseHTTPRequestHandler):
    """An SMS provider that fails the first `fail` requests with 500."""

    fail = 2
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    delivered: ClassVar[list[str]] = []
    """The Idempotency-Key of each request answered 200."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Provider.received.append((dict(self.headers), body))
        code = 500 if len(Provider.received) <= Provider.fail else 200
        if code == 200:
            Provider.delivered.append(self.headers["Idempotency-Key"])
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve_provider(fail: int = 2) -> Iterator[str]:
    """Start the provider (state reset); yields its URL."""
    Provider.received = []
    Provider.delivered = []
    Provider.fail = fail
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/sms"
    finally:
        server.shutdown()
        server.server_close()
