"""Hostile clients for the runtime's tests and benchmarks: connections that never finish their
headers (one header line a second), as a slow-loris client sends them. Loopback only."""

from __future__ import annotations

import socket
import threading


class SlowHeaders:
    """``count`` connections to 127.0.0.1:``port`` dribbling header lines until the block ends
    (at most ``seconds``): ``with SlowHeaders(port, 150): ...``."""

    def __init__(self, port: int, count: int, seconds: float = 60.0):
        self.port, self.count, self.seconds = port, count, seconds
        self.stop = threading.Event()
        self.sockets: list[socket.socket] = []
        self.thread = threading.Thread(target=self._dribble, daemon=True)

    def __enter__(self) -> "SlowHeaders":
        self.sockets = [socket.create_connection(("127.0.0.1", self.port), timeout=10) for _ in range(self.count)]
        self.thread.start()
        return self

    def _dribble(self) -> None:
        line = 0
        while not self.stop.is_set() and line < self.seconds:
            for connection in self.sockets:
                try:
                    connection.sendall(b"POST /api/translate HTTP/1.1\r\n" if line == 0 else b"X-Slow-%d: 1\r\n" % line)
                except OSError:
                    pass
            line += 1
            self.stop.wait(1.0)

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.thread.join(10)
        for connection in self.sockets:
            connection.close()
