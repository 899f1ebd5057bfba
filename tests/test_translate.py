"""The translation engine on the tiny random-weight Marian model (real transformers code path)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from mt.errors import ConfigError
from mt.models import ModelSpec, resolve_model
from testkit.shared_data import needs_shared_data
from testkit.tiny_model import sample_sentences
from mt.engines.base import DecodingSettings, Engine, batches_by_tokens
from mt.engines.loader import load_engine
from mt.engines.transformers import TransformersEngine

GREEDY = DecodingSettings(beam=1, max_len_a=1.2, max_len_b=10)


@pytest.fixture(scope="module")
def sentences(tiny_engine) -> list[str]:
    """14 real Vietnamese sentences (IWSLT'15 dev2010) of 4 to 40 tokens, in varied order."""
    pool = sample_sentences("vi")
    lengths = tiny_engine._encode(pool)
    picked = [s for s, ids in zip(pool, lengths) if 4 <= len(ids) <= 40]
    assert len(picked) >= 14
    return picked[:14]


def test_tiny_model_build_is_deterministic_and_cached(tiny_model_dir, tmp_path):
    import hashlib

    from testkit.tiny_model import build_tiny_marian

    again = build_tiny_marian(tmp_path / "again")
    for name in ("model.safetensors", "vocab.json", "source.spm", "target.spm", "config.json"):
        digest = [hashlib.sha256((d / name).read_bytes()).hexdigest() for d in (tiny_model_dir, again)]
        assert digest[0] == digest[1], name
    stamp = (again / "config.json").stat().st_mtime_ns
    assert build_tiny_marian(tmp_path / "again") == again  # same arguments: not rebuilt in-process
    assert (again / "config.json").stat().st_mtime_ns == stamp


# ---------------------------------------------------------------------------------------------
# batches_by_tokens


def test_batches_cover_every_index_once_longest_first():
    lengths = [5, 30, 1, 12, 12, 7, 30, 2]
    batches = batches_by_tokens(lengths, max_tokens=64, max_sentences=3)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert flat[:2] == [1, 6] and flat[2:4] == [3, 4]  # ties keep input order


def test_batches_respect_padded_token_budget_and_sentence_limit():
    lengths = [10, 9, 8, 8, 3, 3, 3, 3, 3, 3, 3]
    batches = batches_by_tokens(lengths, max_tokens=30, max_sentences=4)
    for b in batches:
        assert len(b) <= 4
        assert max(lengths[i] for i in b) * len(b) <= 30
    assert batches[0] == [0, 1, 2]  # 10 x 3 = 30 fits, a 4th would make 40
    assert [len(b) for b in batches] == [3, 3, 4, 1]  # 8 x 4 = 32 > 30; then the 4-sentence limit


def test_batches_oversized_sentence_alone_and_edge_cases():
    assert batches_by_tokens([], 100, 8) == []
    assert batches_by_tokens([500, 2, 2], 100, 8) == [[0], [1, 2]]
    assert batches_by_tokens([0, 0], 1, 8) == [[0], [1]]  # empty counts as one token
    assert batches_by_tokens([4] * 5, 10_000, 1) == [[0], [1], [2], [3], [4]]
    with pytest.raises(ValueError):
        batches_by_tokens([1], 0, 1)
    with pytest.raises(ValueError):
        batches_by_tokens([1], 1, 0)


# ---------------------------------------------------------------------------------------------
# DecodingSettings


def test_decoding_settings_key_cap_and_validation():
    s = DecodingSettings(beam=4, max_len_a=1.5, max_len_b=10)
    assert s.key() == "beam=4,a=1.5,b=10"
    assert DecodingSettings(2, 1, 0).key() == "beam=2,a=1,b=0"
    assert s.max_new_tokens(20) == 40 and DecodingSettings(1, 0, 0).max_new_tokens(5) == 1
    assert s.replace(beam=1).beam == 1 and hash(s) == hash(DecodingSettings(4, 1.5, 10))
    for bad in (dict(beam=0), dict(max_len_a=-1.0), dict(max_len_b=-2), dict(beam=1.5)):
        with pytest.raises(ConfigError):
            DecodingSettings(**{**dict(beam=1, max_len_a=1.0, max_len_b=1), **bad})
    spec = resolve_model("vinai/vinai-translate-vi2en-v2")
    assert DecodingSettings.for_spec(spec) == DecodingSettings(5, 1.5, 10)


# ---------------------------------------------------------------------------------------------
# translate


def test_engine_defaults(tiny_engine, tiny_model_dir):
    assert isinstance(tiny_engine, TransformersEngine) and isinstance(tiny_engine, Engine)
    assert tiny_engine.name == "transformers" and tiny_engine.precision == "fp32"
    assert tiny_engine.device == "cpu"
    assert tiny_engine.spec.path == tiny_model_dir.resolve()
    assert tiny_engine.settings == DecodingSettings(4, 1.5, 10)


def test_empty_inputs(tiny_engine):
    assert tiny_engine.translate([]) == []
    assert tiny_engine.translate(["", "   ", "\n\t"]) == ["", "", ""]
    out = tiny_engine.translate(["", "Xin chào các bạn.", " "], GREEDY)
    assert out[0] == "" and out[2] == "" and out[1]
    with pytest.raises(TypeError):
        tiny_engine.translate("Xin chào")


# The varied-output check needs the tiny model trained on IWSLT text (the built-in fallback is too small).
@needs_shared_data("iwslt15")
@pytest.mark.parametrize("settings", [GREEDY, DecodingSettings(beam=3, max_len_a=1.2, max_len_b=10)], ids=["greedy", "beam3"])
def test_batched_output_equals_one_at_a_time_in_input_order(tiny_engine, sentences, monkeypatch, settings):
    # Each sentence keeps its own length cap inside a batch, so batching changes nothing.
    single = [tiny_engine.translate([s], settings)[0] for s in sentences]
    # Small budget: several batches, each length-sorted; the result must still follow the input.
    monkeypatch.setattr(tiny_engine, "max_batch_tokens", 120)
    monkeypatch.setattr(tiny_engine, "max_batch_sentences", 5)
    lengths = [len(e) for e in tiny_engine._encode(sentences)]
    assert len(batches_by_tokens(lengths, *tiny_engine.batch_limits(settings))) >= 3
    assert lengths != sorted(lengths, reverse=True)  # sorting really reorders
    batched = tiny_engine.translate(sentences, settings)
    assert batched == single
    # A random model still gives varied, mostly non-empty output.
    assert sum(bool(t) for t in batched) >= len(batched) - 2
    assert len(set(batched)) >= len(batched) - 2


def test_pruned_greedy_equals_plain_generate(tiny_engine, sentences, monkeypatch):
    # Greedy batches drop finished sentences (custom_generate loop); same ids as plain generate.
    encoded = tiny_engine._encode(sentences)
    assert tiny_engine.prune_finished
    with tiny_engine._lock:
        _, pruned = tiny_engine.generate_ids(encoded, GREEDY)
        monkeypatch.setattr(tiny_engine, "prune_finished", False)
        _, plain = tiny_engine.generate_ids(encoded, GREEDY)
    assert pruned.shape == plain.shape and pruned.tolist() == plain.tolist()
    pad = tiny_engine.tokenizer.pad_token_id
    lengths = {int((row[1:] != pad).sum()) for row in plain}
    assert len(lengths) > 3  # sentences really ended at different steps


def test_pruned_greedy_failure_falls_back_to_plain_generate(tiny_model_dir, sentences, monkeypatch, caplog):
    import mt.engines.transformers as transformers_module

    engine = load_engine(str(tiny_model_dir), engine="transformers")
    expected = engine.translate(sentences[:5], GREEDY)

    def broken(*args, **kwargs):
        raise AttributeError("internal API moved")

    monkeypatch.setattr(transformers_module, "_greedy_pruned", broken)
    with caplog.at_level("WARNING", logger="mt.engines.transformers"):
        assert engine.translate(sentences[:5], GREEDY) == expected
    assert not engine.prune_finished
    assert "using plain generate" in caplog.text


def test_batch_limits_shrink_with_beam(tiny_engine, monkeypatch):
    monkeypatch.setattr(tiny_engine, "max_batch_tokens", 8192)
    monkeypatch.setattr(tiny_engine, "max_batch_sentences", 64)
    assert tiny_engine.batch_limits(GREEDY) == (8192, 64)
    assert tiny_engine.batch_limits(DecodingSettings(4, 1.5, 10)) == (2048, 16)
    assert tiny_engine.batch_limits(DecodingSettings(128, 1.5, 10)) == (64, 1)


def test_deterministic_across_calls_and_loads(tiny_engine, tiny_model_dir, sentences):
    first = tiny_engine.translate(sentences[:6])
    assert tiny_engine.translate(sentences[:6]) == first
    other = load_engine(str(tiny_model_dir), engine="transformers")
    assert other.translate(sentences[:6]) == first


def test_beam_search_runs(tiny_engine, sentences):
    out = tiny_engine.translate(sentences[:4], DecodingSettings(beam=3, max_len_a=1.0, max_len_b=5))
    assert len(out) == 4 and all(isinstance(t, str) for t in out)


@pytest.mark.parametrize("settings", [DecodingSettings(1, 1.2, 10), DecodingSettings(2, 0.5, 2), DecodingSettings(1, 0.0, 3)])
def test_output_length_cap(tiny_engine, sentences, settings):
    encoded = tiny_engine._encode(sentences[:8])
    pad = tiny_engine.tokenizer.pad_token_id
    with tiny_engine._lock:
        for ids in encoded:  # one sentence per batch: the cap is exact
            _, out = tiny_engine.generate_ids([ids], settings)
            generated = int((out[0] != pad).sum())  # drops the decoder start token (pad)
            assert generated <= int(settings.max_len_a * len(ids) + settings.max_len_b)
        _, out = tiny_engine.generate_ids(encoded, settings)  # a batch: cap from its longest source
        assert out.shape[1] - 1 <= settings.max_new_tokens(max(len(e) for e in encoded))
    short = tiny_engine.translate(sentences[:8], DecodingSettings(1, 0.0, 3))
    target = tiny_engine.tokenizer
    assert all(len(target(text_target=t)["input_ids"]) - 1 <= 3 * 3 for t in short)  # few words only


def test_generate_ids_can_return_attentions(tiny_engine, sentences):
    encoded = tiny_engine._encode(sentences[:2])
    with tiny_engine._lock:
        _, out = tiny_engine.generate_ids(
            encoded, GREEDY, output_attentions=True, return_dict_in_generate=True
        )
    assert out.sequences.shape[0] == 2
    assert out.cross_attentions and out.cross_attentions[0][0].shape[-1] == max(len(e) for e in encoded)


def test_thread_safety_same_as_sequential(tiny_engine, sentences):
    groups = [sentences[i::4] for i in range(4)]
    expected = [tiny_engine.translate(g, GREEDY) for g in groups]
    results: list = [None] * 4
    errors: list = []

    def work(k):
        try:
            for _ in range(2):
                results[k] = tiny_engine.translate(groups[k], GREEDY)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    assert results == expected


@needs_shared_data("iwslt15")  # the fallback-trained vocabulary has no ":" (decodes as "vi Xin chào")
def test_prefix_and_strip_prefix(tiny_model_dir, monkeypatch):
    spec = ModelSpec(
        str(tiny_model_dir), "marian", options={"prefix": "vi: ", "strip_prefix": "en: "}, path=tiny_model_dir
    )
    engine = load_engine(spec, engine="transformers")
    seen = []

    def fake_batch(encoded, settings):
        seen.extend(encoded)
        return ["en: Hello there"] * len(encoded)

    monkeypatch.setattr(engine, "_translate_batch", fake_batch)
    assert engine.translate(["Xin  chào", "", "Tạm biệt"]) == ["Hello there", "", "Hello there"]
    decoded = [engine.tokenizer.decode(ids, skip_special_tokens=True) for ids in seen]
    assert sorted(decoded) == ["vi: Tạm biệt", "vi: Xin chào"]
    assert engine._postprocess("  en:Hi ") == "Hi" and engine._postprocess("Hi en: x") == "Hi en: x"


def test_namespace_follows_model_version_engine_and_settings(tiny_engine, tiny_model_dir, tmp_path):
    ns = tiny_engine.namespace()
    assert ns == tiny_engine.namespace(tiny_engine.settings)
    assert ns.startswith(f"{tiny_engine.spec.id}@sha256:")
    assert "|transformers-fp32|beam=4,a=1.5,b=10" in ns
    assert tiny_engine.namespace(DecodingSettings(5, 1.5, 10)) != ns
    assert tiny_engine.namespace(DecodingSettings(4, 1.2, 10)) != ns
    # Same files elsewhere: same content hash. Changed weights file: different namespace.
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    for f in copy.iterdir():
        src = tiny_model_dir / f.name
        os.utime(f, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns))
    other = load_engine(str(copy), engine="transformers")
    assert other.namespace().split("@", 1)[1] == ns.split("@", 1)[1]
    weights = copy / "model.safetensors"
    os.utime(weights, ns=(time.time_ns(), weights.stat().st_mtime_ns + 10**9))
    assert load_engine(str(copy), engine="transformers").namespace() != other.namespace()


def test_corrupt_model_directory_is_model_unavailable(tiny_model_dir, tmp_path):
    import shutil

    from mt.errors import ModelUnavailable

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelUnavailable, match="cannot load model .*broken"):
        load_engine(str(broken), engine="transformers")


def test_load_engine_rejects_unknown_engine_and_device(tiny_model_dir):
    with pytest.raises(ConfigError, match="unknown or unavailable engine 'onnx'"):
        load_engine(str(tiny_model_dir), engine="onnx")
    with pytest.raises(ConfigError, match="unknown device"):
        load_engine(str(tiny_model_dir), device="toaster")
    assert load_engine(str(tiny_model_dir), engine="transformers", device="cpu").name == "transformers"


class _FakeTokenizer:
    unk_token_id = 3
    vocab = {"en_XX": 250004, "eng_Latn": 256047, "__en__": 128022}

    def convert_tokens_to_ids(self, token):
        return self.vocab.get(token, self.unk_token_id)


class _FakeM2MTokenizer(_FakeTokenizer):
    def get_lang_id(self, lang):
        return self.vocab[f"__{lang}__"]


@pytest.mark.parametrize(
    "model_id, tokenizer, expected",
    [
        ("vinai/vinai-translate-vi2en-v2", _FakeTokenizer(), {"decoder_start_token_id": 250004}),
        ("facebook/nllb-200-distilled-600M", _FakeTokenizer(), {"forced_bos_token_id": 256047}),
        ("facebook/m2m100_418M", _FakeM2MTokenizer(), {"forced_bos_token_id": 128022}),
        ("facebook/m2m100_418M", _FakeTokenizer(), {"forced_bos_token_id": 128022}),  # via __en__
        ("VietAI/envit5-translation", _FakeTokenizer(), {}),
        ("Helsinki-NLP/opus-mt-vi-en", _FakeTokenizer(), {}),
    ],
)
def test_family_generation_arguments(model_id, tokenizer, expected):
    engine = TransformersEngine.__new__(TransformersEngine)
    engine.spec, engine.tokenizer = resolve_model(model_id), tokenizer
    assert engine._family_kwargs() == expected


def test_unknown_target_language_is_a_config_error():
    engine = TransformersEngine.__new__(TransformersEngine)
    spec = resolve_model("facebook/nllb-200-distilled-600M")
    engine.spec = ModelSpec(spec.id, "nllb", options={"tgt_lang": "xxx_Latn"})
    engine.tokenizer = _FakeTokenizer()
    with pytest.raises(ConfigError, match="'xxx_Latn' is not in its vocabulary"):
        engine._family_kwargs()
