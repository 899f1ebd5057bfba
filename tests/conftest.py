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
