"""Translation engines: one loaded model behind ``translate`` and ``attention``.

The main names are importable from here (``from mt.engines import load_engine``); they load on
first use, so importing a light submodule (``mt.engines.attention``) pulls in nothing else.
Module map and design: docs/ENGINES.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DecodingSettings": "base",
    "Engine": "base",
    "load_engine": "loader",
    "auto_engine": "loader",
    "pick_device": "device",
    "TransformersEngine": "transformers",
    "CTranslate2Engine": "ctranslate2",
    "BatchingEngine": "request_queue",
    "TokenAttention": "attention",
    "engine_attention": "attention",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
