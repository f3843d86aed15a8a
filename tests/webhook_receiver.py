"""A real HTTP receiver on 127.0.0.1 for the webhook tests (http.server in a thread): it
records every request and answers what the test scripted, in order."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# A scripted answer: a status code, HANG (no answer until the test ends: a read timeout),
# DRIP (a header a byte at a time, each byte well within a read timeout, never ending) or
# NUL (200 with NUL characters in the body).
HANG = "hang"
DRIP = "drip"
NUL = "nul"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: deque[int | str] = deque()
        self.default: int | str = 200
        self.released = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                    answer = receiver.script.popleft() if receiver.script else receiver.default
                if answer == HANG:
                    receiver.released.wait(10)
                    return
                if answer == DRIP:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    while not receiver.released.wait(0.05):
                        try:
                            self.wfile.write(b"z")
                            self.wfile.flush()
                        except OSError:
                            return  # the client gave up
                    return
                if answer == NUL:
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"ok\x00\x00")
                    return
                self.send_response(int(answer))
                if 300 <= int(answer) < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(f"answer {answer} ".encode() + b"x" * 2000)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def answer(self, *answers: int | str) -> None:
        """The next answers, in order (then `default`)."""
        self.script.extend(answers)

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def readme_snippet(heading: str = "### Checking the signature") -> str:
    """The first ```python block under `heading` in the README."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    after = text[text.index(heading) :]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def _readme_verify() -> Callable[..., bool]:
    namespace: dict[str, object] = {}
    exec(readme_snippet(), namespace)  # the README's own code, run as a receiver would
    return namespace["verify"]  # type: ignore[return-value]


# verify(secret, header, body, tolerance=300): the README's verification snippet, as written there.
verify = _readme_verify()
