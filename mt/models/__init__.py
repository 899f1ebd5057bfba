"""The model layer: which models are supported (:mod:`.registry`, ``models.txt``) and where
their files are (:mod:`.hub`: Hugging Face cache, download, offline errors).

``from mt.models import X`` for every public name of both; private names are imported from their module.
"""

from .hub import (
    cached_snapshot,
    download,
    hub_cache_dir,
    hub_timeout,
    is_cached,
    locate,
    model_status_rows,
    probe_hub,
)
from .registry import (
    DEFAULTS,
    ENGINES,
    FAMILIES,
    FAMILY_DEFAULTS,
    KNOWN_KEYS,
    MODEL_TYPES,
    PACKAGED_REGISTRY,
    TONES,
    ModelSpec,
    default_registry_path,
    load_registry,
    parse_line,
    resolve_model,
    spec_from_dir,
)

__all__ = [
    "DEFAULTS",
    "ENGINES",
    "FAMILIES",
    "FAMILY_DEFAULTS",
    "KNOWN_KEYS",
    "MODEL_TYPES",
    "PACKAGED_REGISTRY",
    "TONES",
    "ModelSpec",
    "cached_snapshot",
    "default_registry_path",
    "download",
    "hub_cache_dir",
    "hub_timeout",
    "is_cached",
    "load_registry",
    "locate",
    "model_status_rows",
    "parse_line",
    "probe_hub",
    "resolve_model",
    "spec_from_dir",
]
