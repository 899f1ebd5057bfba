"""Sentence-boundary benchmark for ``mt.text.segment.split_sentences``.

Data: ``../shared/data/segmentation/{vtb,tuecl}.jsonl`` (derived from UD Vietnamese-VTB
and UD Vietnamese-TueCL, CC BY-SA 4.0; see the README there).  Gold boundaries are
``spans[i][0]`` for i >= 1; predicted and gold boundaries are compared as counts of
non-whitespace characters before the boundary, so whitespace handling does not matter.

Usage::

    .venv/bin/python benchmarks/segmentation.py [--data DIR_OR_VTB_JSONL] [--errors N]

Prints one table: boundary precision / recall / F1 for our splitter and for a naive
regex baseline on the ``plain``, ``wordseg`` and ``spaced`` renderings of VTB (full set
and the balanced-quote subset), TueCL F1 as a second check, and speed in sentences/s.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mt.text.segment import split_sentences  # noqa: E402
from testkit.scoring import balanced, boundary_sets, nonspace_prefix, prf  # noqa: E402  (shared with tests/test_segment.py)

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "segmentation"
RENDERINGS = ("plain", "wordseg", "spaced")
_NAIVE_RE = re.compile(r"(?<=[.!?…])\s+")


def naive_starts(text: str) -> list[int]:
    """Baseline: split after . ! ? … followed by whitespace."""
    return [m.end() for m in _NAIVE_RE.finditer(text)]


def ours_starts(text: str) -> list[int]:
    return [s.start for s in split_sentences(text)[1:]]


def load(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def evaluate(docs, rendering, splitter, errors=None):
    tp = fp = fn = 0
    for d in docs:
        r = d[rendering]
        text = r["text"]
        gold, pred = boundary_sets(text, r["spans"], splitter(text))
        tp += len(gold & pred)
        fp += len(pred - gold)
        fn += len(gold - pred)
        if errors is not None:
            errors.extend(_error_contexts(d["id"], text, gold, pred))
    return tp, fp, fn


def _error_contexts(doc_id, text, gold, pred):
    pre = nonspace_prefix(text)
    pos_of = {}
    for i in range(len(text) + 1):
        pos_of.setdefault(pre[i], i)
    out = []
    for kind, s in (("FP", pred - gold), ("FN", gold - pred)):
        for b in sorted(s):
            i = pos_of[b]
            out.append(f"{kind} {doc_id}: …{text[max(0, i - 70):i]}⟦|⟧{text[i:i + 50]}…")
    return out


def speed(docs, rendering, splitter, repeat=3) -> float:
    texts = [d[rendering]["text"] for d in docs]
    n_sents = sum(len(d[rendering]["spans"]) for d in docs)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for t in texts:
            splitter(t)
        best = min(best, time.perf_counter() - t0)
    return n_sents / best if best > 0 else float("inf")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="segmentation data folder or path to vtb.jsonl (default: %(default)s)")
    ap.add_argument("--errors", type=int, default=0, metavar="N",
                    help="also print up to N errors (per rendering) of our splitter")
    ap.add_argument("--rendering", choices=RENDERINGS, help="restrict --errors to one rendering")
    args = ap.parse_args(argv)

    data = args.data
    vtb_path = data if data.suffix == ".jsonl" else data / "vtb.jsonl"
    tuecl_path = vtb_path.with_name("tuecl.jsonl")
    vtb = load(vtb_path)
    bal = [d for d in vtb if balanced(d)]
    tuecl = load(tuecl_path) if tuecl_path.exists() else []

    splitters = (("ours", ours_starts), ("naive-regex", naive_starts))
    header = (f"{'splitter':<12} {'rendering':<8} {'set':<14} {'docs':>5} {'P':>7} {'R':>7} "
              f"{'F1':>7} {'sent/s':>9}")
    rows = []
    err_lines = []
    for name, fn in splitters:
        for rend in RENDERINGS:
            sps = speed(vtb, rend, fn)
            for label, docs in (("vtb", vtb), ("vtb-balanced", bal), ("tuecl", tuecl)):
                if not docs:
                    continue
                errs = [] if (args.errors and name == "ours" and label == "vtb"
                              and (args.rendering in (None, rend))) else None
                tp, fp, fneg = evaluate(docs, rend, fn, errs)
                p, r, f = prf(tp, fp, fneg)
                rows.append(f"{name:<12} {rend:<8} {label:<14} {len(docs):>5} {p:7.4f} {r:7.4f} "
                            f"{f:7.4f} {sps if label == 'vtb' else float('nan'):>9.0f}")
                if errs:
                    err_lines.append(f"--- {rend}: {len(errs)} errors")
                    err_lines.extend(errs[: args.errors])
    print(f"Sentence boundaries on {vtb_path.name} ({len(vtb)} docs, {len(bal)} balanced-quote) "
          f"and {tuecl_path.name}; sent/s = one core, full vtb set")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(row.replace("      nan", "         "))
    if err_lines:
        print()
        print("\n".join(err_lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
