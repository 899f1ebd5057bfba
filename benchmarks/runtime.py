"""Why waitress inside gunicorn's workers (issue #19): a slow-header flood against gunicorn's own
threaded worker and against ours, same app, same threads, one worker each.

    .venv/bin/python benchmarks/runtime.py [--connections 150] [--seconds 12]

Each run starts ``gunicorn -w 1 --threads 8`` with a trivial WSGI app on a loopback port, opens
CONNECTIONS sockets that send one header line a second (never finishing their headers), and times
GET /healthz every half second meanwhile. Prints the health check's latencies per worker class.
Nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.floods import SlowHeaders  # noqa: E402
APP = '''def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
'''


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def healthz(port: int, timeout: float) -> float | None:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as answer:
            answer.read()
        return time.monotonic() - started
    except OSError:
        return None


def run(worker_class: str, connections: int, seconds: float, folder: Path) -> dict:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "1", "--threads", "8", "-k", worker_class, "-b",
         f"127.0.0.1:{port}", "--no-control-socket", "--pythonpath", f"{folder},{ROOT}", "hello:app"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while healthz(port, 1.0) is None:
            assert time.monotonic() < deadline, f"{worker_class} did not start"
            time.sleep(0.2)
        quiet = [healthz(port, 5.0) for _ in range(5)]
        flooded = []
        with SlowHeaders(port, connections, seconds + 5):
            time.sleep(2.0)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                flooded.append(healthz(port, 10.0))
                time.sleep(0.5)
        answered = [value for value in flooded if value is not None]
        return {"worker": worker_class, "quiet_max_s": round(max(v for v in quiet if v is not None), 3),
                "flood_checks": len(flooded), "flood_answered": len(answered),
                "flood_max_s": round(max(answered), 3) if answered else None}
    finally:
        server.terminate()
        server.wait(30)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=150)
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="mt-runtime-bench-"))
    (folder / "hello.py").write_text(APP)
    for worker_class in ("gthread", "mt.web.runtime.WaitressWorker"):
        print(json.dumps(run(worker_class, args.connections, args.seconds, folder)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
