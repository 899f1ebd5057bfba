"""Load benchmark of the real server (issues #11, #19): ``python server.py --workers N`` (default 2)
on loopback with the tiny random-weight model and 8 HTTP threads per worker, driven over real HTTP.

    .venv/bin/python benchmarks/load.py [--workers 2] [--soak-seconds 150] [--victim-seconds 40] [--json OUT]

Runs, in order:
1. burst: 50 concurrent clients, each one /api/translate of 10 distinct IWSLT sentences;
2. article: 50 concurrent clients of the same 40-sentence article;
3. soak: 8 clients of mixed requests (page, /api/translate, LibreTranslate lists, /api/align,
   downloads, malformed bodies) for --soak-seconds; server RSS after warm-up and at the end;
4. victim: 4 ordinary clients (2-sentence /api/translate) alone, then the same while 4 others send
   the worst inputs within the limits (one 90,000-character sentence, a maximal /api/align, a
   --batch-limit LibreTranslate list, a body over the cap, junk). Goal: no errors, p95 within 2x.

Reports requests/s, p50/p95/max latency and errors (5xx, resets and timeouts; deliberate 4xx
answers to malformed requests are counted apart), and where the time went, from the answers' own
``timings`` (``split_mean_ms``, ``split_slowest_tenth_ms``; ``outside_ms``: HTTP, threads, JSON).
Nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # testkit from the checkout

from testkit.procs import children, rss_mb, tree_rss_mb, tree_cpu_seconds  # noqa: E402
from testkit.server_helpers import start_server  # noqa: E402
from testkit.shared_data import iwslt_segments  # noqa: E402

JSON_TYPE = {"Content-Type": "application/json"}


class Recorder:
    """Latencies and outcomes of one phase, from many threads."""

    def __init__(self, name: str):
        self.name = name
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.refused = 0  # 4xx answers to requests meant to be refused
        self.timings: list[dict] = []  # the answers' own timings: where the time went
        self.started = time.perf_counter()
        self.ended = self.started

    def call(self, port: int, method: str, path: str, body: bytes | None = None, headers=None, *,
             expect_4xx: bool = False, timeout: float = 300.0) -> int | None:
        began = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            try:
                connection.request(method, path, body=body, headers=headers or {})
                reply = connection.getresponse()
                data = reply.read()
                status = reply.status
            finally:
                connection.close()
        except (OSError, http.client.HTTPException) as error:
            with self.lock:
                self.errors.append(f"{path}: {type(error).__name__}: {error}")
            return None
        elapsed = time.perf_counter() - began
        with self.lock:
            self.ended = time.perf_counter()
            if status >= 500 or (status >= 400 and not expect_4xx):
                self.errors.append(f"{path}: HTTP {status}")
            elif status >= 400:
                self.refused += 1
            if not expect_4xx:
                self.latencies.append(elapsed)
                if status == 200 and data[:1] == b"{":
                    timings = json.loads(data).get("timings") or {}
                    timings = {k: v for k, v in timings.items() if k.endswith("_ms")}
                    timings["outside_ms"] = elapsed * 1000 - timings.get("total_ms", 0)
                    self.timings.append((elapsed, timings))
        return status

    def summary(self) -> dict:
        seconds = max(self.ended - self.started, 1e-9)
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else 0.0

        return {"phase": self.name, "requests": len(lat), "seconds": round(seconds, 1),
                "req_per_s": round(len(lat) / seconds, 2), "p50_s": pct(0.5), "p95_s": pct(0.95),
                "max_s": round(lat[-1], 3) if lat else 0.0, "errors": len(self.errors), "refused_4xx": self.refused,
                "first_errors": self.errors[:3], **self.time_split()}

    def time_split(self) -> dict:
        """Where the answers' time went, from their own ``timings`` (``outside_ms``: HTTP, waiting
        for a thread or the GIL, JSON): the mean over all answers and over the slowest tenth."""
        if not self.timings:
            return {}
        ranked = sorted(self.timings, key=lambda pair: pair[0])
        slowest = ranked[int(len(ranked) * 0.9):]

        def means(rows) -> dict:
            keys = sorted({key for _, timings in rows for key in timings})
            return {key: round(sum(t.get(key, 0.0) for _, t in rows) / len(rows), 1) for key in keys}

        return {"split_mean_ms": means(ranked), "split_slowest_tenth_ms": means(slowest)}


def short_items(count: int, salt: int) -> list[str]:
    """Distinct short Vietnamese items (at most 9 characters each: 10,000 fit in 100,000)."""
    return [f"Câu {salt + n}." for n in range(count)]


def body(payload) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def concurrent(recorder: Recorder, port: int, payloads: list[bytes]) -> dict:
    with ThreadPoolExecutor(len(payloads)) as pool:
        list(pool.map(lambda data: recorder.call(port, "POST", "/api/translate", data, JSON_TYPE), payloads))
    return recorder.summary()


def until(deadline: float, work) -> None:
    while time.monotonic() < deadline:
        work()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak-seconds", type=float, default=150.0)
    parser.add_argument("--victim-seconds", type=float, default=40.0)
    parser.add_argument("--max-chars", type=int, default=100_000)
    parser.add_argument("--phases", default="burst,article,libre,soak,victim",
                        help="comma-separated subset of burst,article,libre,soak,victim")
    parser.add_argument("--attackers", default="sentence,align,list,body",
                        help="the victim run's attackers, a comma-separated subset of sentence,align,list,body "
                             "(one at a time tells which one costs the victims)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (mt serve --workers)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    phases = set(args.phases.split(","))

    from testkit.tiny_model import build_tiny_marian

    work = Path(tempfile.mkdtemp(prefix="mt-load-"))
    model = build_tiny_marian(work / "tiny-marian-vi-en")
    server = start_server(["--model", str(model), "--cache", str(work / "cache.sqlite"), "--threads", "8",
                           "--max-chars", str(args.max_chars), "--workers", str(args.workers)],
                          {"MT_THREADS": "1"})
    port, pid = server.port, server.process.pid
    wait_for_workers(port, pid, args.workers)
    results: dict = {"workers": args.workers, "rss_start_mb": round(tree_rss_mb(pid), 1)}
    vi = [line for split in ("tst2012", "tst2013", "dev2010", "tst2010") for line in iwslt_segments(split, "vi")
          if 20 < len(line) < 200]
    pairs = [(v, e) for v, e in zip(iwslt_segments("tst2013", "vi"), iwslt_segments("tst2013", "en"))
             if v.strip() and e.strip()]
    vi_lines, en = [v for v, _ in pairs], [e for _, e in pairs]
    rng = random.Random(11)
    try:
        # 1. burst of distinct sentences
        if "burst" in phases:
            payloads = [body({"text": " ".join(vi[10 * n:10 * n + 10])}) for n in range(50)]
            results["burst_50x10"] = concurrent(Recorder("50 clients x 10 distinct sentences"), port, payloads)
            print(json.dumps(results["burst_50x10"]), flush=True)
        if "article" in phases:  # 2. one 40-sentence article, 50 clients
            article = body({"text": " ".join(vi[600:640])})
            results["article_50x40"] = concurrent(Recorder("50 clients x one 40-sentence article"), port, [article] * 50)
            print(json.dumps(results["article_50x40"]), flush=True)

        if "libre" in phases:  # LibreTranslate: 10,000 distinct short items in one request (one pipeline call)
            libre = Recorder("LibreTranslate q list of 10,000 distinct short items")
            libre.call(port, "POST", "/translate", body({"q": short_items(10_000, 0), "source": "vi"}), JSON_TYPE)
            results["libre_10000"] = libre.summary()
            print(json.dumps(results["libre_10000"]), flush=True)

        if "soak" in phases:  # 3. soak: 8 clients of mixed requests
            soak = Recorder(f"soak {args.soak_seconds:g}s, 8 clients, mixed")
            pool_vi = vi[1000:1400]

            def mixed():
                kind = rng.random()
                if kind < 0.35:
                    soak.call(port, "POST", "/api/translate", body({"text": " ".join(rng.sample(pool_vi, 3))}), JSON_TYPE)
                elif kind < 0.55:
                    soak.call(port, "POST", "/translate", body({"q": rng.sample(pool_vi, 5), "source": "auto"}), JSON_TYPE)
                elif kind < 0.65:
                    k = rng.randrange(0, 300)
                    soak.call(port, "POST", "/api/align", body({"vi": "\n".join(vi_lines[k:k + 6]), "en": "\n".join(en[k:k + 6]),
                                                                "lines": True}), JSON_TYPE)
                elif kind < 0.75:
                    soak.call(port, "POST", "/download/tsv", body({"text": rng.choice(pool_vi)}), JSON_TYPE)
                elif kind < 0.85:
                    soak.call(port, "GET", "/")
                else:
                    junk = rng.choice([b"{", b'{"text": 5}', b'{"text": "\\ud800"}', b'{"q": [[]]}', b"[" * 5000])
                    soak.call(port, "POST", rng.choice(["/api/translate", "/translate", "/api/align"]), junk, JSON_TYPE,
                              expect_4xx=True)

            warm_deadline = time.monotonic() + min(20.0, args.soak_seconds / 5)
            deadline = time.monotonic() + args.soak_seconds
            threads = [threading.Thread(target=until, args=(deadline, mixed)) for _ in range(8)]
            for thread in threads:
                thread.start()
            while time.monotonic() < warm_deadline:
                time.sleep(0.5)
            results["rss_after_warmup_mb"] = round(tree_rss_mb(pid), 1)
            for thread in threads:
                thread.join()
            results["rss_soak_end_mb"] = round(tree_rss_mb(pid), 1)
            results["soak"] = soak.summary()
            print(json.dumps(results["soak"]), flush=True)

        if "victim" in phases:  # 4. victim: ordinary clients alone, then beside the worst inputs within the limits
            def ordinary(recorder: Recorder, stop: float, sentences: list[str]):
                # distinct sentences, every request a cache miss like new text: once the pool is used
                # up, each round's sentences get its number (else the quiet run, fast enough to use up
                # its pool, would time cache hits)
                numbers = itertools.count()

                def fresh() -> str:
                    n = next(numbers)
                    line = sentences[n % len(sentences)]
                    return line if n < len(sentences) else f"{line} ({n // len(sentences)})"

                until(stop, lambda: recorder.call(port, "POST", "/api/translate",
                                                  body({"text": f"{fresh()} {fresh()}"}), JSON_TYPE))

            def victims(name: str, attackers: list, pool: list[str]) -> dict:
                recorder = Recorder(name)
                stop = time.monotonic() + args.victim_seconds
                threads = [threading.Thread(target=ordinary, args=(recorder, stop, pool[n::4])) for n in range(4)]
                threads += [threading.Thread(target=until, args=(stop, attack)) for attack in attackers]
                cpu, began = tree_cpu_seconds(pid), time.monotonic()
                for thread in threads:
                    thread.start()
                for thread in threads[:4]:
                    thread.join()
                summary = recorder.summary()
                # CPU the server's process tree used while the victims ran (workers, alignment worker)
                summary["server_cpu_s"] = round(tree_cpu_seconds(pid) - cpu, 1)
                summary["wall_s"] = round(time.monotonic() - began, 1)
                summary["load_average"] = Path("/proc/loadavg").read_text().split()[0]
                for thread in threads[4:]:
                    thread.join()
                return summary

            results["victim_quiet"] = victims("4 ordinary clients, quiet", [], vi[1500:2300])
            print(json.dumps(results["victim_quiet"]), flush=True)
            hostile = {name: Recorder(f"attacker: {name}") for name in
                       ("one max-chars sentence", "maximal align", "8,000-item list", "over-cap body, 2/s")}
            long_sentence = ("Những người dân ở thành phố này đã sống " * 3000)[: min(90_000, args.max_chars - 10)]
            half = args.max_chars // 2
            vi_side = " ".join(vi_lines)[: half - 10]
            en_side = " ".join(en)[: half - 10]
            too_big = b'{"text": "' + b"a" * (args.max_chars * 12) + b'"}'

            def many_items() -> bytes:
                return body({"q": [f"Số {n}." for n in rng.sample(range(10 ** 5, 10 ** 6), 8000)], "source": "vi"})

            attackers = [
                lambda: hostile["one max-chars sentence"].call(port, "POST", "/api/translate",
                                                               body({"text": long_sentence}), JSON_TYPE),
                lambda: hostile["maximal align"].call(port, "POST", "/api/align",
                                                      body({"vi": vi_side, "en": en_side}), JSON_TYPE),
                lambda: hostile["8,000-item list"].call(port, "POST", "/translate", many_items(), JSON_TYPE),
                lambda: (hostile["over-cap body, 2/s"].call(port, "POST", "/api/translate", too_big, JSON_TYPE,
                                                            expect_4xx=True), time.sleep(0.5)),
            ]
            chosen = [name for name in ("sentence", "align", "list", "body") if name in args.attackers.split(",")]
            attackers = [attack for name, attack in zip(("sentence", "align", "list", "body"), attackers) if name in chosen]
            hostile = {name: recorder for short, (name, recorder) in zip(("sentence", "align", "list", "body"),
                                                                         hostile.items()) if short in chosen}
            results["victim_attacked"] = victims(f"4 ordinary clients beside {'+'.join(chosen)}", attackers,
                                                 vi[2300:3100])
            results["attackers"] = [recorder.summary() for recorder in hostile.values()]
            print(json.dumps(results["victim_attacked"]), flush=True)
            for summary in results["attackers"]:
                print(json.dumps(summary), flush=True)
            quiet, attacked = results["victim_quiet"]["p95_s"], results["victim_attacked"]["p95_s"]
            results["victim_p95_ratio"] = round(attacked / quiet, 2) if quiet else None
        results["rss_end_mb"] = round(tree_rss_mb(pid), 1)
        results["rss_per_worker_mb"] = [round(rss_mb(child), 1) for child in children(pid)]
        results["readyz"] = json.loads(http_get(port, "/readyz"))["batching"]
    finally:
        server.stop()
    print(json.dumps({key: results.get(key) for key in ("rss_start_mb", "rss_after_warmup_mb", "rss_soak_end_mb",
                                                    "rss_end_mb", "rss_per_worker_mb", "victim_p95_ratio")}),
          flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def wait_for_workers(port: int, pid: int, workers: int, timeout: float = 300.0) -> None:
    """Until every worker has loaded its model and answered (each loads its own copy)."""
    deadline = time.monotonic() + timeout
    seen: set = set()
    while len(seen) < workers and time.monotonic() < deadline:
        http_get(port, "/readyz")
        seen = {child for child in children(pid) if rss_mb(child) > 150}
        time.sleep(0.5)


def http_get(port: int, path: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path)
        return connection.getresponse().read()
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
