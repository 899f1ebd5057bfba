"""Rows as they come: time to the first row of ``POST /api/translate/stream`` against the time of the
first model batch of the one-shot ``POST /api/translate``, on one running ``server.py --no-cache``.

Model: the full-size random-weight opus-mt-vi-en-shaped Marian model (``--model-dir``, as built by
``benchmarks/speed.py`` or ``benchmarks/aligned.py``; default ``benchmarks/out/models/opus-mt-vi-en``).
Articles: the seed article (13 sentences + byline) and the first 48 segments of the first IWSLT'15
tst2013 talk. Every request is a cache miss (``--no-cache``). For each article, alternated,
``--repeats`` times:

* one-shot: the client's wall time and ``timings.model_ms``;
* first model batch: ``timings.model_ms`` of a one-shot request holding only the sentences of the
  one-shot's first model batch (the request queue's ``--batch-sentences``, 32);
* stream: the client's time to the ``segments`` event, to the first ``rows`` event with translated
  (not cached, not passed-through) rows, and to ``done``.

Usage::

    .venv/bin/python benchmarks/stream.py [--model-dir DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from testkit.server_helpers import clean_env  # noqa: E402
from testkit.shared_data import SEED  # noqa: E402
from speed import article_text, segments_of  # noqa: E402

BATCH_SENTENCES = 32  # the request queue's default batch: the one-shot's first model batch


def post(port: int, path: str, text: str) -> tuple[float, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    connection.request("POST", path, body=json.dumps({"text": text}).encode(),
                       headers={"Content-Type": "application/json"})
    answer = json.loads(connection.getresponse().read())
    wall = time.perf_counter() - started
    connection.close()
    return wall * 1000, answer


def stream(port: int, text: str) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    connection.request("POST", "/api/translate/stream", body=json.dumps({"text": text}).encode(),
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    marks: dict[str, float] = {}
    passed: set[int] = set()
    while True:
        line = response.readline()
        if not line:
            break
        if not line.startswith(b"data: "):
            continue
        event = json.loads(line[6:])
        at = (time.perf_counter() - started) * 1000
        kind = event["event"]
        if kind == "segments":
            passed = {s["index"] for s in event["segments"] if not s["translate"]}
        if kind == "rows" and "first_row" not in marks and any(r["index"] not in passed and not r["cached"]
                                                              for r in event["rows"]):
            marks["first_row"] = at
        marks.setdefault(kind, at)
        if kind in ("done", "error"):
            marks["model_ms"] = event.get("timings", {}).get("model_ms", float("nan"))
    connection.close()
    return marks


def first_batch_text(text: str) -> str:
    """The sentences of the one-shot's first model batch, as one article."""
    from mt.text.segment import split_sentences

    sentences = [segment.text for segment in split_sentences(text) if segment.kind != "byline"]
    return " ".join(sentences[:BATCH_SENTENCES])


def start(model_dir: str) -> tuple[subprocess.Popen, int]:
    command = [sys.executable, str(ROOT / "server.py"), "--model", model_dir, "--no-cache", "--host", "127.0.0.1",
               "--port", "0"]
    process = subprocess.Popen(command, cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if "serving on http://" in line:
            return process, int(line.rsplit(":", 1)[1].strip().rstrip("/"))
    raise RuntimeError("server.py did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default=str(ROOT / "benchmarks/out/models/opus-mt-vi-en"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    articles = {"seed (13 + byline)": SEED.read_text(encoding="utf-8"),
                "IWSLT tst2013, 48 segments": article_text(segments_of(48))}
    process, port = start(args.model_dir)
    try:
        for text in articles.values():  # warm-up: model, tokenizer, e5, first allocations
            post(port, "/api/translate", text)
            stream(port, text)
        rows = []
        for name, text in articles.items():
            batch = first_batch_text(text)
            runs: dict[str, list[float]] = {key: [] for key in ("oneshot_wall", "oneshot_model", "first_batch",
                                                                "segments", "first_row", "done", "stream_model")}
            for _ in range(args.repeats):
                wall, answer = post(port, "/api/translate", text)
                runs["oneshot_wall"].append(wall)
                runs["oneshot_model"].append(answer["timings"]["model_ms"])
                runs["first_batch"].append(post(port, "/api/translate", batch)[1]["timings"]["model_ms"])
                marks = stream(port, text)
                for key in ("segments", "first_row", "done"):
                    runs[key].append(marks[key])
                runs["stream_model"].append(marks["model_ms"])
            medians = {key: statistics.median(values) for key, values in runs.items()}
            rows.append((name, medians))
        print(f"median of {args.repeats}, ms, server.py --no-cache, full-size random opus-mt-vi-en shape")
        header = ("article", "one-shot total", "one-shot model", "first model batch", "stream: segments",
                  "stream: first row", "stream: done", "stream model")
        print(" | ".join(header))
        for name, m in rows:
            print(" | ".join([name] + [f"{m[key]:.0f}" for key in ("oneshot_wall", "oneshot_model", "first_batch",
                                                                  "segments", "first_row", "done",
                                                                  "stream_model")]))
    finally:
        process.terminate()
        process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
