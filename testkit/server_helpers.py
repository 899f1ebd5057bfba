"""Start the real server (``python server.py``, or ``mt serve``) as a subprocess on a free loopback
port and talk to it over real HTTP (http.client): what the page and API tests use. No mocks."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "server.py"
SERVER_COMMAND = (sys.executable, str(SERVER))
MT_SERVE_COMMAND = (sys.executable, "-m", "mt", "serve")
STARTUP_TIMEOUT = 180.0  # importing torch and loading even a tiny model takes a while on 2 shared cores


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    method: str = ""
    path: str = ""  # as requested, query included
    server: "ServerProcess | None" = field(default=None, repr=False)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test runner's environment without MT_* settings that would change the server under test."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MT_")}
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores: no thread oversubscription per request
    env.update(extra or {})
    return env


@dataclass
class ServerProcess:
    """``python server.py ARGS --host 127.0.0.1 --port 0`` (or another ``command``); the port is read
    from its first line."""

    args: list[str]
    env: dict[str, str] = field(default_factory=clean_env)
    command: tuple[str, ...] = SERVER_COMMAND
    process: subprocess.Popen | None = None
    lines: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0

    def start(self) -> "ServerProcess":
        command = [*self.command, "--host", "127.0.0.1", "--port", "0", *self.args]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, encoding="utf-8", errors="replace",
        )
        ready = threading.Event()

        def pump():  # keep reading so the pipe never fills; remember everything for failure reports
            assert self.process and self.process.stdout
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))
                if "serving on http://" in line and not ready.is_set():
                    self.port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not ready.wait(0.2):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start in {STARTUP_TIMEOUT:.0f}s:\n{self.log()}")
        if not self.port:
            self.stop()
            raise RuntimeError(f"server exited before listening (rc={self.process.poll()}):\n{self.log()}")
        while True:
            try:
                if self.get("/healthz").status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"/healthz never answered:\n{self.log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)

    def log(self) -> str:
        return "\n".join(self.lines[-200:])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- HTTP --------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 300.0) -> Reply:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read(),
                         method, path, self)
        finally:
            connection.close()

    def get(self, path: str, headers: dict | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post_json(self, path: str, payload, headers: dict | None = None) -> Reply:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return self.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})})

    def post_form(self, path: str, fields: dict | list, headers: dict | None = None) -> Reply:
        body = urllib.parse.urlencode(fields, doseq=True).encode("ascii")
        return self.request("POST", path, body,
                            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})

    def post_multipart(self, path: str, fields: dict, files: dict[str, tuple[str, bytes]] | None = None,
                       headers: dict | None = None) -> Reply:
        body, content_type = multipart(fields, files or {})
        return self.request("POST", path, body, {"Content-Type": content_type, **(headers or {})})


def multipart(fields: dict, files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                     + str(value).encode("utf-8") + b"\r\n")
    for name, (filename, data) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: text/plain\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def start_server(args: list[str], env_extra: dict[str, str] | None = None,
                 command: tuple[str, ...] = SERVER_COMMAND) -> ServerProcess:
    return ServerProcess(list(args), env=clean_env(env_extra), command=tuple(command)).start()
