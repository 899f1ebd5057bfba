"""The aligned document: each segment of the article beside its translation, its word links and
its quality score. What every view, API response and output file is made from."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["Document", "SentencePair"]


@dataclass
class SentencePair:
    """One segment of the article beside its translation; offsets point into the original text."""

    index: int
    paragraph: int
    kind: str  # "sentence", "title" or "byline"
    start: int
    end: int
    source: str  # as the user wrote it: text[start:end]
    normalized: str  # what the model saw
    translation: str
    cached: bool
    # word links (mt.links): words as written, spans into the original article / the translation
    src_words: list[str] = field(default_factory=list)
    src_word_spans: list[list[int]] = field(default_factory=list)
    tgt_words: list[str] = field(default_factory=list)
    tgt_word_spans: list[list[int]] = field(default_factory=list)
    alignment: list[list[int]] = field(default_factory=list)  # [vi word index, en word index]
    # quality (mt.quality.scores): None when not scored (bylines, no embedding model)
    quality: float | None = None  # similarity minus the translation's similarity to unrelated Vietnamese
    similarity: float | None = None  # plain cosine of the source and translation embeddings
    flagged: bool = False  # low confidence: quality below threshold, or not English

    def to_dict(self) -> dict:
        """The fields as plain JSON-ready values (what ``dataclasses.asdict`` gives, built
        directly: asdict's recursive deep copy cost 0.8 s of a 100,000-character answer)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("src_words", "tgt_words"):
            out[name] = list(out[name])
        for name in ("src_word_spans", "tgt_word_spans", "alignment"):
            out[name] = [list(item) for item in out[name]]
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


def needs_model(pair: SentencePair) -> bool:
    """Bylines are names: they pass through untranslated, as do empty segments."""
    return pair.kind != "byline" and bool(pair.normalized.strip())
