"""Is this text Vietnamese? A cheap, deterministic detector for LibreTranslate's ``detectedLanguage``.

Vietnamese is written in syllables that parse by the rules of :mod:`mt.text.tones` and most of
them carry a tone or vowel mark; English words rarely parse as syllables and never carry those
marks. The confidence (0-100) mixes the share of words that parse as syllables with the share
that carry Vietnamese marks (figures on IWSLT in docs/TEXT.md, "Is this Vietnamese?").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ..text.tones import _is_syllable  # the one Vietnamese syllable grammar

WORD_RE = re.compile(r"[^\W\d_]+")
VIETNAMESE_LETTERS = set(
    "àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ")
MARKED_SHARE = 0.45  # a typical Vietnamese sentence has about half its words marked
THRESHOLD = 50  # confidence at or above which the text is taken as Vietnamese


@dataclass(frozen=True)
class Detection:
    language: str  # "vi" or "en" (this server knows only these two)
    confidence: float  # 0-100: how sure the detector is of ``language``
    words: int

    def to_dict(self) -> dict:
        return {"confidence": self.confidence, "language": self.language}


def vietnamese_confidence(text: str) -> tuple[float, int]:
    """0-100 that ``text`` is Vietnamese, and the number of words it looked at."""
    words = WORD_RE.findall(unicodedata.normalize("NFC", text))[:400]
    if not words:
        return 0.0, 0
    syllables = sum(1 for word in words if _is_syllable(word))
    marked = sum(1 for word in words if VIETNAMESE_LETTERS & set(word.lower()))
    syllable_share = syllables / len(words)
    marked_share = min(1.0, marked / len(words) / MARKED_SHARE)
    # syllables alone: English has "I", "a", "the" (30-40 % of its words parse); marks decide
    score = 100 * (0.35 * syllable_share + 0.65 * marked_share) if syllable_share > 0.5 else 100 * 0.5 * marked_share
    return round(min(100.0, score), 1), len(words)


def detect(text: str) -> Detection:
    """``vi`` when the text reads as Vietnamese, else ``en``; text without letters counts as ``vi``
    (numbers and symbols translate to themselves) with confidence 0."""
    confidence, words = vietnamese_confidence(text)
    if words == 0:
        return Detection("vi", 0.0, 0)
    if confidence >= THRESHOLD:
        return Detection("vi", confidence, words)
    return Detection("en", round(100.0 - confidence, 1), words)


def candidates(text: str) -> list[Detection]:
    """LibreTranslate's /detect answer: the languages this server knows, most likely first (the other
    one with the remaining confidence); text without letters: Vietnamese at confidence 0."""
    best = detect(text)
    if best.words == 0 or best.confidence >= 100:
        return [best]
    other = Detection("en" if best.language == "vi" else "vi", round(100.0 - best.confidence, 1), best.words)
    return [best, other]
