"""Document alignment: Vietnamese units ↔ English units of an article and its translation
(design and tuning: docs/ALIGNMENT.md)."""

from ..errors import InputError, ModelUnavailable
from ..text.english import split_english
from .aligner import DEFAULT_PARAMS, MAX_DP_CELLS, MAX_MATRIX_CELLS, AlignParams, Link, align_sentences
from .units import DocumentAlignment, Unit, align_document, english_units, line_units, vietnamese_units

__all__ = [
    "DEFAULT_PARAMS",
    "MAX_DP_CELLS",
    "MAX_MATRIX_CELLS",
    "AlignParams",
    "DocumentAlignment",
    "InputError",
    "Link",
    "ModelUnavailable",
    "Unit",
    "align_document",
    "align_sentences",
    "english_units",
    "line_units",
    "split_english",
    "vietnamese_units",
]
