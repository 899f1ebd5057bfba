"""The one path from a Vietnamese article to an aligned document.

Every entry point (web page, JSON API, CLI, batch) calls :func:`translate_document`,
so they all segment, normalise, cache and translate the same way.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from .cache import NullCache
from .normalize import is_word_segmented, normalize
from .segment import split_sentences

if TYPE_CHECKING:  # imported for annotations only: keeps `mt segment` free of torch
    from .translate import DecodingSettings, Engine


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

    def to_dict(self) -> dict:
        return asdict(self)


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


def prepare_pairs(text: str, tone: str) -> list[SentencePair]:
    """Segment the original text, then normalise each segment for the model."""
    word_segmented = is_word_segmented(text)
    pairs = []
    for index, segment in enumerate(split_sentences(text)):
        normalized = normalize(segment.text, tone=tone, word_segmented=word_segmented).text
        pairs.append(
            SentencePair(
                index=index,
                paragraph=segment.paragraph,
                kind=segment.kind,
                start=segment.start,
                end=segment.end,
                source=segment.text,
                normalized=normalized,
                translation=normalized if segment.kind == "byline" else "",
                cached=False,
            )
        )
    return pairs


def fill_translations(pairs: list[SentencePair], engine: Engine, cache, settings) -> dict[str, float]:
    """Look every distinct sentence up in the cache; send all misses to the model in one call."""
    wanted = list(dict.fromkeys(pair.normalized for pair in pairs if needs_model(pair)))
    namespace = engine.namespace(settings)
    started = time.perf_counter()
    found = cache.get_many(namespace, wanted) if wanted else {}
    cache_seconds = time.perf_counter() - started

    misses = [source for source in wanted if source not in found]
    started = time.perf_counter()
    fresh = dict(zip(misses, engine.translate(misses, settings))) if misses else {}
    model_seconds = time.perf_counter() - started
    if fresh:
        cache.put_many(namespace, list(fresh.items()))

    for pair in pairs:
        if not needs_model(pair):
            continue
        pair.cached = pair.normalized in found
        pair.translation = found[pair.normalized] if pair.cached else fresh[pair.normalized]
    return {"cache_ms": cache_seconds * 1000, "model_ms": model_seconds * 1000, "model_sentences": len(misses)}


def join_translation(text: str, pairs: list[SentencePair]) -> str:
    """The full English text: paragraphs kept, line breaks of the original kept between segments."""
    pieces: list[str] = []
    previous: SentencePair | None = None
    for pair in pairs:
        if previous is not None:
            if pair.paragraph != previous.paragraph:
                pieces.append("\n\n")
            elif "\n" in text[previous.end : pair.start]:
                pieces.append("\n")
            else:
                pieces.append(" ")
        pieces.append(pair.translation)
        previous = pair
    return "".join(pieces)


def translate_document(
    text: str,
    engine: Engine,
    cache=None,
    *,
    settings: DecodingSettings | None = None,
) -> Document:
    """Segment, normalise, translate (cache first) and assemble the aligned document."""
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    cache = cache if cache is not None else NullCache()
    started = time.perf_counter()
    pairs = prepare_pairs(text, engine.spec.tone)
    prepared = time.perf_counter()
    timings = fill_translations(pairs, engine, cache, settings)
    timings["segment_ms"] = (prepared - started) * 1000
    timings["total_ms"] = (time.perf_counter() - started) * 1000
    return Document(
        text=text,
        model=engine.spec.id,
        sentences=pairs,
        translation=join_translation(text, pairs),
        timings={key: round(value, 3) if isinstance(value, float) else value for key, value in timings.items()},
    )
