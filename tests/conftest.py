"""Session fixtures shared by all tests: a tiny random-weight Marian model, built offline.

The model goes through the real transformers loading path (``AutoTokenizer`` /
``AutoModelForSeq2SeqLM.from_pretrained`` on a directory); only its weights are random.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# No test may reach the model hub: anything hub-related fails at once instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One torch thread: the test models are tiny, and on a busy machine spinning OpenMP threads
# make them slower, not faster (inherited by the CLI/server subprocesses the tests start).
os.environ.setdefault("MT_THREADS", "1")
# Converted CTranslate2 models and default-path caches go to a throwaway folder, not the user's
# ~/.cache (XDG_CACHE_HOME survives server_helpers.clean_env, which drops MT_* variables).
if "XDG_CACHE_HOME" not in os.environ:
    import tempfile

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="mt-tests-cache-")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """Directory of a random-weight Marian vi→en model (d_model 32, 2+2 layers), built once."""
    from testkit.tiny_model import build_tiny_marian

    return build_tiny_marian(tmp_path_factory.mktemp("models") / "tiny-marian-vi-en")


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir):
    """``load_engine`` on the tiny model with the transformers engine: the real
    TransformersEngine, CPU fp32 (named explicitly: "auto" may pick another engine)."""
    from mt.engines.loader import load_engine

    return load_engine(str(tiny_model_dir), engine="transformers")


class _Servers:
    """Starts ``server.py`` subprocesses on the tiny model and stops them all at teardown.

    ``serve(*args, env=None, command=SERVER_COMMAND)`` adds ``--model <tiny model>`` unless args name a
    model, and ``--cache <fresh folder>/c.sqlite`` (kept as ``.cache_path``) unless args name a cache
    or ``--no-cache``; ``env`` is added to the test runner's environment without MT_* settings."""

    def __init__(self, model_dir: Path, folders):
        self.model_dir, self.folders, self.started = model_dir, folders, []

    def __call__(self, *args, env: dict[str, str] | None = None, command=None):
        from testkit.server_helpers import SERVER_COMMAND, start_server

        args = [str(arg) for arg in args]
        cache_path = None
        if "--model" not in args:
            args = ["--model", str(self.model_dir), *args]
        if "--cache" not in args and "--no-cache" not in args:
            cache_path = self.folders() / "c.sqlite"
            args += ["--cache", str(cache_path)]
        process = start_server(args, env, command=command or SERVER_COMMAND)
        process.cache_path = cache_path
        self.started.append(process)
        return process

    def stop_all(self):
        for process in reversed(self.started):
            process.stop()


@pytest.fixture
def serve(tiny_model_dir, tmp_path_factory):
    """A test's own servers (see ``_Servers``), stopped when the test ends."""
    servers = _Servers(tiny_model_dir, lambda: tmp_path_factory.mktemp("server"))
    yield servers
    servers.stop_all()


@pytest.fixture(scope="module")
def serve_module(tiny_model_dir, tmp_path_factory):
    """Servers shared by a module's tests (see ``_Servers``), stopped after its last test."""
    servers = _Servers(tiny_model_dir, lambda: tmp_path_factory.mktemp("server"))
    yield servers
    servers.stop_all()


# The fast tier (`pytest -m "not slow"`, ~45 s on two cores): pure logic, the tiny model in-process,
# no server, browser, Redis, Ray or full-size model. Every other module is slow.
FAST_MODULES = {"test_layout", "test_settings", "test_normalize", "test_segment", "test_budget",
                "test_documents_errors", "test_format_fuzz", "test_pieces", "test_terms"}


def pytest_collection_modifyitems(items):
    """Modules outside FAST_MODULES, and any test that starts a server through ``serve`` /
    ``serve_module``, are slow."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if getattr(item, "module", None) else ""
        if module not in FAST_MODULES or {"serve", "serve_module"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _process_settings_reset():
    """A test that runs the CLI or server in-process calls mt.settings.use(); the next test must see
    its own environment again, not those settings."""
    import mt.settings

    yield
    mt.settings._used = None
