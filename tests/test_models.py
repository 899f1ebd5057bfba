"""models.txt parsing, model resolution, the HF cache lookup and the offline failure."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mt.errors import ConfigError, ModelUnavailable
from mt.models import (
    PACKAGED_REGISTRY,
    ModelSpec,
    cached_snapshot,
    default_registry_path,
    download,
    is_cached,
    load_registry,
    locate,
    model_status_rows,
    parse_line,
    resolve_model,
    spec_from_dir,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ID = "Helsinki-NLP/opus-mt-vi-en"


# ---------------------------------------------------------------------------------------------
# models.txt


def test_project_registry_lists_the_five_models_default_first():
    reg = load_registry(ROOT / "models.txt")
    assert [s.id for s in reg] == [
        "Helsinki-NLP/opus-mt-vi-en",
        "VietAI/envit5-translation",
        "vinai/vinai-translate-vi2en-v2",
        "facebook/nllb-200-distilled-600M",
        "facebook/m2m100_418M",
    ]
    by_id = {s.id: s for s in reg}
    marian = by_id["Helsinki-NLP/opus-mt-vi-en"]
    assert (marian.family, marian.license, marian.tone, marian.beam) == ("marian", "Apache-2.0", "new", 4)
    assert marian.comment.startswith("default")
    t5 = by_id["VietAI/envit5-translation"]
    assert (t5.family, t5.prefix, t5.strip_prefix) == ("t5", "vi: ", "en: ")
    mbart = by_id["vinai/vinai-translate-vi2en-v2"]
    assert (mbart.family, mbart.tone, mbart.beam, mbart.src_lang, mbart.tgt_lang) == ("mbart", "old", 5, "vi_VN", "en_XX")
    assert mbart.license == "AGPL-3.0"
    nllb = by_id["facebook/nllb-200-distilled-600M"]
    assert (nllb.family, nllb.src_lang, nllb.tgt_lang, nllb.license) == ("nllb", "vie_Latn", "eng_Latn", "CC-BY-NC-4.0")
    m2m = by_id["facebook/m2m100_418M"]
    assert (m2m.family, m2m.src_lang, m2m.tgt_lang, m2m.license) == ("m2m100", "vi", "en", "MIT")
    assert all(s.source.endswith(f"models.txt:{s.source.rsplit(':', 1)[1]}") for s in reg)


def test_good_file_with_comments_quotes_and_defaults(tmp_path):
    path = tmp_path / "models.txt"
    path.write_text(
        textwrap.dedent(
            """\
            # a comment line

            org/first family=t5 license="Some Licence 2.0" prefix="vi: " strip_prefix='en: ' beam=2  # the default # really
            org/second family=marian max_len_a=0.5 max_len_b=3 revision=v1.2 engine=transformers
               org/third family=m2m100 tone=old max_batch_tokens=512 max_batch_sentences=8 prefix="# not a comment"
            """
        ),
        encoding="utf-8",
    )
    first, second, third = load_registry(path)
    assert first.id == "org/first" and first.license == "Some Licence 2.0"
    assert (first.prefix, first.strip_prefix, first.beam) == ("vi: ", "en: ", 2)
    assert first.comment == "the default # really"
    assert first.source == f"{path}:3"
    assert (second.max_len_a, second.max_len_b, second.revision, second.engine) == (0.5, 3, "v1.2", "transformers")
    assert second.ref == "org/second@v1.2"
    assert (second.tone, second.beam, second.license) == ("new", 4, "unknown")  # defaults
    assert third.tone == "old" and third.src_lang == "vi" and third.tgt_lang == "en"  # family defaults
    assert (third.max_batch_tokens, third.max_batch_sentences) == (512, 8)
    assert third.prefix == "# not a comment"
    assert hash(first) != hash(second)  # usable as a dict key despite the options dict


BAD_LINES = {
    "unknown key": ("org/m family=marian bem=4", "unknown key 'bem'"),
    "bad family": ("org/m family=bert", "family='bert' is not supported"),
    "bad int": ("org/m family=marian beam=four", "beam='four' is not a whole number"),
    "zero beam": ("org/m family=marian beam=0", "beam='0' must be at least 1"),
    "bad float": ("org/m family=marian max_len_a=1,5", "max_len_a='1,5' is not a number"),
    "negative float": ("org/m family=marian max_len_a=-1", "max_len_a='-1'"),
    "bad tone": ("org/m family=marian tone=modern", "tone='modern' must be one of: new, old"),
    "bad engine": ("org/m family=marian engine=onnx", "engine='onnx' must be one of"),
    "missing family": ("org/m license=MIT", "missing family="),
    "not key=value": ("org/m family=marian fast", "expected key=value, got 'fast'"),
    "unclosed quote": ('org/m family=t5 prefix="vi: ', "cannot read the line"),
    "key twice": ("org/m family=marian beam=2 beam=3", "key 'beam' given twice"),
    "no id": ("family=marian license=MIT", "must start with a model id"),
    "id with revision": ("org/m@v1 family=marian", "must start with a model id"),
    "score without source": ("org/m family=marian bleu_flores=25.3", "published scores need score_source=URL"),
    "score not a number": ("org/m family=marian bleu_flores=high score_source=https://x.org", "is not a number"),
    "chrF on the 0-1 scale is fine, above 100 is not": (
        "org/m family=marian chrf_flores=527.1 score_source=https://x.org", "must be between 0 and 100"),
    "source not a URL": ("org/m family=marian bleu_tst2013=30 score_source=the-card", "must be a URL"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_line_names_file_line_and_problem(tmp_path, case):
    line, expected = BAD_LINES[case]
    path = tmp_path / "models.txt"
    path.write_text(f"# header\norg/ok family=marian\n\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_registry(path)
    message = str(err.value)
    assert f"{path}:4:" in message
    assert expected in message
    assert line.strip() in message  # the offending line is quoted


def test_duplicate_model_names_both_lines(tmp_path):
    path = tmp_path / "models.txt"
    path.write_text("org/m family=marian\nORG/M family=t5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"models.txt:2: model 'ORG/M' is already listed at .*models.txt:1"):
        load_registry(path)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no models listed"):
        load_registry(empty)
    with pytest.raises(ConfigError, match="model list not found"):
        load_registry(tmp_path / "absent.txt")


def test_registry_path_from_environment(tmp_path, monkeypatch):
    path = tmp_path / "mine.txt"
    path.write_text("me/model family=nllb license=X\n", encoding="utf-8")
    monkeypatch.setenv("MT_MODELS_FILE", str(path))
    assert [s.id for s in load_registry()] == ["me/model"]
    assert resolve_model(None).id == "me/model"


def test_checkout_uses_the_top_level_list_and_the_packaged_copy_is_identical(monkeypatch):
    monkeypatch.delenv("MT_MODELS_FILE", raising=False)
    assert default_registry_path() == ROOT / "models.txt"
    assert PACKAGED_REGISTRY == ROOT / "mt" / "models" / "models.txt"
    # The packaged copy is what a non-editable install reads: edit models.txt, then copy it over.
    assert PACKAGED_REGISTRY.read_bytes() == (ROOT / "models.txt").read_bytes(), (
        "mt/models/models.txt differs from models.txt: cp models.txt mt/models/models.txt"
    )


def test_parse_line_blank_and_comment():
    assert parse_line("   ") is None
    assert parse_line("# only a comment") is None


# ---------------------------------------------------------------------------------------------
# resolve_model


def test_resolve_default_id_revision_and_case():
    assert resolve_model(None).id == DEFAULT_ID
    assert resolve_model("").id == DEFAULT_ID
    spec = resolve_model("facebook/m2m100_418M@abc123")
    assert (spec.id, spec.revision, spec.ref, spec.family) == ("facebook/m2m100_418M", "abc123", "facebook/m2m100_418M@abc123", "m2m100")
    assert resolve_model("helsinki-nlp/OPUS-MT-VI-EN").id == DEFAULT_ID
    assert resolve_model(spec) is spec
    with pytest.raises(ConfigError, match="empty revision"):
        resolve_model(f"{DEFAULT_ID}@")


def test_resolve_unknown_lists_known_models():
    with pytest.raises(ConfigError) as err:
        resolve_model("someone/some-model")
    message = str(err.value)
    assert "unknown model: 'someone/some-model'" in message
    for model_id in ("Helsinki-NLP/opus-mt-vi-en", "facebook/m2m100_418M"):
        assert model_id in message
    with pytest.raises(ConfigError, match="no such model directory: './nowhere/model'"):
        resolve_model("./nowhere/model")


def test_resolve_local_directory(tiny_model_dir):
    spec = resolve_model(str(tiny_model_dir))
    assert spec.path == tiny_model_dir.resolve() and spec.is_local
    assert spec.id == str(tiny_model_dir.resolve()) == spec.ref
    assert (spec.family, spec.license, spec.tone, spec.beam) == ("marian", "unknown", "new", 4)
    assert is_cached(spec) and locate(spec) == spec.path and download(spec) == spec.path


def test_local_directory_named_like_a_registry_model_takes_its_options(tiny_model_dir, tmp_path):
    copy = tmp_path / "opus-mt-vi-en"
    shutil.copytree(tiny_model_dir, copy)
    spec = resolve_model(str(copy))
    assert (spec.family, spec.license, spec.path) == ("marian", "Apache-2.0", copy.resolve())
    assert spec.comment.startswith("default")


def test_local_directory_problems(tmp_path):
    with pytest.raises(ModelUnavailable, match="no config.json"):
        resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}), encoding="utf-8")
    with pytest.raises(ConfigError, match="model type 'bert' is not supported"):
        resolve_model(str(tmp_path))


@pytest.mark.parametrize(
    "config, tokenizer_class, family",
    [
        ({"model_type": "m2m_100", "vocab_size": 128112}, "M2M100Tokenizer", "m2m100"),
        ({"model_type": "m2m_100", "vocab_size": 256206}, "NllbTokenizer", "nllb"),
        ({"model_type": "mbart"}, "MBart50Tokenizer", "mbart"),
        ({"model_type": "t5"}, "T5Tokenizer", "t5"),
    ],
)
def test_family_from_directory_config(tmp_path, config, tokenizer_class, family):
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": tokenizer_class}), encoding="utf-8")
    spec = spec_from_dir(tmp_path)
    assert spec.family == family
    if family == "nllb":
        assert (spec.src_lang, spec.tgt_lang) == ("vie_Latn", "eng_Latn")
    if family == "t5":
        assert (spec.prefix, spec.strip_prefix) == ("vi: ", "en: ")


# ---------------------------------------------------------------------------------------------
# Cache and offline behaviour


def _fake_hub_cache(cache: Path, model_id: str, model_dir: Path, commit: str = "0123abcd" * 5) -> Path:
    """Lay out model_dir as the HF cache does after a download: refs/main + snapshots/<commit>."""
    repo = cache / ("models--" + model_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    shutil.copytree(model_dir, snapshot)
    return snapshot


def test_cached_hub_model_loads_without_network(tiny_model_dir, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from mt.engines.loader import load_engine

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    spec = resolve_model(None)
    assert not is_cached(spec)
    snapshot = _fake_hub_cache(cache, DEFAULT_ID, tiny_model_dir)
    assert is_cached(spec) and cached_snapshot(spec) == snapshot
    assert not is_cached(spec.with_revision("feedbeef" * 5))
    rows = model_status_rows()
    assert [(r["id"], r["default"], r["cached"]) for r in rows[:2]] == [
        (DEFAULT_ID, True, True),
        ("VietAI/envit5-translation", False, False),
    ]
    assert {"id", "family", "license", "default", "cached", "comment"} <= set(rows[0])

    engine = load_engine(None, engine="transformers")
    assert engine.model_dir == snapshot
    assert engine.namespace().startswith(f"{DEFAULT_ID}@{snapshot.name}|transformers-fp32|")
    assert engine.translate(["Xin chào các bạn."])[0]

    (snapshot / "model.safetensors").unlink()  # partial download: not usable offline
    assert not is_cached(spec)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_load(tmp_path, env_changes: dict[str, str | None], model: str = DEFAULT_ID) -> tuple[str, float]:
    """load_engine(model) in a fresh process with an empty HF_HOME; return (stdout, seconds)."""
    env = dict(os.environ)
    env.update({"HF_HOME": str(tmp_path / "hf-home"), "PYTHONPATH": str(ROOT)})
    env.pop("HF_HUB_CACHE", None)
    env.pop("HUGGINGFACE_HUB_CACHE", None)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    code = textwrap.dedent(
        f"""
        import time
        from mt.errors import ModelUnavailable
        from mt.engines.loader import load_engine
        start = time.monotonic()
        try:
            load_engine({model!r})
        except ModelUnavailable as e:
            print("ModelUnavailable:", e)
        print("seconds:", round(time.monotonic() - start, 2))
        """
    )
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr, time.monotonic() - start


def _assert_clear(output: str, model: str = DEFAULT_ID):
    assert "ModelUnavailable:" in output, output
    assert "Traceback" not in output
    assert f"model {model} is not downloaded" in output
    assert f"mt download {model}" in output
    assert "--model /path/to/dir" in output
    assert "Retrying" not in output  # no hub retry loop


def test_offline_mode_not_cached_fails_fast_and_clearly(tmp_path):
    output, seconds = _run_load(tmp_path, {"HF_HUB_OFFLINE": "1"})
    _assert_clear(output)
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in output
    assert seconds < 20


def test_no_network_not_cached_fails_fast_and_clearly(tmp_path):
    # Not in offline mode: the hub is probed once. Point it at a closed local port so the test
    # behaves the same with or without internet (and never downloads anything).
    output, seconds = _run_load(
        tmp_path, {"HF_HUB_OFFLINE": None, "TRANSFORMERS_OFFLINE": None, "HF_ENDPOINT": f"http://127.0.0.1:{_free_port()}"}
    )
    _assert_clear(output)
    assert "the model hub cannot be reached" in output
    assert seconds < 20


def test_unresponsive_hub_times_out_quickly(tmp_path):
    # A server that accepts connections and never answers: the probe's timeout ends it.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        output, seconds = _run_load(
            tmp_path,
            {"HF_HUB_OFFLINE": None, "TRANSFORMERS_OFFLINE": None, "HF_ENDPOINT": f"http://127.0.0.1:{port}", "MT_HUB_TIMEOUT": "1"},
        )
    _assert_clear(output)
    assert "cannot be reached" in output
    assert seconds < 20


def test_download_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="offline mode is on"):
        download(resolve_model("facebook/m2m100_418M"))


def test_modelspec_is_frozen():
    spec = ModelSpec("a/b", "marian")
    with pytest.raises(Exception):
        spec.family = "t5"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# A non-editable install: the wheel carries the model list, the page's files and every package


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a clean copy of the project (no build/ or egg-info left in the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "models.txt"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "mt", src / "mt", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", str(src), "-w", str(tmp / "dist")],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (path,) = (tmp / "dist").glob("mt_vi_en-*.whl")
    return path, build.stdout + build.stderr


def test_wheel_build_prints_no_setuptools_deprecation(wheel):
    _, log = wheel
    assert "SetuptoolsDeprecationWarning" not in log and "deprecated" not in log.lower(), log[-3000:]
    assert "BuildBackendWarning" not in log and "would be ignored" not in log, log[-3000:]  # no warning blocks


def test_wheel_ships_model_list_templates_and_every_package(wheel):
    import zipfile

    path, _ = wheel
    names = set(zipfile.ZipFile(path).namelist())
    assert "mt/models/models.txt" in names
    for folder in ("templates", "static"):
        shipped = {n for n in names if n.startswith(f"mt/web/{folder}/")}
        on_disk = {f"mt/web/{folder}/{p.name}" for p in (ROOT / "mt" / "web" / folder).iterdir() if p.is_file()}
        assert on_disk and shipped == on_disk, f"mt/web/{folder}: missing from the wheel: {sorted(on_disk - shipped)}"
    # Every folder of the package with Python files is a package (has __init__.py) and is shipped.
    for init_dir in sorted({p.parent for p in (ROOT / "mt").rglob("*.py") if "__pycache__" not in p.parts}):
        rel = init_dir.relative_to(ROOT).as_posix()
        assert (init_dir / "__init__.py").is_file(), f"{rel} has Python files but no __init__.py: not packaged"
        assert f"{rel}/__init__.py" in names, f"{rel} is missing from the wheel"


def test_installed_copy_lists_models_outside_the_checkout(wheel, tmp_path):
    path, _ = wheel
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(path)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "MT_MODELS_FILE"}
    env["PYTHONPATH"] = str(target)  # ahead of the editable install of the checkout
    run = subprocess.run(
        [sys.executable, "-c", "import mt, sys; print(mt.__file__); from mt.cli import main; sys.exit(main(['models']))"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    first, header, *rows = run.stdout.splitlines()
    assert Path(first).is_relative_to(target), f"imported {first}, not the installed copy"
    assert header.startswith("model ")
    rows = [row for row in rows if not row[:1].isspace()]  # indented lines: a model's published scores
    assert [row.split()[0] for row in rows] == [s.id for s in load_registry(ROOT / "models.txt")]
    assert "default" in rows[0]


# ---------------------------------------------------------------------------------------------
# Published scores: cited in models.txt with their source, shown by `mt models`


def test_published_scores_parse_with_their_source(tmp_path):
    path = tmp_path / "models.txt"
    path.write_text(
        "org/scored family=marian size=75M bleu_flores=30.7 chrf_flores=57.4 bleu_tst2013=29 "
        "score_source=https://example.org/scores  # cited\n"
        "org/plain family=m2m100\n",
        encoding="utf-8",
    )
    scored, plain = load_registry(path)
    assert scored.published == {"bleu_flores": 30.7, "chrf_flores": 57.4, "bleu_tst2013": 29.0}
    assert (scored.score_source, scored.size) == ("https://example.org/scores", "75M")
    assert (plain.published, plain.score_source, plain.size) == ({}, "", "")
    assert scored.beam == 4 and scored.comment == "cited"  # score keys do not disturb the rest


def test_project_registry_cites_a_source_for_every_published_figure():
    reg = load_registry(ROOT / "models.txt")
    by_id = {s.id: s for s in reg}
    assert by_id["facebook/nllb-200-distilled-600M"].published == {"bleu_flores": 33.4, "chrf_flores": 59.1}
    assert "OPUS-MT-leaderboard" in by_id["facebook/nllb-200-distilled-600M"].score_source
    assert by_id[DEFAULT_ID].published == {"bleu_tatoeba": 42.8, "chrf_tatoeba": 60.8}
    for spec in reg:
        assert spec.size, spec.id
        assert bool(spec.published) == bool(spec.score_source), spec.id


def test_mt_models_prints_licence_size_and_published_scores(tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    from mt.cli import main

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # nothing cached
    path = tmp_path / "models.txt"
    path.write_text(
        "org/first family=marian license=Apache-2.0 size=75M bleu_flores=30.7 chrf_flores=57.4 "
        "score_source=https://example.org/flores\n"
        "org/second family=nllb license=CC-BY-NC-4.0 size=600M\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("MT_MODELS_FILE", str(path))
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "family", "licence", "size", "FLORES", "BLEU", "status"]
    assert lines[1].split() == ["org/first", "marian", "Apache-2.0", "75M", "30.7", "default,", "not", "cached"]
    assert "published, not measured here: bleu_flores 30.7, chrf_flores 57.4 (https://example.org/flores)" in lines[2]
    assert lines[3].split() == ["org/second", "nllb", "CC-BY-NC-4.0", "600M", "-", "not", "cached"]
    assert len(lines) == 4  # no scores, no "published" line
    rows = model_status_rows()
    assert rows[0]["published"] == {"bleu_flores": 30.7, "chrf_flores": 57.4}
    assert (rows[1]["published"], rows[1]["score_source"], rows[1]["size"]) == ({}, "", "600M")
