"""The aligned document against the bare translation: what word links and quality scores cost.

Model: the full-size random-weight opus-mt-vi-en-shaped Marian model of ``benchmarks/speed.py``
(built here, or ``--model-dir``). Text: the first ``--sentences`` (48) segments of the first
IWSLT'15 tst2013 talk (``../shared/data/iwslt15``, read in place), as 8 paragraphs.

Usage::

    .venv/bin/python benchmarks/aligned.py [--model-dir DIR] [--parts cli,batch,server,breakdown,load]

Parts (every row a fresh process, or a fresh server; whole process, ``--no-cache``):

* ``cli``: ``mt translate ARTICLE --beam B`` (plain text) against the same with ``--jsonl``
  (word links + quality scores), alternated, median of ``--repeats``; goal aligned <= 1.3x.
* ``batch``: ``mt batch`` of a folder holding the article (its .jsonl/.tmx/.en.txt: aligned)
  against ``mt translate`` plain of the same article.
* ``server``: ``POST /api/translate`` (aligned) against ``POST /translate`` (LibreTranslate: text
  only, no links or scores) on one running ``server.py --no-cache``, at the server's beam.
* ``breakdown``: the ``--jsonl`` work step by step in one process (imports, model load,
  translation, tokenizer, word links, e5 load, reference embeddings, source/translation
  embeddings, JSON), so the extra time can be attributed.
* ``load``: saturation: ``--clients`` (50) clients each sending a distinct ``--load-sentences``
  (40) sentence article to ``POST /api/translate`` at once; articles/s, p50/p95, and the share of
  the wall time the translation model was busy (``busy_seconds`` of ``/readyz``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from speed import EOS_BIAS, MODEL_NAME, article_text, child_env, segments_of, spawn  # noqa: E402
from speed import post  # noqa: E402
from speed import run_child as speed_run_child  # noqa: E402

PARTS = ("breakdown", "cli", "batch", "server", "load")


# --------------------------------------------------------------------------- children


def child_build(args) -> dict:
    from testkit.tiny_model import OPUS_MT_VI_EN_SHAPE, build_tiny_marian

    build_tiny_marian(Path(args.model_dir), eos_bias=EOS_BIAS, **OPUS_MT_VI_EN_SHAPE)
    return {}


def child_breakdown(args) -> dict:
    """``mt translate --jsonl``'s work, step by step (NullCache, as ``--no-cache``)."""
    marks: list[tuple[str, float]] = []
    last = [time.perf_counter()]

    def mark(name: str) -> None:
        now = time.perf_counter()
        marks.append((name, (now - last[0]) * 1000))
        last[0] = now

    from mt.cache import NullCache
    from mt.engines.loader import load_engine
    from mt.io.formats import to_jsonl
    from mt import extras, pipeline
    mark("imports")
    engine = load_engine(args.model_dir)
    mark("translation model load")
    settings = engine.settings.replace(beam=args.beam)
    text = article_text(json.loads(Path(args.segments).read_text()))
    pairs, maps = pipeline._prepare(text, engine.spec.tone)
    mark("segment + normalise")
    pipeline.fill_translations(pairs, engine, NullCache(), settings)
    mark("translation")
    tokenizer_loaded = getattr(engine, "_hf_tokenizer", True) is not None
    extras.fill_links(pairs, maps, engine, NullCache(), settings)
    loaded = not tokenizer_loaded and getattr(engine, "_hf_tokenizer", None) is not None
    mark("word links" + (" (incl. transformers tokenizer load)" if loaded else " (no transformers import)"))
    from mt.quality import embeddings
    from mt.quality.scores import REFERENCE_EN, REFERENCE_VI

    embeddings._get_model()
    mark("e5 load")
    try:
        from mt.quality.references import reference_vectors
    except ImportError:  # before the shipped vectors: embedded in every process
        embeddings.embed(list(REFERENCE_VI) + list(REFERENCE_EN))
    else:
        reference_vectors()
    mark("reference embeddings")
    embeddings.embed([p.normalized for p in pairs if extras.scored(p)])
    mark("source embeddings (overlap decoding in the pipeline)")
    extras.fill_quality(pairs, engine, NullCache(), settings)
    mark("translation embeddings, scores")
    document = pipeline.Document(text=text, model=engine.spec.id, sentences=pairs,
                                 translation=pipeline.join_translation(text, pairs), timings={})
    to_jsonl(document)
    mark("JSON")
    return {"marks": marks, "sentences": sum(1 for p in pairs if p.normalized.strip())}


CHILDREN = {"build": child_build, "breakdown": child_breakdown}


# --------------------------------------------------------------------------- parent


def run_child(part: str, args, env: dict, work: Path, *extra: str) -> dict:
    return speed_run_child(part, args, env, work, *extra, script=__file__)


def timed(cmd: list[str], env: dict, work: Path, name: str) -> float:
    rc, wall, _ = spawn(cmd, env, work / f"{name}.out", work / f"{name}.err")
    if rc != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{(work / f'{name}.err').read_text()[-3000:]}")
    return wall


def alternate(runs: dict[str, list[str]], env: dict, work: Path, repeats: int) -> dict[str, float]:
    """Median wall time of each command, the commands alternated so machine load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(repeats):
        for name, cmd in runs.items():
            times[name].append(timed(cmd, env, work, f"{name}-{r}"))
    return {name: statistics.median(values) for name, values in times.items()}


def mt_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "mt", *args]


def get(port: int, path: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


class Server:
    """server.py on a free loopback port, for the duration of a ``with`` block."""

    def __init__(self, args, env: dict, work: Path, label: str, *extra: str) -> None:
        self.cmd = [sys.executable, str(ROOT / "server.py"), "--model", str(args.model_dir), "--no-cache",
                    "--host", "127.0.0.1", "--port", "0", *extra]
        self.env, self.log_path = env, work / f"server-{label}.log"
        self.port = 0

    def __enter__(self) -> "Server":
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.write(line)
            if "serving on http://" in line:
                self.port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
                break
        if not self.port:
            self.proc.kill()
            raise SystemExit(f"server did not start; see {self.log_path}")
        threading.Thread(target=lambda: [self.log.write(x) for x in self.proc.stdout], daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def load_articles(n: int, size: int) -> list[str]:
    """``n`` distinct articles of ``size`` IWSLT segments (tst2013, then other splits)."""
    from testkit.shared_data import iwslt_segments

    lines = [line for split in ("tst2013", "tst2012", "tst2011", "dev2010") for line in iwslt_segments(split, "vi")]
    if len(lines) < n * size:
        raise SystemExit(f"only {len(lines)} IWSLT segments for {n} articles of {size}")
    return [article_text(lines[i * size : (i + 1) * size]) for i in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default=None, help=f"reuse a model built before (a folder named {MODEL_NAME})")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--sentences", type=int, default=48)
    parser.add_argument("--beam", type=int, default=1, help="beam of the cli and batch rows (default 1)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=50, help="load: concurrent clients")
    parser.add_argument("--load-sentences", type=int, default=40, help="load: segments per article")
    parser.add_argument("--load-beam", type=int, default=None, help="load: beam (default: the server's)")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--segments", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args), ensure_ascii=False))
        return 0
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mt-aligned-") as tmp:
        work = Path(tmp)
        env = child_env(argparse.Namespace(threads=0), work / "ct2")
        if args.model_dir is None:
            args.model_dir = str(work / MODEL_NAME)
            run_child("build", args, env, work)
        report(args, parts, env, work)
    print(f"\ntotal benchmark time {time.perf_counter() - began:.0f} s", flush=True)
    return 0


def report(args, parts: list[str], env: dict, work: Path) -> None:
    say = lambda *a: print(*a, flush=True)  # noqa: E731
    segments = segments_of(args.sentences)
    seg_file = work / "segments.json"
    seg_file.write_text(json.dumps(segments, ensure_ascii=False))
    article = work / "article.txt"
    article.write_text(article_text(segments) + "\n", encoding="utf-8")
    folder = work / "in"
    folder.mkdir()
    (folder / "article.txt").write_text(article.read_text(encoding="utf-8"), encoding="utf-8")
    model = ["--model", str(args.model_dir)]
    beam = ["--beam", str(args.beam)]
    say(f"model   random-weight Marian, opus-mt-vi-en shape; text: {len(segments)} IWSLT'15 tst2013 segments")
    timed(mt_cmd("translate", str(article), *model, "--no-cache", "--beam", "1", "--jsonl"), env, work, "warm")  # converts both models once
    goals = []

    if "breakdown" in parts:
        b = run_child("breakdown", args, env, work, "--segments", str(seg_file), "--beam", str(args.beam))
        say(f"\nbreakdown: mt translate --jsonl's work in one process (beam {args.beam}, {b['sentences']} sentences)")
        for name, ms in b["marks"]:
            say(f"   {name:<46}{ms:>9.0f} ms")

    if "cli" in parts:
        plain = mt_cmd("translate", str(article), *model, "--no-cache", *beam)
        times = alternate({"plain": plain, "jsonl": plain + ["--jsonl"]}, env, work, args.repeats)
        ratio = times["jsonl"] / times["plain"]
        goals.append(("mt translate --jsonl / plain", ratio))
        say(f"\ncli: mt translate, whole process, beam {args.beam}, median of {args.repeats}")
        say(f"   plain text                                   {times['plain']:>8.2f} s")
        say(f"   --jsonl (word links + quality)               {times['jsonl']:>8.2f} s   {ratio:.2f}x")

    if "batch" in parts:
        out = work / "out"
        runs = {"plain": mt_cmd("translate", str(article), *model, "--no-cache", *beam),
                "batch": ["bash", "-c", f"rm -rf {out} && exec {sys.executable} -m mt batch {folder} {out} "
                          f"--model {args.model_dir} --no-cache --beam {args.beam} --quiet"]}
        times = alternate(runs, env, work, args.repeats)
        ratio = times["batch"] / times["plain"]
        goals.append(("mt batch / mt translate plain", ratio))
        say(f"\nbatch: one-article folder, whole process, beam {args.beam}, median of {args.repeats}")
        say(f"   mt translate (plain text)                    {times['plain']:>8.2f} s")
        say(f"   mt batch (.jsonl, .tmx, .en.txt)             {times['batch']:>8.2f} s   {ratio:.2f}x")

    if "server" in parts:
        text = article.read_text(encoding="utf-8")
        with Server(args, env, work, "pair") as server:
            post(server.port, "/api/translate", {"text": "Xin chào các bạn."})  # loads both models
            api, libre = [], []
            for r in range(args.repeats):
                # a different article each time (no engine memo, no embedding cache carries over)
                variant = text.replace("\n\n", f" {r}.\n\n", 1)
                libre.append(post(server.port, "/translate", {"q": variant + " A", "source": "vi", "target": "en"})[0])
                api.append(post(server.port, "/api/translate", {"text": variant + " B"})[0])
        a, p = statistics.median(api), statistics.median(libre)
        goals.append(("POST /api/translate / POST /translate", a / p))
        say(f"\nserver: one article, the server's beam, median of {args.repeats}")
        say(f"   POST /translate (LibreTranslate, text only)  {p:>8.2f} s")
        say(f"   POST /api/translate (aligned)                {a:>8.2f} s   {a / p:.2f}x")

    if "load" in parts:
        articles = load_articles(args.clients, args.load_sentences)
        extra = {} if args.load_beam is None else {"beam": args.load_beam}
        with Server(args, env, work, "load", "--threads", str(args.clients + 4)) as server:
            post(server.port, "/api/translate", {"text": "Xin chào các bạn.", **extra})
            before = get(server.port, "/readyz").get("batching", {})
            latencies: list[float] = []
            errors: list[str] = []

            def client(text: str) -> None:
                try:
                    latencies.append(post(server.port, "/api/translate", {"text": text, **extra})[0])
                except Exception as error:  # noqa: BLE001 - reported below
                    errors.append(str(error)[:200])

            start = time.perf_counter()
            workers = [threading.Thread(target=client, args=(t,)) for t in articles]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            wall = time.perf_counter() - start
            after = get(server.port, "/readyz").get("batching", {})
        busy = after.get("busy_seconds", 0.0) - before.get("busy_seconds", 0.0)
        latencies.sort()
        p95 = latencies[max(0, int(0.95 * len(latencies)) - 1)] if latencies else float("nan")
        say(f"\nload: {args.clients} clients at once, each a distinct {args.load_sentences}-segment article, "
            f"POST /api/translate{' beam ' + str(args.load_beam) if extra else ''}")
        say(f"   wall {wall:.1f} s, {len(latencies) / wall:.2f} articles/s, p50 {statistics.median(latencies):.1f} s, "
            f"p95 {p95:.1f} s, errors {len(errors)}")
        say(f"   translation model busy {busy:.1f} s of {wall:.1f} s ({busy / wall:.0%}; batches "
            f"{after.get('batches', 0) - before.get('batches', 0)}, attention batches "
            f"{after.get('attention_batches', 0) - before.get('attention_batches', 0)})")
        if errors:
            say("   first error: " + errors[0])

    if goals:
        say("\ngoals (aligned <= 1.3x the plain translation)")
        for name, ratio in goals:
            say(f"   {name:<46}{ratio:>6.2f}x  {'met' if ratio <= 1.3 else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
