"""Terminology: glossary terms and protected spans (numbers, URLs, e-mail addresses, foreign
names), applied to a translation AFTER the cache, through its word links.

Why after the cache: translations and word links are cached as the model made them, so a new or
edited glossary costs no re-translation and one sentence under two glossaries gets two answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..document import SentencePair
from ..text.normalize import Normalized

__all__ = ["DEFAULT_TERMS", "NO_TERMS", "TermRules"]


@dataclass(frozen=True)
class TermRules:
    """What a request enforces: its glossary (Vietnamese → English, as the user wrote them) and
    whether protected spans are kept (on by default)."""

    glossary: Mapping[str, str] = field(default_factory=dict)
    protect: bool = True

    @property
    def active(self) -> bool:
        return bool(self.glossary) or self.protect

    def apply(self, pairs: list[SentencePair], maps: list[Normalized], tone: str = "new") -> None:
        """Enforce the terms in each translated pair (translation, word links, ``terms``), in place.
        ``maps`` are the pairs' normalisations (offsets back to the text as written)."""
        return None  # filled in by mt.terms' implementation


DEFAULT_TERMS = TermRules()
NO_TERMS = TermRules(protect=False)
