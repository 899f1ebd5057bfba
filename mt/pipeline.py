"""The one path from a Vietnamese article to an aligned document.

Every entry point (web page, JSON API, CLI, batch) calls :func:`translate_document`,
so they all segment, normalise, cache and translate the same way.

Besides the translation, every translated segment gets word links (``src_words``,
``src_word_spans``, ``tgt_words``, ``tgt_word_spans``, ``alignment``: see :mod:`mt.links`) and
quality scores (``quality``, ``similarity``, ``flagged``: :mod:`mt.quality.scores`). Both are
cached beside the translation (namespaces ``<engine namespace>|links`` and ``|quality``, keyed by
the normalised sentence and its translation), so a cached document needs neither the translation
model nor the embedding model. Neither may break a translation: when the engine cannot give
attention or the embedding model is missing, the fields stay empty (``quality`` None) and a
warning is logged.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import budget
from .cache import NullCache
from .document import Document, SentencePair, needs_model
from .errors import InputError
from .extras import (LINKS_NAMESPACE, QUALITY_NAMESPACE, cached_confidences, embed_meanwhile, fill_links, fill_quality,
                     preload_quality, store_confidences)
from .terms import DEFAULT_TERMS, TermRules
from .text.normalize import Normalized, is_word_segmented, normalize
from .text.segment import split_sentences

if TYPE_CHECKING:  # imported for annotations only: keeps `mt segment` free of torch
    from .engines.base import DecodingSettings, Engine

__all__ = ["DEFAULT_TERMS", "LINKS_NAMESPACE", "QUALITY_NAMESPACE", "Document", "Progress", "SentencePair", "TermRules",
           "iter_document", "needs_model", "preload_quality", "translate_document", "translate_documents"]  # re-exported from mt.document, mt.extras

log = logging.getLogger(__name__)

def check_unicode(text: str, what: str) -> None:
    """Checked here too, not only in the web layer: SentencePiece raises on lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InputError(f"{what} is not valid Unicode (a lone surrogate at character {error.start})") from None


def _prepare(text: str, tone: str, article: bool = True) -> tuple[list[SentencePair], list[Normalized]]:
    """Segment the original text, normalise each segment for the model; also each segment's
    :class:`Normalized` (its offsets map word links back to the text as written)."""
    word_segmented = is_word_segmented(text)
    pairs = []
    maps = []
    for index, segment in enumerate(split_sentences(text, article)):
        mapped = normalize(segment.text, tone=tone, word_segmented=word_segmented)
        maps.append(mapped)
        normalized = mapped.text
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
    return pairs, maps


def fill_translations(pairs: list[SentencePair], engine: Engine, cache, settings,
                      unstored: list | None = None, memory: bool = True) -> dict[str, float]:
    """Look every distinct sentence up in the cache; send all misses to the model in one call
    (``unstored``: see :func:`translated_batches`)."""
    timings: dict[str, float] = {}
    for _ in translated_batches(pairs, engine, cache, settings, timings, unstored=unstored, memory=memory):
        pass
    return timings


def store_translations(cache, engine: Engine, settings, unstored: list | None, timings: dict | None = None) -> None:
    """Cache the fresh translations held back until their word links were stored."""
    if unstored:
        started = time.perf_counter()
        cache.put_many(engine.namespace(settings), unstored)
        unstored.clear()
        if timings is not None:
            _add_timings(timings, {"store_ms": (time.perf_counter() - started) * 1000})


def batch_sizes(first: int | None, largest: int | None) -> Iterator[int | None]:
    """Model batch sizes for the misses: all at once (``first`` None), else ``first``, growing
    fourfold up to ``largest``: a small first batch puts the first rows on the page early, few
    larger ones keep the model efficient (each batch runs as long as its longest sentence)."""
    if first is None:
        while True:
            yield None
    size = max(1, first)
    while True:
        yield size
        size = min(size * 4, max(largest or size * 4, 1))


def translated_batches(pairs: list[SentencePair], engine: Engine, cache, settings, timings: dict,
                       first_batch: int | None = None, max_batch: int | None = None,
                       on_misses: Callable[[list[str]], None] | None = None,
                       unstored: list | None = None,
                       on_translated: Callable[[list[str]], None] | None = None,
                       memory: bool = True) -> Iterator[list[SentencePair]]:
    """Fill the translations, yielding the pairs filled at each step: first the cache hits and
    pass-through segments (at once), then the misses as each model batch returns (see
    :func:`batch_sizes`); ``timings`` gets cache_ms, model_ms and model_sentences. ``on_misses``
    is told the misses before the model starts (work that needs only the sources runs beside it);
    ``on_translated`` each model batch's translations as soon as it is decoded (engines that
    take ``on_batch``), while the other batches still decode.
    ``unstored``: fresh translations go there instead of into the cache, for the caller to store
    once their word links are stored (a process killed in between then leaves neither, so a
    resumed run links them exactly as an uninterrupted one).
    ``memory``: an exact match in the translation memory beside the cache outranks the cache and
    the model (``origin`` "memory"); fuzzy matches become ``suggestions``."""
    wanted = list(dict.fromkeys(pair.normalized for pair in pairs if needs_model(pair)))
    namespace = engine.namespace(settings)
    started = time.perf_counter()
    remembered, suggested = recall(cache, wanted) if memory and wanted else ({}, {})
    timings["memory_ms"] = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    asked = [source for source in wanted if source not in remembered]
    found = cache.get_many(namespace, asked) if asked else {}
    timings["cache_ms"] = (time.perf_counter() - started) * 1000
    waiting: dict[str, list[SentencePair]] = {}
    ready = []
    for pair in pairs:
        if not needs_model(pair):
            ready.append(pair)
            continue
        pair.suggestions = list(suggested.get(pair.normalized, ()))
        if pair.normalized in remembered:
            pair.cached, pair.origin, pair.translation = False, "memory", remembered[pair.normalized]
            ready.append(pair)
        elif pair.normalized in found:
            pair.cached, pair.translation = True, found[pair.normalized]
            ready.append(pair)
        else:
            pair.cached = False
            waiting.setdefault(pair.normalized, []).append(pair)
    cached_confidences([pair for pair in ready if pair.cached], engine, cache, settings)
    yield ready
    misses = list(waiting)
    timings["model_ms"], timings["model_sentences"] = 0.0, len(misses)
    if misses and on_misses is not None:
        on_misses(misses)
    sizes = batch_sizes(first_batch, max_batch)
    done = 0
    while done < len(misses):
        budget.check()  # a request whose client left or whose time is up stops here
        size = next(sizes)
        if size is not None and len(misses) - done - size < size // 2:
            size = None  # a remainder under half a batch goes with this one, not in a call of its own
        batch = misses[done:] if size is None else misses[done : done + size]
        done += len(batch)
        started = time.perf_counter()
        if on_translated is not None and _takes_on_batch(engine):
            fresh = list(zip(batch, engine.translate(batch, settings, on_batch=on_translated)))
        else:
            fresh = list(zip(batch, engine.translate(batch, settings)))
        timings["model_ms"] += (time.perf_counter() - started) * 1000
        if unstored is None:
            cache.put_many(namespace, fresh)
        else:
            unstored.extend(fresh)
        confidence = store_confidences(fresh, engine, cache, settings)
        filled = []
        for source, translation in fresh:
            for pair in waiting[source]:
                pair.translation, pair.confidence = translation, confidence.get(source)
                filled.append(pair)
        yield sorted(filled, key=lambda pair: pair.index)


def recall(cache, sources: list[str]) -> tuple[dict[str, str], dict[str, list]]:
    """Exact and fuzzy matches of ``sources`` in the memory beside ``cache`` (none without one)."""
    from .cache.memory import memory_of

    found = memory_of(cache)
    if found is None:
        return {}, {}
    exact = found.exact(sources)
    return exact, found.suggest([source for source in sources if source not in exact])


def _takes_on_batch(engine) -> bool:
    """Whether ``engine.translate`` takes ``on_batch`` (ours do; a wrapper may not)."""
    try:
        return "on_batch" in inspect.signature(engine.translate).parameters
    except (TypeError, ValueError):
        return False


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


@dataclass
class Progress:
    """One step of :func:`iter_document`: ``step`` is "segments" (every pair, untranslated),
    "rows" (pairs whose translation is in), "links", "quality" (pairs whose word links or scores
    are in) or "done" (``document`` is the finished document)."""

    step: str
    pairs: list[SentencePair]
    document: Document | None = None


def apply_terms(terms: TermRules, pairs: list[SentencePair], maps: list[Normalized], engine, timings: dict) -> None:
    """Enforce the request's terms on translated pairs (after their links: the cache keeps the
    model's own translation and links)."""
    if not terms.active or not pairs:
        return
    started = time.perf_counter()
    terms.apply(pairs, maps, engine.spec.tone)
    timings["terms_ms"] = timings.get("terms_ms", 0.0) + (time.perf_counter() - started) * 1000


def _add_timings(timings: dict, more: dict) -> None:
    for key, value in more.items():
        timings[key] = timings.get(key, 0) + value


def iter_document(
    text: str,
    engine: Engine,
    cache=None,
    *,
    settings: DecodingSettings | None = None,
    links: bool = True,
    quality: bool = True,
    first_batch: int | None = None,
    max_batch: int | None = None,
    terms: TermRules = DEFAULT_TERMS,
    memory: bool = True,
    article: bool = True,
) -> Iterator[Progress]:
    """:func:`translate_document` step by step, for callers that show rows as they come.

    With ``first_batch`` None the misses go to the model in one call and the extras run once
    over the whole document (exactly what :func:`translate_document` does). With ``first_batch``
    the misses go in batches of ``first_batch``, growing up to ``max_batch``, each yielded as it
    returns; the cache hits' word links and scores come right after their rows, the others'
    after the last translation.

    ``terms`` (glossary, protected spans) are enforced after the word links, before the scores:
    the "links" step carries each pair's final ``translation`` and ``terms``. ``memory``: use
    the translation memory beside the cache (see :func:`translated_batches`). ``article`` False:
    no titles or bylines (see :func:`mt.text.segment.split_sentences`; documents' joined blocks).
    """
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    check_unicode(text, "the text")
    cache = cache if cache is not None else NullCache()
    started = time.perf_counter()
    pairs, maps = _prepare(text, engine.spec.tone, article)
    prepared = time.perf_counter()
    yield Progress("segments", pairs)
    timings: dict = {}
    streaming = first_batch is not None
    maps_of = {pair.index: mapped for pair, mapped in zip(pairs, maps)}
    pending: list[SentencePair] = []  # translated pairs still without their links and scores
    meanwhile: list[threading.Thread] = []  # embeddings while the model translates
    embed_later = (lambda texts: meanwhile.append(embed_meanwhile(texts))) if quality else None
    unstored: list | None = [] if links else None  # fresh translations, cached after their links

    def extras(group: list[SentencePair]) -> Iterator[Progress]:
        if links:
            _add_timings(timings, fill_links(group, [maps_of[pair.index] for pair in group], engine, cache, settings))
            store_translations(cache, engine, settings, unstored, timings)
        apply_terms(terms, group, [maps_of[pair.index] for pair in group], engine, timings)
        if links or terms.active:
            yield Progress("links", group)
        if quality:
            started = time.perf_counter()
            for thread in meanwhile:
                thread.join()  # else its texts would be embedded twice
            _add_timings(timings, {"quality_ms": (time.perf_counter() - started) * 1000})
            _add_timings(timings, fill_quality(group, engine, cache, settings))
            yield Progress("quality", group)

    for number, group in enumerate(translated_batches(pairs, engine, cache, settings, timings,
                                                      first_batch, max_batch, embed_later, unstored,
                                                      embed_later, memory)):
        yield Progress("rows", group)
        if streaming and number == 0 and any(pair.cached for pair in group):
            yield from extras(group)  # cache hits: their links and scores are most likely cached too
        elif group or not streaming:
            pending.extend(group)
    if pending or not streaming:
        yield from extras(sorted(pending, key=lambda pair: pair.index))
    store_translations(cache, engine, settings, unstored, timings)
    timings["segment_ms"] = (prepared - started) * 1000
    timings["total_ms"] = (time.perf_counter() - started) * 1000
    document = Document(
        text=text,
        model=engine.spec.id,
        sentences=pairs,
        translation=join_translation(text, pairs),
        timings={key: round(value, 3) if isinstance(value, float) else value for key, value in timings.items()},
    )
    yield Progress("done", pairs, document)


def translate_document(
    text: str,
    engine: Engine,
    cache=None,
    *,
    settings: DecodingSettings | None = None,
    links: bool = True,
    quality: bool = True,
    terms: TermRules = DEFAULT_TERMS,
    memory: bool = True,
    article: bool = True,
) -> Document:
    """Segment, normalise, translate (cache first) and assemble the aligned document.

    ``links``: word links of every translated segment (cached; on a miss, one teacher-forced
    pass of the model). ``quality``: the similarity score and flag (cached; on a miss, one
    embedding call). Callers that do not show them can skip either. The steps are those of
    :func:`iter_document`, run to the end.
    """
    for progress in iter_document(text, engine, cache, settings=settings, links=links, quality=quality, terms=terms,
                                  memory=memory, article=article):
        if progress.document is not None:
            return progress.document
    raise AssertionError("iter_document ends with the document")  # pragma: no cover


def translate_documents(
    texts: list[str],
    engine: Engine,
    cache=None,
    *,
    settings: DecodingSettings | None = None,
    links: bool = True,
    quality: bool = True,
    terms: TermRules = DEFAULT_TERMS,
    memory: bool = True,
) -> list[Document]:
    """Many texts in ONE pass (a LibreTranslate ``q`` list): one cache lookup and one model call for
    the distinct sentences of all of them, not one pipeline run per text; documents in order."""
    for number, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError("every text must be a str")
        check_unicode(text, f"text {number}")
    cache = cache if cache is not None else NullCache()
    started = time.perf_counter()
    prepared = [_prepare(text, engine.spec.tone) for text in texts]
    every_pair = [pair for pairs, _ in prepared for pair in pairs]
    every_map = [mapped for _, maps in prepared for mapped in maps]
    timings: dict = {"segment_ms": (time.perf_counter() - started) * 1000}
    unstored: list | None = [] if links else None  # as in iter_document: cached after their links
    _add_timings(timings, fill_translations(every_pair, engine, cache, settings, unstored, memory))
    if links:
        _add_timings(timings, fill_links(every_pair, every_map, engine, cache, settings))
        store_translations(cache, engine, settings, unstored)
    apply_terms(terms, every_pair, every_map, engine, timings)
    if quality:
        _add_timings(timings, fill_quality(every_pair, engine, cache, settings))
    timings["total_ms"] = (time.perf_counter() - started) * 1000
    rounded = {key: round(value, 3) if isinstance(value, float) else value for key, value in timings.items()}
    return [Document(text=text, model=engine.spec.id, sentences=pairs, translation=join_translation(text, pairs),
                     timings=dict(rounded)) for text, (pairs, _) in zip(texts, prepared)]
