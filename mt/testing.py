"""Moved out of the package: tests/tiny_model.py (build_tiny_marian) and tests/shared_data.py
(the IWSLT reader). This alias keeps ``mt.testing`` imports working until the final sweep;
it works only in a project checkout (a wheel has no tests/).
"""

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1] / "tests"
if str(_TESTS) not in sys.path:
    sys.path.append(str(_TESTS))

from shared_data import IWSLT_DIR, SEED_DIR, iwslt_segments, iwslt_talks  # noqa: E402,F401
from tiny_model import (  # noqa: E402,F401
    _FALLBACK_EN,
    _FALLBACK_VI,
    OPUS_MT_VI_EN_SHAPE,
    _build,
    _build_cached,
    _default_eos_bias,
    _pieces,
    _train_spm,
    build_tiny_marian,
    sample_sentences,
)
