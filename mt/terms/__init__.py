"""Terminology: glossary terms and protected spans (numbers, URLs, e-mail addresses, foreign
names), applied to a translation AFTER the cache, through its word links.

Why after the cache: translations and word links are cached as the model made them, so a new or
edited glossary costs no re-translation and one sentence under two glossaries gets two answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..document import SentencePair, needs_model
from ..text.normalize import Normalized
from ..text.words import split_words
from .enforce import enforce
from .find import Found, GlossaryIndex, protected_spans

__all__ = ["DEFAULT_TERMS", "NO_TERMS", "TermRules"]


@dataclass(frozen=True)
class TermRules:
    """What a request enforces: its glossary (Vietnamese → English, as the user wrote them) and
    whether protected spans are kept (on by default)."""

    glossary: Mapping[str, str] = field(default_factory=dict)
    protect: bool = True
    _indexes: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # tone -> GlossaryIndex

    @property
    def active(self) -> bool:
        return bool(self.glossary) or self.protect

    def apply(self, pairs: list[SentencePair], maps: list[Normalized], tone: str = "new") -> None:
        """Enforce the terms in each translated pair (translation, word links, ``terms``), in place.
        ``maps`` are the pairs' normalisations (offsets back to the text as written). A pair with
        no term is left exactly as it was."""
        if not self.active:
            return
        index = self.index(tone) if self.glossary else None
        for pair, mapped in zip(pairs, maps):
            if not needs_model(pair) or not pair.translation:
                continue
            found = self.find(pair.source, mapped, index)
            if found:
                enforce(pair, mapped, found, linked=bool(pair.src_words))

    def index(self, tone: str) -> GlossaryIndex:
        """The glossary's index for ``tone`` (built once per rules object)."""
        index = self._indexes.get(tone)
        if index is None:
            index = self._indexes[tone] = GlossaryIndex(self.glossary, tone)
        return index

    def find(self, source: str, mapped: Normalized, index: GlossaryIndex | None) -> list[Found]:
        """The terms of one sentence in its normalised text, sorted and disjoint: glossary entries
        (whole words of ``source`` as written) first, then protected spans outside them."""
        text = mapped.text
        found: list[Found] = []
        if index is not None and index.by_first:
            words = split_words(source)
            starts, ends = {a for a, _ in words}, {b for _, b in words}
            found = index.find(text, lambda at: mapped.offsets[at] in starts,
                               lambda at: mapped.original_span(at - 1, at)[1] in ends)
        if self.protect:
            found = _merge(found, protected_spans(text))
        return found


def _merge(first: list[Found], second: list[Found]) -> list[Found]:
    """``first`` with the items of ``second`` that overlap none of it, sorted (both sorted)."""
    if not first:
        return second
    out, k = list(first), 0
    for item in second:
        while k < len(first) and first[k].end <= item.start:
            k += 1
        if k < len(first) and first[k].start < item.end:
            continue
        out.append(item)
    return sorted(out, key=lambda item: item.start)


DEFAULT_TERMS = TermRules()
NO_TERMS = TermRules(protect=False)
