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
import html
import os
import pickle
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mt import align as A  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared/data/iwslt15"
DEV_SPLITS = ("dev2010", "tst2010", "tst2011", "tst2012")
TEST_SPLITS = ("tst2013",)
LEVELS = {"moderate": (0.10, 0.05), "heavy": (0.25, 0.10)}


# ----------------------------------------------------------------------------- data
def _talks(split: str, lang: str) -> dict[str, dict[int, str]]:
    xml = (DATA / f"IWSLT15.TED.{split}.en-vi.{lang}.xml").read_text(encoding="utf-8")
    out = {}
    for m in re.finditer(r'<doc\s+docid="([^"]+)"[^>]*>(.*?)</doc>', xml, flags=re.S):
        segs = {}
        for s in re.finditer(r'<seg\s+id="(\d+)"\s*>(.*?)</seg>', m.group(2), flags=re.S):
            segs[int(s.group(1))] = html.unescape(re.sub(r"\s+", " ", s.group(2))).strip()
        out[m.group(1)] = segs
    return out


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
    gstart = {g[0]: g for g in groups}
    pv: list[str] = []
    pe: list[str] = []
    gold = []
    i = 0
    while i < n:
        if i in deleted:
            if deleted[i] == "v":  # vi line removed -> en line is a 0-1 link
                gold.append(((), (len(pe),)))
                pe.append(en[i])
            else:
                gold.append(((len(pv),), ()))
                pv.append(vi[i])
            i += 1
        elif i in gstart:
            _, size, side = gstart[i]
            if side == "v":
                gold.append(((len(pv),), tuple(range(len(pe), len(pe) + size))))
                pv.append(" ".join(vi[i:i + size]))
                pe.extend(en[i:i + size])
            else:
                gold.append((tuple(range(len(pv), len(pv) + size)), (len(pe),)))
                pv.extend(vi[i:i + size])
                pe.append(" ".join(en[i:i + size]))
            i += size
        else:
            gold.append(((len(pv),), (len(pe),)))
            pv.append(vi[i])
            pe.append(en[i])
            i += 1
    return pv, pe, gold


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
    """Wraps mt.align.embed with a pickle cache on disk (tuning runs only)."""

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
            for t, v in zip(miss, A.embed(miss)):
                self.store[t] = v
            self.dirty = True
        return np.stack([self.store[t] for t in texts]) if texts else np.zeros((0, A.EMBED_DIM), np.float32)

    def save(self):
        if self.dirty:
            tmp = self.path + ".tmp"
            with open(tmp, "wb") as f:
                pickle.dump(self.store, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
            self.dirty = False
