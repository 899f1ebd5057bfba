"""What every translation engine shares, whatever the inference library.

:class:`Engine` handles empty sentences, the model's input prefix and output prefix (T5),
grouping sentences into batches by token count (longest first, original order restored), the
output length cap ``a × source tokens + b`` and the cache namespace. A subclass only tokenises
(``_encode``) and decodes one batch (``_translate_batch``); see mt.engines.transformers and
mt.engines.ctranslate2. Word links come from an engine's ``attention`` (mt.engines.attention).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError, InputError
from ..models import ModelSpec

log = logging.getLogger(__name__)

# Batch limits, counted in hypotheses: a batch holds at most max_batch_tokens / beam padded source
# tokens and max_batch_sentences / beam sentences (memory and compute grow with the beam).
DEFAULT_MAX_BATCH_TOKENS = {"cpu": 8192, "cuda": 32768}
DEFAULT_MAX_BATCH_SENTENCES = {"cpu": 64, "cuda": 512}
# Decoder confidences remembered per (sentence, settings) until the pipeline reads them (confidences())
CONFIDENCE_MEMO = 65536
MAX_ALTERNATIVES = 8  # most hypotheses Engine.alternatives returns per sentence (the beam grows to n)


# C0/C1 control characters other than whitespace: no meaning to a translation model, so they are
# dropped before tokenising (SentencePiece would turn each into an unknown piece).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def check_sentences(sentences: Sequence[object]) -> None:
    """InputError unless every item is a str (or None: blank) that is valid Unicode.

    A lone surrogate (``"\\ud800"``, from JSON or ``surrogateescape``) cannot be encoded, so
    SentencePiece would raise inside a model call; checked here, at the engine boundary, it fails
    only the request that carries it.
    """
    for index, sentence in enumerate(sentences):
        if sentence is None:
            continue
        if not isinstance(sentence, str):
            raise InputError(f"sentence {index} is a {type(sentence).__name__}, not text")
        try:
            sentence.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InputError(f"sentence {index} is not valid Unicode (a lone surrogate at "
                             f"character {error.start})") from None


def check_alternatives(n: object) -> int:
    """``n`` for :meth:`Engine.alternatives`: a whole number in 1..MAX_ALTERNATIVES, else InputError."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_ALTERNATIVES:
        raise InputError(f"n must be a whole number from 1 to {MAX_ALTERNATIVES}, not {n!r}")
    return n


@dataclass(frozen=True)
class DecodingSettings:
    """Beam size and output length cap: at most ``max_len_a × source tokens + max_len_b`` tokens."""

    beam: int = 4
    max_len_a: float = 1.5
    max_len_b: int = 10

    def __post_init__(self) -> None:
        if not isinstance(self.beam, int) or self.beam < 1:
            raise ConfigError(f"beam must be a whole number >= 1, not {self.beam!r}")
        if not (isinstance(self.max_len_a, (int, float)) and 0 <= self.max_len_a < float("inf")):
            raise ConfigError(f"max_len_a must be a number >= 0, not {self.max_len_a!r}")
        if not isinstance(self.max_len_b, int) or self.max_len_b < 0:
            raise ConfigError(f"max_len_b must be a whole number >= 0, not {self.max_len_b!r}")

    def key(self) -> str:
        """Stable text form, part of cache keys: ``beam=4,a=1.5,b=10``."""
        return f"beam={self.beam},a={float(self.max_len_a):g},b={self.max_len_b}"

    def max_new_tokens(self, source_tokens: int) -> int:
        return max(1, int(self.max_len_a * source_tokens + self.max_len_b))

    def replace(self, **changes: Any) -> "DecodingSettings":
        return replace(self, **changes)

    @classmethod
    def for_spec(cls, spec: ModelSpec) -> "DecodingSettings":
        return cls(beam=spec.beam, max_len_a=spec.max_len_a, max_len_b=spec.max_len_b)


def batches_by_tokens(lengths: Sequence[int], max_tokens: int, max_sentences: int) -> list[list[int]]:
    """Group sentence indices into batches, longest first.

    A batch costs ``len(batch) × longest length`` (its padded size); batches stay within
    ``max_tokens`` and ``max_sentences``. A sentence longer than ``max_tokens`` gets a batch of its
    own. Sorting by length keeps padding small; ties keep input order (deterministic).
    """
    if max_tokens < 1 or max_sentences < 1:
        raise ValueError("max_tokens and max_sentences must be >= 1")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        n = max(1, int(lengths[i]))
        if current and (len(current) >= max_sentences or max(width, n) * (len(current) + 1) > max_tokens):
            batches.append(current)
            current, width = [], 0
        current.append(i)
        width = max(width, n)
    if current:
        batches.append(current)
    return batches


def balanced_batch_size(n: int, max_sentences: int, parallel: int) -> int:
    """Sentences per batch so that ``n`` sentences make a multiple of ``parallel`` batches of
    near-equal size: with two batches decoded at once, 46 sentences as 4 × 12 keep both busy to
    the end, where 16 + 16 + 14 would leave one idle for the last third."""
    if parallel <= 1 or n <= 1:
        return max_sentences
    groups = parallel * -(-n // (parallel * max_sentences))
    return max(1, -(-n // groups))


def _remember(memo: OrderedDict, key: Any, value: float) -> None:
    memo[key] = value
    memo.move_to_end(key)
    while len(memo) > CONFIDENCE_MEMO:
        memo.popitem(last=False)


def content_hash(directory: Path) -> str:
    """Identity of a local model: config.json's bytes plus name, size and mtime of every file."""
    h = hashlib.sha256()
    try:
        h.update((directory / "config.json").read_bytes())
    except OSError:
        pass
    for f in sorted(directory.iterdir()):
        try:
            st = f.stat()
        except OSError:
            continue
        if f.is_file():
            h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class Engine:
    """One loaded model. ``translate`` is thread-safe; subclasses implement the two hooks."""

    name = "base"  # engine name, part of the cache namespace

    def __init__(
        self,
        spec: ModelSpec,
        model_dir: Path | None = None,
        *,
        device: str = "cpu",
        settings: DecodingSettings | None = None,
        max_batch_tokens: int | None = None,
        max_batch_sentences: int | None = None,
    ) -> None:
        self.spec = spec
        self.model_dir = Path(model_dir) if model_dir is not None else spec.path
        self.device = device
        self.settings = settings or DecodingSettings.for_spec(spec)
        kind = "cuda" if device.startswith("cuda") else "cpu"
        self.max_batch_tokens = max_batch_tokens or spec.max_batch_tokens or DEFAULT_MAX_BATCH_TOKENS[kind]
        self.max_batch_sentences = (
            max_batch_sentences or spec.max_batch_sentences or DEFAULT_MAX_BATCH_SENTENCES[kind]
        )
        self.precision = "fp32"
        self.parallel_batches = 1  # batches decoded at once (CTranslate2 on CPU: its inter_threads)
        self._lock = threading.RLock()
        self._version: str | None = None
        self._scores: OrderedDict = OrderedDict()  # (encoded input, settings key) -> confidence
        self._confidence: OrderedDict = OrderedDict()  # (sentence, settings key) -> confidence

    # -- identity ------------------------------------------------------------------------------

    @property
    def model_version(self) -> str:
        """Pinned revision, else the cached snapshot's commit, else a content hash of the folder."""
        if self._version is None:
            d = self.model_dir
            if self.spec.path is None and d is not None and d.parent.name == "snapshots":
                self._version = d.name  # HF cache: .../snapshots/<commit>
            elif self.spec.path is None and self.spec.revision:
                self._version = self.spec.revision
            elif d is not None and d.is_dir():
                self._version = "sha256:" + content_hash(d)
            else:
                self._version = self.spec.revision or "main"
        return self._version

    def namespace(self, settings: DecodingSettings | None = None) -> str:
        """Cache key prefix: model id @ version | engine-precision | decoding settings."""
        s = settings or self.settings
        return f"{self.spec.id}@{self.model_version}|{self.name}-{self.precision}|{s.key()}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.ref} on {self.device} ({self.precision}) {self.settings.key()}>"

    # -- translation ---------------------------------------------------------------------------

    def translate(self, sentences: Sequence[str], settings: DecodingSettings | None = None,
                  on_batch: Callable[[list[str]], None] | None = None) -> list[str]:
        """Translate sentences; same length and order as the input. Blank sentences give "".
        ``on_batch`` is handed each model batch's translations as soon as that batch is decoded
        (work on them can use the cores that a still-decoding batch leaves idle); an error in it
        is logged and never costs the translation."""
        if isinstance(sentences, str):
            raise TypeError("translate() takes a list of sentences, not a single string")
        sentences = list(sentences)
        check_sentences(sentences)
        settings = settings or self.settings
        out = [""] * len(sentences)
        cleaned = [None if s is None else " ".join(_CONTROL.sub(" ", s).split()) for s in sentences]
        todo = [i for i, s in enumerate(cleaned) if s]
        if not todo:
            return out
        texts = [self.spec.prefix + cleaned[i] for i in todo]
        with self._lock:
            encoded = self._encode(texts)
        lengths = [len(e) for e in encoded]
        self._note_cut(lengths)
        max_tokens, max_sentences = self.batch_limits(settings)
        max_sentences = balanced_batch_size(len(encoded), max_sentences, self.parallel_batches)
        batches = batches_by_tokens(lengths, max_tokens, max_sentences)
        def hook(texts: list[str]) -> None:
            try:
                on_batch([self._postprocess(text) for text in texts])
            except Exception as error:  # noqa: BLE001 - extra work must not cost the translation
                log.warning("on_batch failed: %s: %s", type(error).__name__, error)

        decoded = self._run_batches([[encoded[j] for j in batch] for batch in batches], settings,
                                    hook if on_batch is not None else None)
        for batch, results in zip(batches, decoded):
            for j, text in zip(batch, results):
                out[todo[j]] = self._postprocess(text)
        with self._lock:
            for j, i in enumerate(todo):
                score = self._scores.get((tuple(encoded[j]), settings.key()))
                if score is not None:
                    _remember(self._confidence, (sentences[i], settings.key()), score)
        return out

    def alternatives(self, sources: Sequence[str], n: int,
                     settings: DecodingSettings | None = None) -> list[list[str]]:
        """Up to ``n`` distinct translations of each source, best first: the n best hypotheses of
        a beam of ``max(n, beam)``, stripped, blanks and repeats dropped (so fewer when several
        decode alike). A blank source gives []. Batched like :meth:`translate`, one batch at a
        time; nothing is cached or remembered (not the confidences, not the attention memo)."""
        if isinstance(sources, str):
            raise TypeError("alternatives() takes a list of sentences, not a single string")
        sources = list(sources)
        check_sentences(sources)
        n = check_alternatives(n)
        settings = settings or self.settings
        settings = settings.replace(beam=max(n, settings.beam))
        out: list[list[str]] = [[] for _ in sources]
        cleaned = [None if s is None else " ".join(_CONTROL.sub(" ", s).split()) for s in sources]
        todo = [i for i, s in enumerate(cleaned) if s]
        if not todo:
            return out
        with self._lock:
            encoded = self._encode([self.spec.prefix + cleaned[i] for i in todo])
        for batch in batches_by_tokens([len(e) for e in encoded], *self.batch_limits(settings)):
            with self._lock:
                found = self._alternatives_batch([encoded[j] for j in batch], settings, n)
            for j, texts in zip(batch, found):
                out[todo[j]] = list(dict.fromkeys(t for t in map(self._postprocess, texts) if t))
        return out

    def confidences(self, sentences: Sequence[str], settings: DecodingSettings | None = None) -> list[float | None]:
        """The decoder's confidence in each sentence's last translation with these settings:
        exp of the mean token log-probability of the output, in [0, 1]; None when the engine
        gave no score or the sentence was not translated here lately. A parallel path, not a
        return value of :meth:`translate`, so wrappers (the batcher) pass translations unchanged."""
        key = (settings or self.settings).key()
        with self._lock:
            return [self._confidence.get((sentence, key)) for sentence in sentences]

    def _note_scores(self, encoded: Sequence[Sequence], settings: DecodingSettings,
                     mean_log_probs: Sequence[float | None]) -> None:
        """Subclasses report each output's mean token log-probability from ``_translate_batch``."""
        import math

        with self._lock:
            for source, value in zip(encoded, mean_log_probs):
                if value is not None and math.isfinite(value):
                    _remember(self._scores, (tuple(source), settings.key()), min(1.0, max(0.0, math.exp(value))))

    def _run_batches(self, batches: list[list[Sequence]], settings: DecodingSettings,
                     on_batch: Callable[[list[str]], None] | None = None) -> list[list[str]]:
        """Each batch's translations, in order. Here one batch at a time under the engine lock;
        an engine that can decode ``parallel_batches`` at once overrides this."""
        out = []
        for batch in batches:
            with self._lock:
                out.append(self._translate_batch(batch, settings))
            if on_batch is not None:
                on_batch(out[-1])
        return out

    def _note_cut(self, lengths: list[int]) -> None:
        """Log the sentences the tokenizer cut at the model's limit (``max_source_tokens``, from
        its max positions): their translations cover only the start. The segmenter's clause
        split keeps ordinary text far below it; this bounds the work of a pathological one."""
        limit = getattr(self, "max_source_tokens", None)
        cut = sum(1 for n in lengths if limit and n >= limit)
        if cut:
            log.warning("%d sentence(s) reached the model's limit of %d source pieces and were cut there; "
                        "their translations cover only the first %d pieces", cut, limit, limit)

    def batch_limits(self, settings: DecodingSettings) -> tuple[int, int]:
        """(padded source tokens, sentences) per batch for these settings: the limits / beam."""
        beam = max(1, settings.beam)
        return max(1, self.max_batch_tokens // beam), max(1, self.max_batch_sentences // beam)

    def _postprocess(self, text: str) -> str:
        text = text.strip()
        strip = self.spec.strip_prefix
        if strip and text.startswith(strip.strip()):
            text = text[len(strip.strip()) :]
        return text.strip()

    # -- hooks ---------------------------------------------------------------------------------

    def _encode(self, texts: list[str]) -> list[Sequence]:
        """Tokenise source texts (prefix already added); one sequence of tokens or ids per text."""
        raise NotImplementedError

    def _translate_batch(self, encoded: list[Sequence], settings: DecodingSettings) -> list[str]:
        """Translate one batch of encoded sentences; called with the engine lock held."""
        raise NotImplementedError

    def _alternatives_batch(self, encoded: list[Sequence], settings: DecodingSettings, n: int) -> list[list[str]]:
        """The ``n`` best decoded hypotheses of each sentence (``settings.beam >= n``), best first;
        called with the engine lock held (mt.engines.nbest has both engines')."""
        raise NotImplementedError(f"the {self.name} engine cannot give alternatives")
