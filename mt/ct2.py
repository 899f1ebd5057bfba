"""Old import path of the CTranslate2 engine (now mt.engines.ctranslate2 / .conversion / .loader);
kept until every caller imports the new paths."""

from .engines.conversion import (  # noqa: F401
    COMPUTE_TYPES,
    MARKER,
    ConversionError,
    _check_marian_vocabulary,
    _convert,
    _prune,
    _safe,
    available,
    cache_root,
    conversion_key,
    default_compute_type,
    ensure_converted,
    is_converted,
    resolve_compute_type,
)
from .engines.ctranslate2 import _PREFIX_FAMILIES, CTranslate2Engine, _model_configs  # noqa: F401
from .engines.loader import auto_engine  # noqa: F401
from .engines.threads import thread_split  # noqa: F401
from .models import FAMILIES  # noqa: F401
