"""Loading a model into an engine: the one place that picks the engine and the device.

``auto`` takes the model's ``engine=`` in models.txt, else the fastest engine for its family on
this device (:func:`auto_engine`); an engine chosen automatically that cannot run the model
falls back to transformers with a logged warning, one asked for by name raises.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ConfigError
from ..settings import Settings, current
from ..models import FAMILIES, ModelSpec, locate, resolve_model
from .base import DecodingSettings, Engine
from .conversion import available as ctranslate2_available
from .ctranslate2 import CTranslate2Engine
from .device import pick_device
from .threads import configure_threads
from .transformers import TransformersEngine

log = logging.getLogger(__name__)

ENGINES: dict[str, type[Engine]] = {"transformers": TransformersEngine, "ctranslate2": CTranslate2Engine}


def auto_engine(spec: ModelSpec, device: str) -> str:
    """The engine ``auto`` picks: ctranslate2 on CPU for every family it converts (int8 measured
    2.3× faster than transformers fp32 greedy, 6.7× at beam 4, at about a quarter of the memory:
    benchmarks/speed.py), when installed; transformers otherwise, and on CUDA (the GPU speed of
    the two was not measured here: choose ``--engine ctranslate2`` or ``engine=ctranslate2``)."""
    if device.startswith("cuda") or spec.family not in FAMILIES:
        return "transformers"
    return "ctranslate2" if ctranslate2_available() else "transformers"


def load_engine(
    model: str | ModelSpec | None = None,
    *,
    engine: str | None = None,
    device: str | None = None,
    settings: DecodingSettings | None = None,
    config: Settings | None = None,
) -> Engine:
    """Load a model (None = default, registry id[@rev], local dir or a ModelSpec) into an engine.

    ``engine`` (else ``$MT_ENGINE``, else "auto"): "transformers", "ctranslate2" or
    "ctranslate2:COMPUTE_TYPE" (e.g. ``ctranslate2:float32``), or "auto": the model's ``engine=``
    in models.txt, else the fastest engine for its family on this device (:func:`auto_engine`:
    ctranslate2 int8 on CPU). An engine chosen automatically that cannot run the model (e.g.
    conversion not supported) falls back to transformers with a logged warning; one asked for
    by name raises. Raises ConfigError (bad name/option) or ModelUnavailable (files missing).
    ``config``: the engines' other options (threads, CTranslate2's, word-link attention; default:
    the process's settings, :func:`mt.settings.current`).
    """
    config = config or current()
    spec = resolve_model(model)
    requested = (engine or config.engine or "auto").strip().lower()
    name, _, variant = requested.partition(":")
    automatic = name == "auto"
    dev = pick_device(device or config.device)
    if automatic:
        if spec.engine != "auto":
            name = spec.engine
        else:
            name = auto_engine(spec, dev)
    if name not in ENGINES:
        raise ConfigError(f"unknown or unavailable engine {name!r} (available: auto, {', '.join(ENGINES)})")
    if variant and name != "ctranslate2":
        raise ConfigError(f"engine {requested!r}: only ctranslate2 takes a compute type (ctranslate2:int8, ...)")
    if dev == "cpu" and name == "transformers":
        configure_threads(config.engine_threads)  # torch's; CTranslate2 takes its thread counts when the model loads
    model_dir = locate(spec)
    kwargs: dict[str, Any] = {"compute_type": variant} if variant else {}
    try:
        return ENGINES[name](spec, model_dir, device=dev, settings=settings, config=config, **kwargs)
    except Exception as e:
        if not automatic or name == "transformers":
            raise
        log.warning("engine %s cannot run model %s (%s); falling back to transformers", name, spec.ref, e)
        if dev == "cpu":
            configure_threads(config.engine_threads)
        return TransformersEngine(spec, model_dir, device=dev, settings=settings, config=config)
