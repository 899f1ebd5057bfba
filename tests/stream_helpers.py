"""Helpers of the streaming tests (tests/test_stream.py, tests/test_page.py): the app on the real
waitress server in this process, an event-stream reader, and :class:`HeldEngine`, the real engine
whose model calls after the first wait until the test releases them (deterministic "rows before
the last one")."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field

from waitress import create_server, wasyncore

from testkit.shared_data import iwslt_talks

PATH = "/api/translate/stream"
WAIT = 120  # seconds: a held call or a read never waits longer (two shared cores)


def long_article(sentences: int = 62) -> str:
    """``sentences`` distinct IWSLT lines, five to a paragraph: a 60+ sentence article."""
    lines = [line for line in iwslt_talks("dev2010")[0] if line and line[-1] in ".?!"][:sentences]
    assert len(lines) == sentences
    return "\n\n".join(" ".join(lines[at : at + 5]) for at in range(0, len(lines), 5))


class HeldEngine:
    """The real engine; model calls after the first ``free_calls`` wait for :attr:`release`."""

    def __init__(self, inner, free_calls: int = 1, fail_after: int | None = None):
        self.inner = inner  # engine_attention finds the real engine's attention here
        self.free_calls = free_calls
        self.fail_after = fail_after
        self.release = threading.Event()
        self.calls: list[int] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def translate(self, sentences, settings=None):
        self.calls.append(len(sentences))
        if self.fail_after is not None and len(self.calls) > self.fail_after:
            raise RuntimeError("the model crashed")
        if len(self.calls) > self.free_calls:
            assert self.release.wait(WAIT), "the test never released the model"
        return self.inner.translate(sentences, settings)


@dataclass
class Live:
    """An app on a real waitress server, in this process, on a free loopback port."""

    app: object
    server: object = None
    port: int = 0
    thread: threading.Thread | None = None

    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        # stock waitress, as each server worker runs it (mt.web.runtime): rows written as yielded
        self.server = create_server(self.app, host="127.0.0.1", port=0, threads=4, send_bytes=1,
                                    channel_request_lookahead=1)
        self.port = self.server.effective_port
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):  # waitress's loop in short turns, so that close() can stop it from this thread
        while not self.stop.is_set():
            wasyncore.loop(timeout=0.05, map=self.server._map, count=1)
        self.server.close()

    def close(self):
        self.stop.set()
        self.thread.join(WAIT)

    def post(self, payload, headers: dict | None = None, raw: bytes | None = None) -> "Stream":
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        body = raw if raw is not None else json.dumps(payload).encode("ascii")
        connection.request("POST", PATH, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        return Stream(connection, connection.getresponse())


@dataclass
class Stream:
    """A response read event by event, with the time each event arrived."""

    connection: http.client.HTTPConnection
    response: http.client.HTTPResponse
    events: list[dict] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the SSE event: lines
    arrived: list[float] = field(default_factory=list)

    @property
    def status(self) -> int:
        return self.response.status

    def header(self, name: str) -> str:
        return self.response.getheader(name) or ""

    def next_event(self) -> dict | None:
        name, data = None, []
        while True:
            line = self.response.readline()
            if not line:
                return None  # the stream ended
            line = line.decode("utf-8").rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                event = json.loads("\n".join(data))
                self.events.append(event)
                self.names.append(name)
                self.arrived.append(time.perf_counter())
                return event

    def until(self, kind: str) -> dict:
        while True:
            event = self.next_event()
            assert event is not None, f"the stream ended before a {kind} event: {self.kinds()}"
            if event["event"] == kind:
                return event

    def rest(self) -> list[dict]:
        while self.next_event() is not None:
            pass
        self.connection.close()
        return self.events

    def json(self) -> dict:
        body = json.loads(self.response.read())
        self.connection.close()
        return body

    def kinds(self) -> list[str]:
        return [event["event"] for event in self.events]


def wait_for(condition, timeout: float = WAIT) -> None:
    """Until the server thread has got there (a held model call, say)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
