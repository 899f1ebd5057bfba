"""Gold standards that the accuracy tests and the benchmarks score the same way.

Sentence boundaries (tests/test_segment.py, benchmarks/segmentation.py) are compared as counts of
non-whitespace characters before the boundary, so whitespace handling does not matter; the
alignment gold (tests/test_align.py, benchmarks/alignment.py) comes from a real talk with lines
deleted and merged on purpose. Kept here so that a test and its benchmark cannot drift apart.
"""

from __future__ import annotations


def nonspace_prefix(text: str) -> list[int]:
    """prefix[i] = number of non-whitespace characters in text[:i]."""
    out = [0] * (len(text) + 1)
    c = 0
    for i, ch in enumerate(text):
        out[i] = c
        if not ch.isspace():
            c += 1
    out[len(text)] = c
    return out


def boundary_sets(text: str, gold_spans, pred_starts) -> tuple[set[int], set[int]]:
    pre = nonspace_prefix(text)
    total = pre[-1]
    gold = {pre[s] for s, _ in gold_spans[1:]}
    pred = {pre[p] for p in pred_starts if 0 < pre[p] < total}
    return gold, pred


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def balanced(doc: dict) -> bool:
    r = doc["plain"]
    return all(r["text"][s:e].count('"') % 2 == 0 for s, e in r["spans"])



def perturbed(vi: list[str], en: list[str], deleted: dict[int, str], groups: dict[int, tuple[int, str]]):
    """The talk with line ``i`` of side ``deleted[i]`` ("v" or "e") removed and the ``size``
    lines from ``start`` merged on ``side`` for each ``groups[start] = (size, side)``; returns
    (vi lines, en lines, gold links as (vi indices, en indices) tuples)."""
    pv: list[str] = []
    pe: list[str] = []
    gold = []
    i, n = 0, len(vi)
    while i < n:
        if i in deleted:
            if deleted[i] == "v":  # vi line removed -> en line is a 0-1 link
                gold.append(((), (len(pe),)))
                pe.append(en[i])
            else:
                gold.append(((len(pv),), ()))
                pv.append(vi[i])
            i += 1
        elif i in groups:
            size, side = groups[i]
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
