"""The aligned document: each segment of the article beside its translation, its word links and
its quality score. What every view, API response and output file is made from."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from typing_extensions import TypedDict  # pydantic reads its fields on Python < 3.12

__all__ = ["Document", "SentencePair", "Suggestion", "TermUse", "sentence_fields"]


Kind = Literal["sentence", "title", "byline"]
Origin = Literal["model", "memory"]


class TermUse(TypedDict):
    """One term or protected span enforced in a sentence's English (mt.terms)."""

    source: str  # the Vietnamese as written
    span: list[int]  # [start, end) of it in the submitted text
    english: str  # what the English now holds for it
    target_span: list[int]  # [start, end) of that in ``translation``
    how: Literal["kept", "replaced", "inserted"]  # already there / linked words replaced / put in
    kind: Literal["glossary", "number", "url", "email", "name", "untranslated"]


class Suggestion(TypedDict):
    """A fuzzy match from the translation memory (mt.cache.memory)."""

    source: str  # the memory entry's Vietnamese
    target: str  # its English
    score: float  # similarity of the normalised sentences, 0.75 to 1


def about(doc: str, group: str, **options) -> Any:
    """A field of :class:`SentencePair` with what it means (the API's description of it) and its
    group: the stream sends a sentence in groups (segment, translation, links, quality)."""
    return field(metadata={"doc": doc, "group": group}, **options)


@dataclass
class SentencePair:
    """One segment of the article beside its translation; offsets point into the original text.

    The one declaration of a sentence's fields: the API's ``Segment`` and the stream's row models
    are generated from these (mt.web.schemas.sentence_model)."""

    index: int = about("Position of the segment in the document, from 0", "segment")
    paragraph: int = about("Paragraph number, from 0", "segment")
    kind: Kind = about("sentence, title or byline (bylines are names: passed through untranslated)", "segment")
    start: int = about("Offset of the segment in the submitted text", "segment")
    end: int = about("End offset (exclusive)", "segment")
    source: str = about("text[start:end], as the user wrote it", "segment")
    normalized: str = about("What the model saw", "segment")
    translation: str = about("The English of the segment", "translation")
    cached: bool = about("Served from the sentence cache", "translation")
    origin: Origin = about(
        "Where the translation comes from: \"model\" (fresh or cached model output) or \"memory\" (an exact match "
        "in the translation memory, which outranks the model)", "translation", default="model")
    suggestions: list[Suggestion] = about(
        "Fuzzy matches from the translation memory (score 0.75 to 1, best first); empty when none", "translation",
        default_factory=list)
    confidence: float | None = about(
        "The decoder's own confidence in the translation: exp of the mean log-probability of its tokens, 0 to 1 "
        "(kept in the cache beside it); null for bylines and for translations cached before confidences were "
        "stored. Not calibrated: see docs/QUALITY.md", "translation", default=None)
    # word links (mt.links): words as written, spans into the original article / the translation
    src_words: list[str] = about("Vietnamese words as written (tên_lửa is one word in word-segmented input); "
                                 "punctuation marks are words too", "links", default_factory=list)
    src_word_spans: list[list[int]] = about("[start, end) of each Vietnamese word in the submitted text", "links",
                                            default_factory=list)
    tgt_words: list[str] = about("English words of the translation", "links", default_factory=list)
    tgt_word_spans: list[list[int]] = about("[start, end) of each English word in translation", "links",
                                            default_factory=list)
    alignment: list[list[int]] = about(
        "Word links from the model's attention: [Vietnamese word index, English word index] pairs; each English "
        "word has at most one. Empty for bylines", "links", default_factory=list)
    terms: list[TermUse] = about(
        "Glossary terms and protected spans (numbers, URLs, e-mail addresses, foreign names) enforced in the "
        "English: how each was kept, replaced or inserted; empty when none", "links", default_factory=list)
    # quality (mt.quality.scores): None when not scored (bylines, no embedding model)
    quality: float | None = about(
        "How much closer the translation is to its source than to unrelated Vietnamese text (multilingual-e5-small "
        "cosines; human translations score about 0.07-0.2, unrelated sentences about 0); null when not scored "
        "(bylines)", "quality", default=None)
    similarity: float | None = about("Plain cosine similarity of the source and translation embeddings; null when "
                                     "not scored", "quality", default=None)
    flagged: bool = about("Low confidence: quality below the calibrated threshold, or the translation looks more "
                          "Vietnamese than English", "quality", default=False)

    def to_dict(self) -> dict:
        """The fields as plain JSON-ready values (what ``dataclasses.asdict`` gives, built
        directly: asdict's recursive deep copy cost 0.8 s of a 100,000-character answer)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("src_words", "tgt_words"):
            out[name] = list(out[name])
        for name in ("src_word_spans", "tgt_word_spans", "alignment"):
            out[name] = [list(item) for item in out[name]]
        for name in ("suggestions", "terms"):
            out[name] = [dict(item) for item in out[name]]
        return out

    def source_runs(self) -> list[tuple[str, int | None]]:
        """``source`` cut into (text, word index) runs, None between words: for the view."""
        return _runs(self.source, [(a - self.start, b - self.start) for a, b in self.src_word_spans])

    def translation_runs(self) -> list[tuple[str, int | None]]:
        """``translation`` cut into (text, word index) runs, None between words."""
        return _runs(self.translation, [(a, b) for a, b in self.tgt_word_spans])


def _runs(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, int | None]]:
    runs: list[tuple[str, int | None]] = []
    pos = 0
    for index, (a, b) in enumerate(spans):
        if a < pos or b > len(text) or b <= a:  # not spans of this text: plain text only
            return [(text, None)] if text else []
        if a > pos:
            runs.append((text[pos:a], None))
        runs.append((text[a:b], index))
        pos = b
    if pos < len(text):
        runs.append((text[pos:], None))
    return runs


@dataclass
class Document:
    """An aligned parallel text: the result every view, API and file format is made from."""

    text: str
    model: str
    sentences: list[SentencePair]
    translation: str
    timings: dict[str, float] = field(default_factory=dict)

    def paragraphs(self) -> list[list[SentencePair]]:
        grouped: dict[int, list[SentencePair]] = {}
        for pair in self.sentences:
            grouped.setdefault(pair.paragraph, []).append(pair)
        return [grouped[key] for key in sorted(grouped)]

    @property
    def cache_hits(self) -> int:
        return sum(1 for pair in self.sentences if pair.cached)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "sentences": [pair.to_dict() for pair in self.sentences],
            "translation": self.translation,
            "timings": self.timings,
        }


def sentence_fields(group: str | None = None) -> tuple[str, ...]:
    """Names of :class:`SentencePair`'s fields, all or those of one group, in declaration order."""
    return tuple(item.name for item in fields(SentencePair) if group is None or item.metadata["group"] == group)


def needs_model(pair: SentencePair) -> bool:
    """Bylines are names: they pass through untranslated, as do empty segments."""
    return pair.kind != "byline" and bool(pair.normalized.strip())
