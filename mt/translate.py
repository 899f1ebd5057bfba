"""Old import path of the engines (now mt.engines.*); kept until every caller imports the new paths."""

from .engines.base import (  # noqa: F401
    DEFAULT_MAX_BATCH_SENTENCES,
    DEFAULT_MAX_BATCH_TOKENS,
    DecodingSettings,
    Engine,
    balanced_batch_size,
    batches_by_tokens,
    content_hash,
)
from .engines.base import content_hash as _content_hash  # noqa: F401
from .engines.device import GPU_DEVICE_NODES, pick_device  # noqa: F401
from .engines.device import gpu_device_present as _gpu_device_present  # noqa: F401
from .engines.loader import ENGINES, load_engine  # noqa: F401
from .engines.threads import configure_threads, env_count, wanted_threads  # noqa: F401
from .engines.transformers import (  # noqa: F401
    TransformersEngine,
    _greedy_pruned,
    _select_rows,
    _sentence_caps_processor,
    transformers_attention,
)
