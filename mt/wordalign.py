"""Old home of word links and the quality flag; kept as an alias until every caller imports
from the new places: mt.text.words, mt.links, mt.quality.scores, mt.engines.attention and
mt.engines.forced_attention."""

from .engines.attention import (  # noqa: F401
    SPIECE,
    TokenAttention,
    alignment_choice,
    engine_attention,
    piece_spans,
)
from .engines.attention import collapse as _collapse  # noqa: F401
from .engines.attention import target_ids as _target_ids  # noqa: F401
from .engines.forced_attention import (  # noqa: F401
    ATTENTION_BUDGET_BYTES,
    MAX_ATTENTION_BATCH,
    decoder_lead,
    forced_cross_attention,
)
from .engines.forced_attention import attention_batches as _attention_batches  # noqa: F401
from .engines.forced_attention import model_shape as _shape  # noqa: F401
from .links import (  # noqa: F401
    MIN_LINK_WEIGHT,
    RECORD_MAX_PER_ROW,
    RECORD_MIN_WEIGHT,
    RECORD_VERSION,
    WordAttention,
    WordLinks,
    links_from_matrix,
    sentence_links,
    word_attention,
    word_matrix,
)
from .quality.scores import (  # noqa: F401
    ENGLISH_THRESHOLD,
    QUALITY_THRESHOLD,
    REFERENCE_EN,
    REFERENCE_VI,
    QualityScores,
    flag,
    quality_scores,
)
from .text.words import is_punctuation, split_words  # noqa: F401
from .text.words import overlapping_words as _overlaps  # noqa: F401

__all__ = [
    "MIN_LINK_WEIGHT",
    "ENGLISH_THRESHOLD",
    "QUALITY_THRESHOLD",
    "QualityScores",
    "TokenAttention",
    "WordAttention",
    "WordLinks",
    "alignment_choice",
    "decoder_lead",
    "engine_attention",
    "flag",
    "forced_cross_attention",
    "is_punctuation",
    "links_from_matrix",
    "piece_spans",
    "quality_scores",
    "sentence_links",
    "split_words",
    "transformers_attention",
    "word_attention",
    "word_matrix",
]


def __getattr__(name: str):
    if name == "transformers_attention":  # lives with the transformers engine (imports torch)
        from .translate import transformers_attention

        return transformers_attention
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
