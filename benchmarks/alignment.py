"""Sentence-alignment benchmark on IWSLT'15 TED en–vi talks with merged and deleted lines.

Data: ``../shared/data/iwslt15`` (TED, CC BY-NC-ND 3.0): official XML, one ``<doc>`` per talk,
``<seg id=..>`` lines aligned by id between the ``.vi.xml`` and ``.en.xml`` files.

Perturbation (seeded, per talk, independently for each level).  Start from the talk's N
line pairs (all 1-1).  ``delete_rate * N`` lines (rounded) are deleted: for each a random
side is chosen and that side's line is removed, so its counterpart becomes a gold 1-0 or
0-1 link.  Then groups of 2 or 3 adjacent surviving pairs (size uniform) are merged on a
random side (joined with one space) until about ``merge_rate * N`` of the lines belong to a
merged group; the gold link of a group is 1-2/1-3 or 2-1/3-1.  Deleted and merged lines
are disjoint and a group never spans a deleted line.

    level      merge_rate  delete_rate
    moderate   0.10        0.05
    heavy      0.25        0.10

Metrics (per level, pooled over the talks of a split).  A link is the pair
(vi indices, en indices) into the perturbed documents.
  * strict P/R/F1: a predicted link is correct iff it is identical to a gold link.  Every
    link counts, 1-0 and 0-1 links included (an aligner that folds a line into its
    neighbour loses both the null link and the merged link).
  * lax P/R/F1: a predicted link with both sides non-empty is correct iff some gold link
    shares at least one vi index and at least one en index with it; a null link (1-0 or
    0-1) is correct only if it equals a gold link.  Recall is computed symmetrically
    (gold links matched by some predicted link under the same rule).
  * deleted-line recovery: share of gold 1-0/0-1 links that are predicted exactly.
  * lines/s: (vi lines + en lines) / wall time of the aligner, embeddings included,
    starting from an empty embedding cache (no on-disk cache in the reported run).

Tune on dev2010, tst2010, tst2011, tst2012; report on tst2013.

    python benchmarks/alignment.py                 # report: tst2013 (plus 100-line talk timing)
    python benchmarks/alignment.py --split dev     # tuning splits
    python benchmarks/alignment.py --quick         # first 4 talks only
    python benchmarks/alignment.py --emb-cache /tmp/align-emb.pkl   # on-disk cache for tuning
"""
from __future__ import annotations

import argparse
import os
import pickle
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # mt and testkit from the checkout

from mt import align as A  # noqa: E402
from testkit.scoring import perturbed  # noqa: E402  (shared with tests/test_align.py)
from testkit.shared_data import iwslt_documents  # noqa: E402  (the one IWSLT reader)
from mt.quality import embeddings as EM  # noqa: E402

DEV_SPLITS = ("dev2010", "tst2010", "tst2011", "tst2012")
TEST_SPLITS = ("tst2013",)
LEVELS = {"moderate": (0.10, 0.05), "heavy": (0.25, 0.10)}


# ----------------------------------------------------------------------------- data
def _talks(split: str, lang: str) -> dict[str, dict[int, str]]:
    return {talk.docid: talk.segments for talk in iwslt_documents(split, lang)}


def load_split(split: str) -> list[tuple[str, list[str], list[str]]]:
    """Talks of one split as (talk id, vi lines, en lines), lines paired by <seg id>."""
    vi, en = _talks(split, "vi"), _talks(split, "en")
    talks = []
    for doc, vsegs in vi.items():
        esegs = en.get(doc, {})
        ids = sorted(set(vsegs) & set(esegs))
        talks.append((f"{split}/{doc}", [vsegs[i] for i in ids], [esegs[i] for i in ids]))
    return talks


def perturb(vi: list[str], en: list[str], merge_rate: float, delete_rate: float, seed: int):
    """Merged/deleted version of a parallel talk and its gold links (see module doc)."""
    rng = random.Random(seed)
    n = len(vi)
    n_del = round(delete_rate * n)
    deleted = {i: rng.choice("ve") for i in rng.sample(range(n), n_del)}
    target = round(merge_rate * n)
    groups: list[tuple[int, int, str]] = []  # (start, size, side)
    used = set(deleted)
    tries = 0
    covered = 0
    while covered < target and tries < 10000:
        tries += 1
        size = rng.choice((2, 3))
        if target - covered < 2:
            break
        start = rng.randrange(0, max(1, n - size + 1))
        span = range(start, start + size)
        if start + size > n or any(k in used for k in span):
            continue
        used.update(span)
        groups.append((start, size, rng.choice("ve")))
        covered += size
    return perturbed(vi, en, deleted, {start: (size, side) for start, size, side in groups})


# ----------------------------------------------------------------------------- metrics
def _lax_hit(link, others_by_v, others_by_e) -> bool:
    v, e = link
    if not v or not e:
        return link in others_by_v.get("exact", set())
    cand = set()
    for i in v:
        cand |= others_by_v.get(i, set())
    for c in cand:
        if set(c[1]) & set(e):
            return True
    return False


def _index(links):
    by_v: dict = {"exact": set(links)}
    for link in links:
        for i in link[0]:
            by_v.setdefault(i, set()).add(link)
    return by_v


def score_links(pred, gold) -> dict[str, int]:
    pred = [tuple(map(tuple, p)) for p in pred]
    gold = [tuple(map(tuple, g)) for g in gold]
    ps, gs = set(pred), set(gold)
    gi, pi = _index(gold), _index(pred)
    nulls = [g for g in gold if not g[0] or not g[1]]
    return {
        "pred": len(pred), "gold": len(gold),
        "strict": len(ps & gs),
        "lax_p": sum(_lax_hit(p, gi, None) for p in pred),
        "lax_r": sum(_lax_hit(g, pi, None) for g in gold),
        "null_gold": len(nulls), "null_hit": sum(g in ps for g in nulls),
    }


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def summarise(counts: list[dict[str, int]]) -> dict[str, float]:
    tot = {k: sum(c[k] for c in counts) for k in counts[0]}
    sp, sr = tot["strict"] / max(tot["pred"], 1), tot["strict"] / max(tot["gold"], 1)
    lp, lr = tot["lax_p"] / max(tot["pred"], 1), tot["lax_r"] / max(tot["gold"], 1)
    return {"strict_p": sp, "strict_r": sr, "strict_f1": _f1(sp, sr),
            "lax_f1": _f1(lp, lr), "null_rec": tot["null_hit"] / max(tot["null_gold"], 1),
            "null_gold": tot["null_gold"]}


# ----------------------------------------------------------------------------- embeddings
class DiskCachedEmbed:
    """Wraps mt.quality.embeddings.embed with a pickle cache on disk (tuning runs only)."""

    def __init__(self, path: str):
        self.path = path
        self.store: dict[str, np.ndarray] = {}
        if os.path.exists(path):
            with open(path, "rb") as f:
                self.store = pickle.load(f)
        self.dirty = False

    def __call__(self, texts):
        miss = list(dict.fromkeys(t for t in texts if t not in self.store))
        if miss:
            for t, v in zip(miss, EM.embed(miss)):
                self.store[t] = v
            self.dirty = True
        return np.stack([self.store[t] for t in texts]) if texts else np.zeros((0, EM.EMBED_DIM), np.float32)

    def save(self):
        if self.dirty:
            tmp = self.path + ".tmp"
            with open(tmp, "wb") as f:
                pickle.dump(self.store, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
            self.dirty = False


def talk_seed(talk: str, level: str, seed: int) -> int:
    import zlib
    return zlib.crc32(f"{seed}/{level}/{talk}".encode())


# ----------------------------------------------------------------------------- baselines
def gale_church(vi: list[str], en: list[str], max_group: int = 3) -> list[tuple[tuple, tuple]]:
    """Length-only DP: Gale & Church (1993) match cost and shape priors, vi/en character
    ratio 1.05 (measured), variance 20 per character (best of 6.8/20/40 on dev talks)."""
    import math
    c, s2 = 1.05, 20.0
    prior = {(1, 1): 0.89, (1, 0): 0.0099, (0, 1): 0.0099, (2, 1): 0.089, (1, 2): 0.089,
             (3, 1): 0.01, (1, 3): 0.01}
    cost = {k: -math.log(v) for k, v in prior.items() if max(k) <= max_group}
    lv = [len(x) for x in vi]
    le = [len(x) for x in en]
    n, m = len(vi), len(en)
    INF = float("inf")
    D = [[INF] * (m + 1) for _ in range(n + 1)]
    bk = [[None] * (m + 1) for _ in range(n + 1)]
    D[0][0] = 0.0

    def match(l1, l2):
        if l1 == 0 and l2 == 0:
            return 0.0
        mean = (l1 + l2 / c) / 2
        z = (c * l1 - l2) / math.sqrt(s2 * max(mean, 1e-6))
        pd = 2 * (1 - 0.5 * (1 + math.erf(abs(z) / math.sqrt(2))))
        return -math.log(max(pd, 1e-300))

    for i in range(n + 1):
        for j in range(m + 1):
            if i == j == 0:
                continue
            for (a, b), pc in cost.items():
                if i >= a and j >= b and D[i - a][j - b] < INF:
                    v = D[i - a][j - b] + pc + match(sum(lv[i - a:i]), sum(le[j - b:j]))
                    if v < D[i][j]:
                        D[i][j], bk[i][j] = v, (a, b)
    out = []
    i, j = n, m
    while i or j:
        a, b = bk[i][j]
        out.append((tuple(range(i - a, i)), tuple(range(j - b, j))))
        i, j = i - a, j - b
    return out[::-1]


# ----------------------------------------------------------------------------- runner
def run_split(splits, levels, embed_fn, *, quick=False, seed=0, params=None, baseline=True,
              verbose=False):
    talks = [t for s in splits for t in load_split(s)]
    if quick:
        talks = talks[:4]
    results = {}
    for level in levels:
        mr, dr = LEVELS[level]
        ours, base = [], []
        lines = 0
        t_ours = t_base = cpu_ours = 0.0
        for talk, vi, en in talks:
            pv, pe, gold = perturb(vi, en, mr, dr, talk_seed(talk, level, seed))
            lines += len(pv) + len(pe)
            t0, c0 = time.perf_counter(), time.process_time()
            pred = A.align_sentences(pv, pe, embed=embed_fn, params=params)
            t_ours += time.perf_counter() - t0
            cpu_ours += time.process_time() - c0
            c = score_links([(l.vi, l.en) for l in pred], gold)
            ours.append(c)
            if verbose:
                s = summarise([c])
                print(f"  {talk:18s} {level:8s} n={len(pv):4d}/{len(pe):4d} strict={s['strict_f1']:.3f} "
                      f"null={c['null_hit']}/{c['null_gold']}", flush=True)
            if baseline:
                t0 = time.perf_counter()
                bp = gale_church(pv, pe)
                t_base += time.perf_counter() - t0
                base.append(score_links(bp, gold))
        results[level] = {"ours": summarise(ours), "base": summarise(base) if base else None,
                          "lines": lines, "t_ours": t_ours, "t_base": t_base, "cpu_ours": cpu_ours,
                          "talks": len(talks)}
    return results


class CountingEmbed:
    """mt.quality.embeddings.embed, counting how many texts were actually sent to the model."""

    def __init__(self, inner=None):
        self.inner = inner
        self.calls = 0
        self.texts = 0

    def __call__(self, texts):
        self.calls += 1
        if self.inner is not None:
            return self.inner(texts)
        before = len(EM._cache)
        out = EM.embed(texts)
        self.texts += len(EM._cache) - before
        return out


def time_talk(n_lines: int = 100, level: str | None = None, seed: int = 0):
    """Cold-cache, end-to-end alignment time of the first tst2013 talk with >= n_lines lines."""
    talk, vi, en = next(t for t in load_split("tst2013") if len(t[1]) >= n_lines)
    vi, en = vi[:n_lines], en[:n_lines]
    if level:
        mr, dr = LEVELS[level]
        vi, en, _ = perturb(vi, en, mr, dr, talk_seed(talk, level, seed))
    EM.clear_embed_cache()
    counter = CountingEmbed()
    t0, c0 = time.perf_counter(), time.process_time()
    A.align_sentences(vi, en, embed=counter)
    return talk, len(vi), len(en), time.perf_counter() - t0, time.process_time() - c0, counter.texts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="test",
                    help="test (tst2013, the report), dev (dev2010..tst2012, tuning) or one split name")
    ap.add_argument("--quick", action="store_true", help="first 4 talks only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--levels", default="moderate,heavy")
    ap.add_argument("--emb-cache", help="pickle file caching embeddings across runs (tuning only: "
                    "lines/s is then not a cold-cache figure)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--no-talk-timing", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    splits = {"test": TEST_SPLITS, "dev": DEV_SPLITS}.get(args.split, (args.split,))
    role = "REPORT (held-out test)" if set(splits) <= set(TEST_SPLITS) else "TUNING (development)"
    print(f"splits: {', '.join(splits)} — {role}; parameters tuned on {', '.join(DEV_SPLITS)}")
    for lev in args.levels.split(","):
        mr, dr = LEVELS[lev]
        print(f"  {lev}: {mr:.0%} of lines in merged groups of 2-3 (side random), {dr:.0%} of lines deleted "
              f"(side random); seed {args.seed}")
    disk = DiskCachedEmbed(args.emb_cache) if args.emb_cache else None
    print(f"embeddings: {'on-disk cache ' + args.emb_cache + ' (warm)' if disk else 'cold in-process cache per level'}"
          f"; {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at start")
    print(f"parameters: {A.DEFAULT_PARAMS}")

    rows = []
    for lev in args.levels.split(","):
        EM.clear_embed_cache()
        res = run_split(splits, [lev], disk or EM.embed, quick=args.quick, seed=args.seed,
                        baseline=not args.no_baseline, verbose=args.verbose)[lev]
        rows.append((lev, "e5 two-pass DP (ours)", res["ours"], res["lines"] / max(res["t_ours"], 1e-9),
                     res["lines"] / max(res["cpu_ours"], 1e-9)))
        if res["base"]:
            rows.append((lev, "Gale-Church (length)", res["base"], res["lines"] / max(res["t_base"], 1e-9),
                         None))
        talks, lines = res["talks"], res["lines"]
    if disk:
        disk.save()
    print(f"\n{talks} talks; per level about {lines} lines (vi + en) after perturbation")
    hdr = f"{'level':9s} {'system':24s} {'strict P':>8s} {'strict R':>8s} {'strict F1':>9s} {'lax F1':>7s} " \
          f"{'deleted recovered':>17s} {'lines/s':>8s} {'lines/CPU-s':>11s}"
    print(hdr)
    print("-" * len(hdr))
    for lev, name, s, lps, lpc in rows:
        rec = f"{s['null_rec']:.3f} (n={s['null_gold']})"
        cpu = f"{lpc:11.1f}" if lpc else f"{'':11s}"
        print(f"{lev:9s} {name:24s} {s['strict_p']:8.3f} {s['strict_r']:8.3f} {s['strict_f1']:9.3f} "
              f"{s['lax_f1']:7.3f} {rec:>17s} {lps:8.1f} {cpu}")
    print("strict: link identical to a gold link, all links counted incl. 1-0/0-1; lax: overlaps a gold link "
          "on both sides (null links must be exact); deleted recovered: gold 1-0/0-1 links predicted exactly;\n"
          "lines/s: wall clock incl. embedding from a cold cache (depends on other load on the machine); "
          "lines/CPU-s: per CPU-second of this process, all threads")
    if not args.no_talk_timing:
        for level in (None, "moderate"):
            talk, nv, ne, secs, cpu, nemb = time_talk(100, level, args.seed)
            print(f"100-line talk {talk} ({'clean' if not level else level}: {nv} vi / {ne} en lines), cold "
                  f"cache, end to end: {secs:.2f} s wall, {cpu:.2f} CPU-s ({nemb} texts embedded; "
                  f"load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
