"""Word links and quality scores of translated pairs, each cached beside the translation.

Why a module of its own: the pipeline (:mod:`mt.pipeline`) decides *when* they are computed
(after each model batch, streamed or not); this module computes them: cache first, then one
teacher-forced model pass for the links, one embedding call for the scores. Neither may break a
translation: on failure the fields stay empty and a warning is logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING

from . import budget
from .document import SentencePair, needs_model
from .text.normalize import Normalized

if TYPE_CHECKING:  # annotations only: keeps `mt segment` free of torch
    from .engines.base import Engine

__all__ = ["CONFIDENCE_NAMESPACE", "LINKS_NAMESPACE", "QUALITY_NAMESPACE", "cached_confidences", "embed_meanwhile", "fill_links", "fill_quality", "pair_key",
           "preload_quality", "scored", "store_confidences"]

log = logging.getLogger(__name__)

LINKS_NAMESPACE = "|links"  # appended to the engine's cache namespace (docs/CONTRACTS.md)
QUALITY_NAMESPACE = "|quality:e5-small:1"
CONFIDENCE_NAMESPACE = "|confidence"


def pair_key(pair: SentencePair) -> str:
    """Cache key of a pair's links and quality: the normalised sentence AND its translation."""
    return json.dumps([pair.normalized, pair.translation], ensure_ascii=False)


def scored(pair: SentencePair) -> bool:
    return needs_model(pair) and bool(pair.translation.strip())


def cached_confidences(pairs: list[SentencePair], engine: Engine, cache, settings) -> None:
    """Each cached pair's confidence, stored beside its translation when it was made (its own
    namespace: the translation cache's format is unchanged); None when none was stored."""
    keyed: dict[str, list[SentencePair]] = {}
    for pair in pairs:
        if scored(pair):
            keyed.setdefault(pair_key(pair), []).append(pair)  # a repeated sentence: every copy
    found = cache.get_many(engine.namespace(settings) + CONFIDENCE_NAMESPACE, list(keyed)) if keyed else {}
    for key, copies in keyed.items():
        try:
            value = min(1.0, max(0.0, float(found[key])))
        except (KeyError, ValueError, TypeError):
            value = None
        for pair in copies:
            pair.confidence = value


def store_confidences(fresh: list[tuple[str, str]], engine: Engine, cache, settings) -> dict[str, float | None]:
    """The engine's confidences of freshly translated (source, translation) pairs, cached; by source."""
    get = getattr(engine, "confidences", None)
    values = get([source for source, _ in fresh], settings) if get is not None else [None] * len(fresh)
    values = [None if value is None else round(float(value), 6) for value in values]  # as a cache hit gives it
    rows = [(json.dumps([source, translation], ensure_ascii=False), repr(value))
            for (source, translation), value in zip(fresh, values) if value is not None and translation.strip()]
    if rows:
        cache.put_many(engine.namespace(settings) + CONFIDENCE_NAMESPACE, rows)
    return {source: value for (source, _), value in zip(fresh, values)}


def fill_links(pairs: list[SentencePair], maps: list[Normalized], engine: Engine, cache, settings) -> dict[str, float]:
    """Word links of every translated pair: cache first, then one teacher-forced model call."""
    from .engines.attention import engine_attention
    from .links import WordAttention, sentence_links, word_attention

    started = time.perf_counter()
    namespace = engine.namespace(settings) + LINKS_NAMESPACE
    keyed = {pair_key(pair): pair for pair in pairs if scored(pair)}
    records: dict[str, WordAttention] = {}
    for key, value in (cache.get_many(namespace, list(keyed)) if keyed else {}).items():
        try:
            records[key] = WordAttention.from_record(value)
        except (ValueError, KeyError, TypeError, IndexError):
            pass  # a record from another version: computed again below
    misses = [key for key in keyed if key not in records]
    model_seconds = 0.0
    computed = 0
    if misses:
        sources = [keyed[key].normalized for key in misses]
        translations = [keyed[key].translation for key in misses]
        model_started = time.perf_counter()
        try:
            attentions = engine_attention(engine, sources, translations)
        except Exception as error:  # noqa: BLE001 - word links must never cost the translation
            log.warning("word links unavailable: %s: %s", type(error).__name__, error)
            attentions = None
        model_seconds = time.perf_counter() - model_started
        if attentions is not None:
            fresh = []
            for key, source, translation, attention in zip(misses, sources, translations, attentions):
                words = word_attention(attention, source, translation).compacted()
                records[key] = words
                fresh.append((key, words.to_record()))
            cache.put_many(namespace, fresh)
            computed = len(fresh)
    # Links of a (source, translation) pair computed once: a table of 6,000 identical cells
    # costs one sentence_links, and each duplicate only its spans shifted to where it starts.
    done: dict[tuple[str, str], object] = {}
    for pair, mapped in zip(pairs, maps):
        if not scored(pair):
            continue
        links = done.get((pair.source, pair.translation))
        if links is None:
            links = sentence_links(pair.source, 0, mapped, pair.translation, records.get(pair_key(pair)))
            done[pair.source, pair.translation] = links
        # src_words/tgt_*/alignment lists are shared by duplicates: read-only after this point
        pair.src_words = links.src_words
        pair.src_word_spans = [[pair.start + a, pair.start + b] for a, b in links.src_word_spans]
        pair.tgt_words, pair.tgt_word_spans = links.tgt_words, links.tgt_word_spans
        pair.alignment = links.alignment
    return {
        "links_ms": (time.perf_counter() - started) * 1000,
        "links_model_ms": model_seconds * 1000,
        "links_sentences": computed,
    }


def preload_quality() -> threading.Thread:
    """Load e5 and the reference vectors in a thread now (~0.3 s), while the caller loads the
    translation model and the interpreter has a core to spare; failures are left to
    :func:`fill_quality`, which reports them."""

    def work() -> None:
        try:
            from .quality.embeddings import embed
            from .quality.references import reference_vectors

            reference_vectors()
            embed(["Xin chào."])
        except Exception:  # noqa: BLE001 - fill_quality tries again and logs the reason
            pass

    thread = threading.Thread(target=work, name="mt-load-e5", daemon=True)
    thread.start()
    return thread


def embed_meanwhile(texts: list[str]) -> threading.Thread:
    """Embed ``texts`` (loading e5 and the reference vectors) in a thread while the model
    decodes: the sources before decoding starts, each batch's translations as it is decoded.
    CTranslate2 releases the GIL, e5's workers are niced (they take the cores decoding leaves
    idle), and :func:`mt.quality.embeddings.embed` keeps the vectors, so :func:`fill_quality`
    finds them (docs/SPEED.md). Failures are left to :func:`fill_quality`, which reports them.
    The thread works in the caller's budget: a request whose client left stops embedding too."""
    caller = budget.current()

    def work() -> None:
        try:
            from .quality.embeddings import embed
            from .quality.references import reference_vectors

            with budget.budget_scope(caller):
                reference_vectors()
                embed(texts)
        except Exception:  # noqa: BLE001 - fill_quality tries again and logs the reason
            pass

    thread = threading.Thread(target=work, name="mt-embed", daemon=True)
    thread.start()
    return thread


def fill_quality(pairs: list[SentencePair], engine: Engine, cache, settings) -> dict[str, float]:
    """``quality``, ``similarity`` and ``flagged`` of every translated pair: cache first, then ONE
    embedding call for the whole document (see :func:`mt.quality.scores.quality_scores`)."""
    from .quality.scores import flag, quality_scores

    started = time.perf_counter()
    namespace = engine.namespace(settings) + QUALITY_NAMESPACE
    keyed = {pair_key(pair): pair for pair in pairs if scored(pair)}
    scores: dict[str, tuple[float, float, float]] = {}
    for key, value in (cache.get_many(namespace, list(keyed)) if keyed else {}).items():
        try:
            record = json.loads(value)
            scores[key] = (float(record["s"]), float(record["q"]), float(record["e"]))
        except (ValueError, KeyError, TypeError):
            pass  # computed again below
    misses = [key for key in keyed if key not in scores]
    if misses:
        try:
            result = quality_scores([keyed[k].normalized for k in misses], [keyed[k].translation for k in misses])
        except Exception as error:  # noqa: BLE001 - the score must never cost the translation
            log.warning("quality scores unavailable: %s: %s", type(error).__name__, error)
            result = None
        if result is not None:
            fresh = {}
            for n, key in enumerate(misses):
                fresh[key] = tuple(round(float(x[n]), 4) for x in (result.similarity, result.quality, result.english))
            scores.update(fresh)
            cache.put_many(namespace, [(key, json.dumps({"s": s, "q": q, "e": e})) for key, (s, q, e) in fresh.items()])
    for pair in pairs:
        found = scores.get(pair_key(pair)) if scored(pair) else None
        if found is None:
            pair.similarity = pair.quality = None
            pair.flagged = False
        else:
            pair.similarity, pair.quality = found[0], found[1]
            pair.flagged = bool(flag(found[1], found[2]))
    return {"quality_ms": (time.perf_counter() - started) * 1000}
