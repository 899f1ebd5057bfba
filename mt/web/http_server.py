"""waitress, made to answer every client in our error shape and to stop gracefully.

Two things plain waitress does not do:

* Body caps every client can read. waitress buffers a body before the app runs and, past its own
  cap, answers a plain-text 413 and closes while the client is still sending: a client that sends
  the whole body before reading (Python's urllib, requests) gets "connection reset". Here a body
  whose Content-Length is over the app's cap is read and *discarded* (never stored) up to a bounded
  drain limit, then the app answers its JSON 413; only past the drain limit is the request refused
  at its headers (still JSON, with the security headers; curl and clients that read while sending
  get it, the others cannot be helped without reading unbounded input).
* Graceful shutdown. SIGTERM and SIGINT stop accepting connections, let in-flight requests finish
  (at most ``shutdown_timeout`` seconds), close idle keep-alive connections, then return so the
  caller can flush the cache and exit 0.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import warnings

from waitress import create_server
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask

from .errors import ERROR_CODES, HTTP_CODES, LIBRE_PATH
from .security import SECURITY_HEADERS

log = logging.getLogger("mt.server")

DRAIN_MIN_BYTES = 64 << 20  # a body over the app's cap is discarded up to max(this, 4 × the cap)
DEFAULT_SHUTDOWN_TIMEOUT = 30.0


def drain_limit(max_body_bytes: int) -> int:
    return max(DRAIN_MIN_BYTES, 4 * max_body_bytes)


def error_body(path: str, status: int, code: str, message: str) -> tuple[bytes, list[tuple[str, str]]]:
    """The app's error shape (LibreTranslate's on /translate) for an answer waitress gives itself."""
    headers = [("Content-Type", "application/json"), *SECURITY_HEADERS.items(), ("Cache-Control", "no-store")]
    if path == LIBRE_PATH:
        headers.append(("X-Error-Code", code))
        payload: dict = {"error": message}
    else:
        payload = {"error": {"code": code, "message": message}}
    return json.dumps(payload).encode("utf-8"), headers


class JsonErrorTask(ErrorTask):
    """waitress's own errors (malformed request, headers too large, body over the drain limit) as JSON."""

    max_body_bytes = 0

    def execute(self):
        error = self.request.error
        status = error.code
        code = HTTP_CODES.get(status, "http_error")
        if status == 413:
            message = (f"the request body is over {self.max_body_bytes:,} bytes "
                       "(--max-body-bytes / MT_MAX_BODY_BYTES)")
        else:
            message = f"{error.reason}: {error.body}"
        assert code in ERROR_CODES
        body, headers = error_body(self.request.path or "/", status, code, message)
        self.status = f"{status} {error.reason}"
        self.response_headers.extend(headers)
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class DiscardingReceiver:
    """Consumes a fixed-length body without keeping it (waitress's IStreamConsumer)."""

    error = None

    def __init__(self, length: int):
        self.remain = length
        self.completed = length <= 0

    def __len__(self) -> int:
        return 0

    def received(self, data: bytes) -> int:
        used = min(self.remain, len(data))
        self.remain -= used
        self.completed = self.remain <= 0
        return used

    def getfile(self):
        import io

        return io.BytesIO()

    def getbuf(self):
        return None


class CappedParser(HTTPRequestParser):
    """A body over the app's cap (but under the drain limit) is read and thrown away; the app then
    sees its Content-Length and answers its JSON 413 before reading anything."""

    max_body_bytes = 0

    def parse_header(self, header_plus):
        super().parse_header(header_plus)
        if not self.chunked and self.content_length > self.max_body_bytes:
            if self.body_rcv is not None:
                self.body_rcv.getbuf().close()
            self.body_rcv = DiscardingReceiver(self.content_length)

    def close(self):
        if isinstance(self.body_rcv, DiscardingReceiver):
            return
        super().close()


def channel_class(max_body_bytes: int) -> type:
    parser = type("Parser", (CappedParser,), {"max_body_bytes": max_body_bytes})
    task = type("ErrorTask", (JsonErrorTask,), {"max_body_bytes": max_body_bytes})
    return type("Channel", (HTTPChannel,), {"parser_class": parser, "error_task_class": task})


def make_server(app, *, host: str, port: int, threads: int):
    """A waitress server for the app, with our body caps and error shape."""
    max_body = app.config["MT_MAX_BODY_BYTES"]
    with warnings.catch_warnings():  # send_bytes is deprecated in waitress 3 but has no replacement yet
        warnings.filterwarnings("ignore", "send_bytes", DeprecationWarning)
        server = create_server(
            app, host=host, port=port, threads=threads,
            max_request_body_size=drain_limit(max_body),
            ident="mt-vi-en", clear_untrusted_proxy_headers=True,
            send_bytes=1,  # write each chunk as the app yields it (POST /api/translate/stream), not at 18 kB
        )
    channel = channel_class(max_body)
    for listener in listeners(server):
        listener.channel_class = channel
    return server


def socket_map(server) -> dict:
    return getattr(server, "map", None) or server._map


def listeners(server) -> list:
    return [obj for obj in list(socket_map(server).values()) if isinstance(obj, BaseWSGIServer)]


def channels(server) -> list:
    return [obj for obj in list(socket_map(server).values()) if isinstance(obj, HTTPChannel)]


def is_idle(channel) -> bool:
    return not channel.requests and channel.request is None and not channel.total_outbufs_len


def serve_until_signalled(server, shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT) -> dict:
    """Run the server until SIGTERM/SIGINT, then drain: stop accepting, finish in-flight requests
    (at most ``shutdown_timeout`` seconds), close the connections. Returns what happened."""
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum, _frame):
        if not received:
            received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    adj = server.adj
    smap = socket_map(server)
    try:
        while not stop.is_set():
            wasyncore.loop(timeout=min(adj.asyncore_loop_timeout, 0.5), map=smap, use_poll=adj.asyncore_use_poll,
                           count=1)
        started = time.monotonic()
        busy = [channel for channel in channels(server) if not is_idle(channel)]
        log.info("%s: stopping; %d request(s) in flight, waiting up to %gs for them", received[0], len(busy),
                 shutdown_timeout)
        for listener in listeners(server):  # stop accepting: close the listening sockets only
            listener.accepting = False
            wasyncore.dispatcher.close(listener)
        deadline = started + shutdown_timeout
        while time.monotonic() < deadline:
            open_channels = channels(server)
            for channel in open_channels:
                if is_idle(channel):
                    channel.handle_close()
            if not channels(server):
                break
            wasyncore.loop(timeout=0.05, map=smap, use_poll=adj.asyncore_use_poll, count=1)
        left = channels(server)
        for channel in left:
            channel.handle_close()
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        for obj in list(smap.values()):  # the triggers
            try:
                obj.close()
            except OSError:
                pass
        return {"signal": received[0], "in_flight": len(busy), "abandoned": len(left),
                "seconds": round(time.monotonic() - started, 3)}
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
