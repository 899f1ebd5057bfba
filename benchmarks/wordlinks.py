"""Which cross-attention layer/head to take word links from: a per-head report for a real model.

No real weights were available where the word links (``mt.links``, ``mt.engines.attention``)
were written, so their choice (Marian / OPUS-MT ``transformer-align``: last decoder layer, head 0,
the head trained with guided alignment; other families: mean over the last layer's heads) is from the training recipe, not
measured. With a model directory at hand, this prints for every decoder layer × head, on real
IWSLT'15 sentences translated by that model (teacher-forced on its own greedy output):

* ``entropy``: mean entropy (bits) of a target piece's attention over the source pieces -- a
  head that aligns is sharp (low entropy); ``uniform`` is the entropy of uniform attention;
* ``eos``: mean attention mass on the source EOS / special tokens (a "no-op" sink);
* ``agree``: share of English words whose argmax Vietnamese word under this head equals the one
  under the current choice (``MT_ALIGN_LAYER`` / ``MT_ALIGN_HEAD`` or the family default);
* ``mono``: share of consecutive English words whose linked Vietnamese words are at most 2
  apart -- Vietnamese→English is mostly monotone, so a head that aligns scores high.

A guided-alignment head shows low entropy, little EOS mass and high ``mono``; pick the best
(``MT_ALIGN_LAYER=L MT_ALIGN_HEAD=H``) if it is not the default.

    python benchmarks/wordlinks.py /path/to/opus-mt-vi-en      # a local model directory
    python benchmarks/wordlinks.py --tiny                      # the random test model (plumbing only)
    python benchmarks/wordlinks.py MODEL --sentences 100
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # mt and testkit from the checkout

from mt.engines.attention import TokenAttention, alignment_choice, piece_spans, target_ids  # noqa: E402
from mt.engines.forced_attention import forced_cross_attention  # noqa: E402
from mt.links import word_attention  # noqa: E402
from mt.text.normalize import normalize  # noqa: E402
from testkit.shared_data import iwslt_segments  # noqa: E402
from mt.engines.base import DecodingSettings  # noqa: E402
from mt.engines.loader import load_engine  # noqa: E402


def word_argmax(engine, source: str, translation: str, matrix: np.ndarray, src_ids, tgt_ids) -> list[int]:
    """Argmax Vietnamese word (index, -1 = none) of each English word, from a piece-level matrix."""
    tok = engine.tokenizer
    special = set(tok.all_special_ids) - {tok.unk_token_id}
    keep = [j for j, t in enumerate(src_ids) if t not in special]
    src_pieces = [None if t == tok.unk_token_id else p for t, p in zip(src_ids, tok.convert_ids_to_tokens(src_ids))]
    text = engine.spec.prefix + " ".join(source.split())
    src_spans = piece_spans([src_pieces[j] for j in keep], text)
    shift = len(engine.spec.prefix)
    src_spans = [(max(a - shift, 0), max(b - shift, 0)) for a, b in src_spans]
    forced = engine.spec.strip_prefix + translation
    tgt_pieces = [None if t == tok.unk_token_id else p for t, p in zip(tgt_ids, tok.convert_ids_to_tokens(tgt_ids))]
    shift = len(engine.spec.strip_prefix)
    tgt_spans = [(max(a - shift, 0), max(b - shift, 0)) for a, b in piece_spans(tgt_pieces, forced)]
    token = TokenAttention(src_spans, tgt_spans, matrix[:, keep])
    collapsed = " ".join(source.split())
    words = word_attention(token, collapsed, translation)
    M = words.weights
    return [int(row.argmax()) if row.max() > 0 else -1 for row in M]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", help="model directory or registry id (cached)")
    parser.add_argument("--tiny", action="store_true", help="use the random-weight test model")
    parser.add_argument("--sentences", type=int, default=60)
    args = parser.parse_args()
    if not args.model and not args.tiny:
        parser.error("give a model directory, or --tiny")

    with tempfile.TemporaryDirectory() as tmp:
        if args.tiny:
            from testkit.tiny_model import build_tiny_marian

            model = str(build_tiny_marian(Path(tmp) / "tiny"))
        else:
            model = args.model
        engine = load_engine(model, engine="transformers")  # reads torch attention directly
        sources = [normalize(s).text for s in iwslt_segments("dev2010", "vi")[: args.sentences]]
        translations = engine.translate(sources, DecodingSettings(beam=1, max_len_a=1.5, max_len_b=10))
        pairs = [(s, t) for s, t in zip(sources, translations) if s.strip() and t.strip()]
        tok = engine.tokenizer
        src_ids = engine._encode([engine.spec.prefix + " ".join(s.split()) for s, _ in pairs])
        tgt_ids = target_ids(tok, [engine.spec.strip_prefix + t for _, t in pairs])
        full = forced_cross_attention(engine, src_ids, tgt_ids, layers=None, head="all")  # (L, H, T, S) each
        current = forced_cross_attention(engine, src_ids, tgt_ids)  # the module's choice
        n_layers, n_heads = full[0].shape[:2]
        special = set(tok.all_special_ids) - {tok.unk_token_id}
        chosen = alignment_choice(engine.spec.family, n_layers, n_heads)
        print(f"{engine!r}: {len(pairs)} sentences; current choice: layers {chosen[0]}, head "
              f"{'mean' if chosen[1] is None else chosen[1]}")
        reference = [word_argmax(engine, s, t, m, si, ti) for (s, t), m, si, ti in zip(pairs, current, src_ids, tgt_ids)]
        uniform = np.mean([np.log2(max(len(ids), 1)) for ids in src_ids])
        print(f"{'layer':>5} {'head':>4} {'entropy':>8} {'eos':>6} {'agree':>6} {'mono':>6}   (uniform entropy {uniform:.2f} bits)")
        for layer in range(n_layers):
            for head in [*range(n_heads), None]:
                entropy, eos, agree, mono, words = [], [], 0, [], 0
                for (s, t), att, si, ti, ref in zip(pairs, full, src_ids, tgt_ids, reference):
                    m = att[layer].mean(axis=0) if head is None else att[layer, head]
                    p = np.clip(m, 1e-12, 1.0)
                    entropy.append(float(np.mean(-(p * np.log2(p)).sum(axis=1))))
                    cols = [j for j, x in enumerate(si) if x in special]
                    eos.append(float(m[:, cols].sum(axis=1).mean()) if cols else 0.0)
                    links = word_argmax(engine, s, t, m, si, ti)
                    agree += sum(a == b for a, b in zip(links, ref))
                    words += len(links)
                    steps = [abs(a - b) <= 2 for a, b in zip(links, links[1:]) if a >= 0 and b >= 0]
                    if steps:
                        mono.append(float(np.mean(steps)))
                name = "mean" if head is None else str(head)
                print(f"{layer:>5} {name:>4} {np.mean(entropy):8.2f} {np.mean(eos):6.2f} {agree / max(words, 1):6.2f} "
                      f"{np.mean(mono) if mono else 0:6.2f}")


if __name__ == "__main__":
    main()
