"""Bounded cost per request (issue #20): segments have a size bound even without whitespace, and
word links never build a words x words matrix over a whole long input.

The probes are the inputs that cost 5-24 GB before the bound (``a,`` x 16k, ``<!`` x 40k,
``&#`` x 30k: every punctuation run is a word the linker links, and a text without whitespace
was one segment); they go through the real pipeline (segmenter, normaliser, tiny Marian model,
teacher-forced attention, linker) in a subprocess whose peak RSS is read with getrusage.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from hypothesis import given, settings, strategies as st

from mt.links import MAX_LINK_WORDS, WordAttention, links_from_matrix, word_matrix
from mt.text.segment import MAX_SEGMENT_CHARS, MAX_SEGMENT_UNITS, split_sentences
from mt.text.segment_rules import _WS_CHARS
from mt.text.words import split_words

ROOT = Path(__file__).resolve().parents[1]


def check_bounded(text: str) -> list:
    segs = split_sentences(text)
    end = 0
    for s in segs:
        assert text[s.start : s.end] == s.text and s.start >= end
        assert 0 < len(s.text) <= MAX_SEGMENT_CHARS
        assert len(split_words(s.text)) <= MAX_SEGMENT_UNITS
        end = s.end
    visible = lambda t: "".join(c for c in t if not c.isspace() and c not in _WS_CHARS)  # noqa: E731
    assert visible("".join(s.text for s in segs)) == visible(text)  # nothing lost, nothing doubled
    return segs


CHUNKS = ["a,", "<!", "&#", "a]", "x", "!", " ", "từ ", "\u0301", ". ", "\n", "á", "tên_lửa", ", ", "U.S.", "\u200b"]


@settings(max_examples=80, deadline=None, derandomize=True)  # the same examples in every run
@given(st.lists(st.tuples(st.sampled_from(CHUNKS), st.integers(1, 900)), max_size=6))
def test_runs_segment_into_bounded_pieces(runs):
    check_bounded("".join(chunk * n for chunk, n in runs))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.text(max_size=400))
def test_any_text_segments_into_bounded_pieces(text):
    check_bounded(text)


def test_no_whitespace_inputs_are_cut():
    for text in ["a," * 16370, "<!" * 40000, "a]" * 30000, "x" * 5000, "a" + "\u0301" * 4000]:
        segs = check_bounded(text)
        assert len(segs) >= len(text) // MAX_SEGMENT_CHARS


def test_cut_prefers_clause_ends_then_spaces():
    clause = "a,a,a,a,a,a,a,a,a,a; "  # 20 units and a space after ';'
    segs = check_bounded(clause * 40)
    assert len(segs) > 1 and all(s.text.endswith(";") for s in segs[:-1])


def test_word_matrix_sparse_on_long_sides():
    """30k source words, one piece each: the result is built from index pairs (no 30k x 30k)."""
    n = 30_000
    weights = np.full((4, n), 1.0 / n, dtype=np.float32)
    weights[2, 7] = 0.5
    M = word_matrix(weights, [[k] for k in range(n)], [[0], [0], [1], [2]], n, 3)
    assert M.shape == (3, n) and abs(M[1, 7] - 0.5) < 1e-6
    assert links_from_matrix(M, [False] * n, [False] * 3) == [[7, 1]]


def test_long_records_are_not_read():
    big = WordAttention([(k, k + 1) for k in range(MAX_LINK_WORDS + 1)], [(0, 1)],
                        np.zeros((1, MAX_LINK_WORDS + 1), dtype=np.float32))
    try:
        WordAttention.from_record(big.to_record())
    except ValueError:
        pass
    else:
        raise AssertionError("a record over the bound was read")


PROBE = textwrap.dedent(
    """
    import json, resource, sys, time
    sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[1] + "/tests")
    from mt.engines.loader import load_engine
    from mt.pipeline import translate_document
    engine = load_engine(sys.argv[2], engine="transformers")
    fast = engine.settings.replace(beam=1)
    translate_document("Xin chào.", engine, settings=fast, quality=False)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {}
    for name, text in [("a,", "a," * 16370), ("<!", "<!" * 40000), ("&#", "&#" * 30000)]:
        started = time.perf_counter()
        doc = translate_document(text, engine, settings=fast, quality=False)
        out[name] = {
            "seconds": time.perf_counter() - started,
            "segments": [[p.start, p.end, len(p.src_words)] for p in doc.sentences],
            "exact": all(text[p.start:p.end] == p.source for p in doc.sentences),
            "words": [len(p.tgt_words) for p in doc.sentences],
            "linked": doc.timings.get("links_sentences", 0),
        }
    out["growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps(out))
    """
)


def test_probes_through_the_pipeline_stay_bounded(tiny_model_dir):
    result = subprocess.run([sys.executable, "-c", PROBE, str(ROOT), str(tiny_model_dir)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["growth_mb"] < 400, out["growth_mb"]  # before the bound: 4-24 GB
    for name in ("a,", "<!", "&#"):
        probe = out[name]
        assert probe["exact"] and probe["seconds"] < 300, (name, probe["seconds"])
        assert len(probe["segments"]) > 100
        for start, end, n_words in probe["segments"]:
            assert end - start <= MAX_SEGMENT_CHARS and n_words <= MAX_SEGMENT_UNITS
        assert any(probe["words"]) and probe["linked"] > 0  # translated, links computed
