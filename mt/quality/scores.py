"""Per-sentence quality scores and the low-confidence flag (calibration: docs/QUALITY.md,
"Calibration"; ``benchmarks/quality.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .references import REFERENCE_EN, REFERENCE_VI, reference_vectors

__all__ = [
    "ENGLISH_THRESHOLD",
    "QUALITY_THRESHOLD",
    "REFERENCE_EN",
    "REFERENCE_VI",
    "QualityScores",
    "flag",
    "quality_scores",
]

QUALITY_THRESHOLD = 0.065  # the dev2010 equal-error points (docs/QUALITY.md)
ENGLISH_THRESHOLD = -0.04



@dataclass(frozen=True)
class QualityScores:
    """Per-pair scores (float32 arrays, one entry per pair; 0 where a side is blank)."""

    similarity: np.ndarray  # cosine of source and translation embeddings
    quality: np.ndarray  # similarity minus the translation's mean cosine with REFERENCE_VI
    english: np.ndarray  # translation's mean cosine with REFERENCE_EN minus that with REFERENCE_VI

    def flagged(self) -> np.ndarray:
        return flag(self.quality, self.english)


def flag(quality, english):
    """Low confidence: not clearly closer to its source than to unrelated Vietnamese text, or
    closer to Vietnamese than to English (untranslated). Works on floats and arrays."""
    return (np.asarray(quality) < QUALITY_THRESHOLD) | (np.asarray(english) < ENGLISH_THRESHOLD)


def quality_scores(
    sources: Sequence[str], translations: Sequence[str], embed: Callable[[Sequence[str]], np.ndarray] | None = None
) -> QualityScores:
    """Score each (source, translation) pair with ONE embedding call for all of them. With the
    default ``embed`` (:func:`mt.quality.embeddings.embed`) the reference sentences' vectors are
    the shipped ones (:mod:`mt.quality.references`); a custom ``embed`` embeds them too."""
    if len(sources) != len(translations):
        raise ValueError("quality_scores needs one translation per source")
    n = len(sources)
    similarity, quality, english = (np.zeros(n, dtype=np.float32) for _ in range(3))
    todo = [i for i in range(n) if str(sources[i]).strip() and str(translations[i]).strip()]
    if todo:
        texts = [sources[i] for i in todo] + [translations[i] for i in todo]
        if embed is None:  # the default model: its reference vectors are shipped (mt.quality.references)
            from .embeddings import embed as default_embed

            ref_vi, ref_en = reference_vectors()
            vectors = np.asarray(default_embed(texts), dtype=np.float32)
        else:
            vectors = np.asarray(embed(texts + list(REFERENCE_VI) + list(REFERENCE_EN)), dtype=np.float32)
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        k, r = len(todo), len(REFERENCE_VI)
        src, tgt = vectors[:k], vectors[k : 2 * k]
        if embed is not None:
            ref_vi, ref_en = vectors[2 * k : 2 * k + r], vectors[2 * k + r :]
        cos = np.einsum("ij,ij->i", src, tgt)
        to_vi = (tgt @ ref_vi.T).mean(axis=1)
        to_en = (tgt @ ref_en.T).mean(axis=1)
        similarity[todo], quality[todo], english[todo] = cos, cos - to_vi, to_en - to_vi
    return QualityScores(similarity, quality, english)
