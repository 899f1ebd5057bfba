"""Word links between a sentence and its translation, drawn from the translation model's own
cross-attention (design: docs/LINKS.md)."""

from .linking import MAX_LINK_WORDS, MIN_LINK_WEIGHT, WordLinks, links_from_matrix, sentence_links, word_attention, word_matrix
from .record import RECORD_MAX_PER_ROW, RECORD_MIN_WEIGHT, RECORD_VERSION, WordAttention

__all__ = [
    "MAX_LINK_WORDS",
    "MIN_LINK_WEIGHT",
    "RECORD_MAX_PER_ROW",
    "RECORD_MIN_WEIGHT",
    "RECORD_VERSION",
    "WordAttention",
    "WordLinks",
    "links_from_matrix",
    "sentence_links",
    "word_attention",
    "word_matrix",
]
