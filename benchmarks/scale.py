"""Scale: the same 40 articles through local `mt batch` and `mt batch --ray` with 1 and 2 workers.

Model: the random-weight Marian model with the exact shape of Helsinki-NLP/opus-mt-vi-en that
benchmarks/speed.py uses (same compute per token as the real model; ``testkit/tiny_model.py``),
in a folder named ``opus-mt-vi-en`` so that its models.txt line applies (beam 4). Articles:
IWSLT'15 TED tst2013 (vi) talks cut into news-article-sized pieces of ``--segments`` segments
(default 20; CC BY-NC-ND 3.0, read in place from ``../shared/data/iwslt15``). Every run is a fresh ``python -m mt batch ...
--no-cache --quiet`` process on one thread per worker (``--threads 1``), timed end to end
(start, imports, Ray start, model loads, translation, writing); the one-time CTranslate2
conversion runs before. The outputs of all runs must be byte-identical. The fixed cost (Ray
start, the actor's process and imports, Ray Data's executor) is measured apart: the same commands
on ONE article, Ray minus local.

Usage::

    .venv/bin/python benchmarks/scale.py [--quick] [--articles 40] [--segments 20] [--model-dir DIR]

Goals (issue #13): Ray with one worker within 15 % of local; two workers faster than one.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from speed import EOS_BIAS, MODEL_NAME, article_text  # noqa: E402 - the same model and article shape


def build_articles(folder: Path, count: int, segments: int) -> int:
    """``count`` articles of ``segments`` IWSLT segments each (talks cut in order); segments used."""
    from testkit.shared_data import iwslt_talks

    folder.mkdir(parents=True, exist_ok=True)
    written = used = 0
    for talk in iwslt_talks("tst2013", "vi"):
        for start in range(0, len(talk) - segments + 1, segments):
            if written == count:
                return used
            (folder / f"article-{written:03d}.txt").write_text(article_text(talk[start:start + segments]) + "\n",
                                                               encoding="utf-8")
            written, used = written + 1, used + segments
    raise SystemExit(f"tst2013 has fewer than {count} articles of {segments} segments")


def run_batch(in_dir: Path, out_dir: Path, model_dir: Path, extra: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MT_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MT_THREADS="1", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "mt", "batch", str(in_dir), str(out_dir), "--model", str(model_dir),
               "--no-cache", "--quiet", "--threads", "1", *extra]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return seconds


def same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all(filecmp.cmp(a / f, b / f, shallow=False) for f in files_a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=40)
    parser.add_argument("--segments", type=int, default=None, help="segments per article (default 20; --quick 3)")
    parser.add_argument("--model-dir", default=None, help=f"reuse a model built before (a folder named {MODEL_NAME})")
    parser.add_argument("--quick", action="store_true", help="the tiny test model (d_model 32): overheads only")
    args = parser.parse_args()
    segments = args.segments or (3 if args.quick else 20)

    from testkit.tiny_model import OPUS_MT_VI_EN_SHAPE, build_tiny_marian

    with tempfile.TemporaryDirectory(prefix="mt-scale-") as tmp:
        work = Path(tmp)
        model_dir = Path(args.model_dir or work / MODEL_NAME)
        if args.model_dir is None:
            shape = {} if args.quick else OPUS_MT_VI_EN_SHAPE
            build_tiny_marian(model_dir, eos_bias=EOS_BIAS, **shape)
        used = build_articles(work / "in", args.articles, segments)
        build_articles(work / "warm-in", 1, segments)
        run_batch(work / "warm-in", work / "warm-out", model_dir, [])  # CTranslate2 conversion, cached
        one_local = run_batch(work / "warm-in", work / "one-local", model_dir, [])
        one_ray = run_batch(work / "warm-in", work / "one-ray", model_dir, ["--ray", "--workers", "1"])
        print(f"fixed cost, one article: local {one_local:.1f} s, --ray 1 worker {one_ray:.1f} s "
              f"(Ray's fixed cost {one_ray - one_local:+.1f} s)", flush=True)
        print(f"{args.articles} articles of {segments} IWSLT tst2013 segments ({used} segments); "
              f"model {'tiny' if args.quick else 'opus-mt-vi-en shape'}; 1 thread per worker; "
              f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}", flush=True)
        rows = [("local mt batch", [], "local"), ("--ray, 1 worker", ["--ray", "--workers", "1"], "ray1"),
                ("--ray, 2 workers", ["--ray", "--workers", "2"], "ray2")]
        times = {}
        for label, extra, name in rows:
            times[name] = run_batch(work / "in", work / name, model_dir, extra)
            identical = name == "local" or same_tree(work / "local", work / name)
            versus = "" if name == "local" else f"  {times[name] / times['local'] - 1:+6.1%} vs local"
            print(f"{label:<18} {times[name]:7.1f} s  {args.articles / times[name]:6.2f} articles/s{versus}"
                  f"{'' if identical else '  OUTPUTS DIFFER'}", flush=True)
        print(f"Ray overhead, 1 worker: {times['ray1'] - times['local']:+.1f} s "
              f"(goal: within 15 %: {'met' if times['ray1'] <= 1.15 * times['local'] else 'not met'}); "
              f"2 workers vs 1: {times['ray1'] / times['ray2']:.2f}x "
              f"(goal > 1: {'met' if times['ray2'] < times['ray1'] else 'not met'}); "
              f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
