"""Alternatives: the n best translations of a sentence, for a translator choosing between them.

:meth:`mt.engines.base.Engine.alternatives` does the engine-independent part (cleaning, batching,
stripping, de-duplicating); the two functions here are the engines' one-batch hooks
(``_alternatives_batch``): CTranslate2's ``num_hypotheses`` and transformers' ``num_return_sequences``,
each with a beam of at least n. :class:`BatchedAlternatives` gives the request batcher
(mt.engines.request_queue) the same method: alternatives jobs go through its fair queue under an
:class:`NBest` key, so they share model calls with each other (never with translations, whose
beam differs), wait their turn behind nothing longer than a translation would, and carry the
caller's budget (a spent deadline drops them before the model sees them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from .base import DecodingSettings, check_alternatives, check_sentences


@dataclass(frozen=True)
class NBest:
    """The queue key of alternatives jobs: ``n`` hypotheses with these decoding settings."""

    n: int
    settings: DecodingSettings
    label: ClassVar[str] = "alternatives_"  # prefix of the queue's counters for these calls

    def run(self, engine: Any, sentences: list[str]) -> list[list[str]]:
        return engine.alternatives(sentences, self.n, self.settings)


class BatchedAlternatives:
    """``alternatives`` for :class:`mt.engines.request_queue.BatchingEngine` (``self.queue``,
    ``self.inner``): the same answer as the inner engine's, computed on the shared worker."""

    def alternatives(self, sources: Sequence[str], n: int, settings: DecodingSettings | None = None) -> list[list[str]]:
        if isinstance(sources, str):
            raise TypeError("alternatives() takes a list of sentences, not a single string")
        sources = list(sources)
        check_sentences(sources)  # a bad sentence or n fails this request here, before any batch
        key = NBest(check_alternatives(n), settings or self.inner.settings)
        return [list(found) for found in self.queue.submit(sources, key)] if sources else []


def ctranslate2_alternatives(engine: Any, encoded: list[list[str]], settings: DecodingSettings,
                             n: int) -> list[list[str]]:
    """CTranslate2Engine's hook: ``translate_batch`` with ``num_hypotheses=n`` and the length cap,
    target-language prefix and generation options of its translations (mt.engines.ctranslate2)."""
    caps = [min(settings.max_new_tokens(len(e)), engine.max_target_tokens) for e in encoded]
    keep = [max(0, cap - 1 - engine._forced) for cap in caps]
    prefix = [[engine.target_token] for _ in encoded] if engine.target_token else None
    results = engine.translator.translate_batch(
        [list(e) for e in encoded], target_prefix=prefix, beam_size=max(n, settings.beam), num_hypotheses=n,
        max_batch_size=0, max_decoding_length=max(1, max(keep) + engine._forced), **engine._options)
    out = []
    for result, cut in zip(results, keep):
        hypotheses = [list(pieces) for pieces in result.hypotheses]
        skip = [1 if engine._forced and pieces and pieces[0] == engine.target_token else 0 for pieces in hypotheses]
        out.append(engine._decode_texts([pieces[s : s + cut] for pieces, s in zip(hypotheses, skip)]))
    return out


def transformers_alternatives(engine: Any, encoded: list[list[int]], settings: DecodingSettings,
                              n: int) -> list[list[str]]:
    """TransformersEngine's hook: ``generate`` with ``num_return_sequences=n`` (the beam is at
    least n), its per-sentence caps and family options (mt.engines.transformers)."""
    settings = settings.replace(beam=max(n, settings.beam))
    _, output = engine.generate_ids(encoded, settings, num_return_sequences=n)
    sequences = output.sequences if hasattr(output, "sequences") else output
    kwargs: dict[str, Any] = {"skip_special_tokens": True}
    if engine.spec.family == "marian":
        kwargs["use_source_tokenizer"] = False  # as TransformersEngine._translate_batch
    texts = engine.tokenizer.batch_decode(sequences.tolist(), **kwargs)
    return [texts[i * n : (i + 1) * n] for i in range(len(encoded))]
