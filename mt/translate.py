"""Translation engines: one loaded model behind a thread-safe ``translate(sentences)``.

The :class:`Engine` base class does everything that does not depend on the inference library:
empty sentences, the model's input prefix and output prefix (T5), grouping sentences into
batches by token count (longest first, original order restored), the output length cap
``a × source tokens + b`` and the cache namespace. A subclass only tokenises (``_encode``) and
decodes one batch (``_translate_batch``); :class:`TransformersEngine` does it with transformers
and torch. A CTranslate2 engine is one more subclass registered in ``ENGINES``.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import logging
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError, ModelUnavailable
from .models import ModelSpec, locate, resolve_model

log = logging.getLogger(__name__)

# Batch limits, counted in hypotheses: a batch holds at most max_batch_tokens / beam padded source
# tokens and max_batch_sentences / beam sentences (memory and compute grow with the beam).
DEFAULT_MAX_BATCH_TOKENS = {"cpu": 8192, "cuda": 32768}
DEFAULT_MAX_BATCH_SENTENCES = {"cpu": 64, "cuda": 512}


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


def _content_hash(directory: Path) -> str:
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
                self._version = "sha256:" + _content_hash(d)
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

    def translate(self, sentences: Sequence[str], settings: DecodingSettings | None = None) -> list[str]:
        """Translate sentences; same length and order as the input. Blank sentences give ""."""
        if isinstance(sentences, str):
            raise TypeError("translate() takes a list of sentences, not a single string")
        sentences = list(sentences)
        settings = settings or self.settings
        out = [""] * len(sentences)
        todo = [i for i, s in enumerate(sentences) if s is not None and str(s).strip()]
        if not todo:
            return out
        texts = [self.spec.prefix + " ".join(str(sentences[i]).split()) for i in todo]
        with self._lock:
            encoded = self._encode(texts)
        lengths = [len(e) for e in encoded]
        max_tokens, max_sentences = self.batch_limits(settings)
        max_sentences = balanced_batch_size(len(encoded), max_sentences, self.parallel_batches)
        batches = batches_by_tokens(lengths, max_tokens, max_sentences)
        decoded = self._run_batches([[encoded[j] for j in batch] for batch in batches], settings)
        for batch, results in zip(batches, decoded):
            for j, text in zip(batch, results):
                out[todo[j]] = self._postprocess(text)
        return out

    def _run_batches(self, batches: list[list[Sequence]], settings: DecodingSettings) -> list[list[str]]:
        """Each batch's translations, in order. Here one batch at a time under the engine lock;
        an engine that can decode ``parallel_batches`` at once overrides this."""
        out = []
        for batch in batches:
            with self._lock:
                out.append(self._translate_batch(batch, settings))
        return out

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


class TransformersEngine(Engine):
    """transformers + torch: AutoTokenizer / AutoModelForSeq2SeqLM, fp32 on CPU, fp16 on CUDA."""

    name = "transformers"

    def __init__(self, spec: ModelSpec, model_dir: Path, *, device: str = "cpu", **kwargs: Any) -> None:
        super().__init__(spec, model_dir, device=device, **kwargs)
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self._torch = torch
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        self.precision = "fp16" if dtype == torch.float16 else "fp32"
        tok_kwargs: dict[str, Any] = {}
        if spec.family in ("mbart", "nllb", "m2m100"):
            tok_kwargs = {"src_lang": spec.src_lang, "tgt_lang": spec.tgt_lang}
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), **tok_kwargs)
            model = AutoModelForSeq2SeqLM.from_pretrained(str(model_dir), dtype=dtype)
        except Exception as e:  # corrupt or partial files, missing tokenizer, unsupported config...
            hint = "" if spec.path is not None else f" (the cached copy may be incomplete: run `mt download {spec.ref}`)"
            raise ModelUnavailable(f"cannot load model {spec.ref} from {model_dir}: {e}{hint}") from None
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        self.model = model.to(device).eval()
        # We always pass max_new_tokens; a max_length in the model's generation config only warns.
        self.model.generation_config.max_length = None
        cfg = self.model.config
        positions = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None) or 512
        tok_max = getattr(self.tokenizer, "model_max_length", None) or positions
        self.max_source_tokens = int(min(positions, tok_max if tok_max < 1e9 else positions))
        self.max_target_tokens = int(positions) - 1
        self._gen_kwargs = self._family_kwargs()
        # Greedy decoding drops finished sentences from the batch (see _greedy_pruned).
        self.prune_finished = os.environ.get("MT_PRUNE_FINISHED", "1") != "0"
        eos = self.model.generation_config.eos_token_id
        eos = self.model.config.eos_token_id if eos is None else eos
        self._eos_ids = [eos] if isinstance(eos, int) else list(eos or [])

    def _lang_id(self, lang: str) -> int:
        tok = self.tokenizer
        candidates = []
        if hasattr(tok, "get_lang_id"):
            try:
                candidates.append(tok.get_lang_id(lang))
            except (KeyError, AttributeError):
                pass
        candidates += [tok.convert_tokens_to_ids(lang), tok.convert_tokens_to_ids(f"__{lang}__")]
        for tid in candidates:
            if isinstance(tid, int) and tid != tok.unk_token_id:
                return tid
        raise ConfigError(f"model {self.spec.ref}: target language code {lang!r} is not in its vocabulary")

    def _family_kwargs(self) -> dict[str, Any]:
        fam, tgt = self.spec.family, self.spec.tgt_lang
        if fam == "mbart" and tgt:
            return {"decoder_start_token_id": self._lang_id(tgt)}
        if fam in ("nllb", "m2m100") and tgt:
            return {"forced_bos_token_id": self._lang_id(tgt)}
        return {}

    def _encode(self, texts: list[str]) -> list[list[int]]:
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_source_tokens)
        return [list(ids) for ids in enc["input_ids"]]

    def generate_ids(self, encoded: list[list[int]], settings: DecodingSettings, **extra: Any):
        """Pad a batch of token ids, run ``generate`` and return its raw output.

        ``extra`` goes to ``generate`` (e.g. ``output_attentions=True, return_dict_in_generate=True``
        for word alignment). Returns ``(inputs, output)``. Call with the engine lock held.
        """
        torch = self._torch
        from transformers import LogitsProcessorList

        plain_call = not extra  # pruning only with our own processors (theirs may keep per-row state)

        inputs = self.tokenizer.pad({"input_ids": encoded}, padding=True, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        caps = [min(settings.max_new_tokens(len(e)), self.max_target_tokens) for e in encoded]
        processors = LogitsProcessorList(extra.pop("logits_processor", None) or [])
        if self._eos_ids and (min(caps) < max(caps) or settings.beam == 1):
            # The batch runs up to its longest sentence's cap; each sentence still ends at its own,
            # so a translation does not depend on which sentences share its batch.
            processors.append(_sentence_caps_processor()(caps, settings.beam, self._eos_ids))
        kwargs = dict(
            num_beams=settings.beam,
            num_return_sequences=1,
            do_sample=False,
            max_new_tokens=max(caps),
            logits_processor=processors,
            **self._gen_kwargs,
        )
        kwargs.update(extra)
        impl = getattr(self.model.config, "_attn_implementation", None)
        eager = bool(extra.get("output_attentions")) and impl not in (None, "eager")
        if eager:  # sdpa/flash kernels return no attention weights
            self.model.set_attn_implementation("eager")
        try:
            with torch.inference_mode():
                if settings.beam == 1 and plain_call and self.prune_finished:
                    try:
                        return inputs, self.model.generate(**inputs, **kwargs, custom_generate=_greedy_pruned)
                    except Exception as e:  # internal generate API changed: use the plain loop from now on
                        log.warning("greedy decoding with pruning failed (%s: %s); using plain generate", type(e).__name__, e)
                        self.prune_finished = False
                        for p in processors:
                            if hasattr(p, "reset"):
                                p.reset()
                output = self.model.generate(**inputs, **kwargs)
        finally:
            if eager:
                self.model.set_attn_implementation(impl)
        return inputs, output

    def _translate_batch(self, encoded: list[list[int]], settings: DecodingSettings) -> list[str]:
        _, output = self.generate_ids(encoded, settings)
        sequences = output.sequences if hasattr(output, "sequences") else output
        decode_kwargs: dict[str, Any] = {"skip_special_tokens": True}
        if self.spec.family == "marian":
            # transformers 5 decodes shared-vocabulary Marian output with the *source* SentencePiece
            # model by default; the output is target language.
            decode_kwargs["use_source_tokenizer"] = False
        return self.tokenizer.batch_decode(sequences.tolist(), **decode_kwargs)

    def attention(self, sources: Sequence[str], translations: Sequence[str]) -> list:
        """The engine attention contract (mt.engines.attention): sources encoded exactly as
        ``translate`` does, translations re-tokenised with the target tokenizer and forced as
        decoder input (:func:`mt.engines.forced_attention.forced_cross_attention`)."""
        from .engines.attention import AttentionRequest, empty_attention, target_ids
        from .engines.forced_attention import forced_cross_attention

        sources, translations = list(sources), list(translations)
        request = AttentionRequest.build(self.spec, sources, translations)
        out = [empty_attention() for _ in sources]
        if not request.todo:
            return out
        tok = self.tokenizer
        with self._lock:
            src_ids = self._encode(request.model_inputs)
            tgt_ids = target_ids(tok, request.forced_texts)
            matrices = forced_cross_attention(self, src_ids, tgt_ids)
        for k, i in enumerate(request.todo):
            out[i] = request.token_attention(
                tok, k, src_ids[k], tok.convert_ids_to_tokens(src_ids[k]),
                tgt_ids[k], tok.convert_ids_to_tokens(tgt_ids[k]), matrices[k])
        return out



@functools.lru_cache(maxsize=None)
def _sentence_caps_processor():
    """A LogitsProcessor class (built lazily: transformers is imported only when needed)."""
    import torch
    from transformers import LogitsProcessor

    class SentenceCaps(LogitsProcessor):
        """Force end-of-sentence on row i once it has ``caps[i] - 1`` tokens (cap reached, as
        ``max_new_tokens`` + ``forced_eos_token_id`` do for the whole batch)."""

        def __init__(self, caps: list[int], num_beams: int, eos_ids: list[int]):
            self.all_caps = torch.tensor(caps).repeat_interleave(num_beams)
            self.eos = torch.tensor(eos_ids)
            self.reset()

        def reset(self) -> None:
            self.caps = self.all_caps
            self.start: int | None = None

        def select_rows(self, keep) -> None:
            """Rows kept after finished ones were dropped (see _greedy_pruned)."""
            self.caps = self.caps[keep.to(self.caps.device)]

        def __call__(self, input_ids, scores):
            if self.start is None:  # decoder prefix length (start token) at the first step
                self.start = input_ids.shape[1]
            rows = (self.caps.to(scores.device) - 1) == (input_ids.shape[1] - self.start)
            if bool(rows.any()):
                eos = self.eos.to(scores.device)
                forced = torch.full_like(scores[rows], -float("inf"))
                forced[:, eos] = 0
                scores[rows] = forced
            return scores

    return SentenceCaps


def _select_rows(model_kwargs: dict, keep, n: int) -> None:
    """Keep rows ``keep`` of everything batch-shaped in generate's model kwargs (in place)."""
    import torch
    from transformers.cache_utils import Cache

    for key, value in list(model_kwargs.items()):
        if isinstance(value, Cache):
            value.batch_select_indices(keep)
        elif isinstance(value, torch.Tensor):
            if value.dim() >= 2 and value.shape[0] == n:
                model_kwargs[key] = value[keep]
        elif key == "encoder_outputs" and value is not None:
            for name in list(value.keys()):
                item = value[name]
                if isinstance(item, torch.Tensor) and item.shape[0] == n:
                    value[name] = item[keep]
                elif isinstance(item, tuple):
                    value[name] = tuple(t[keep] if isinstance(t, torch.Tensor) and t.shape[0] == n else t for t in item)


def _greedy_pruned(model, input_ids, logits_processor, stopping_criteria, generation_config, **model_kwargs):
    """Greedy decoding that drops finished sentences from the batch (a ``custom_generate`` loop).

    ``generate`` prepares everything (encoder outputs, cache, logits processors, stopping criteria)
    and calls this instead of its own greedy loop. Outputs are those of plain greedy decoding, but
    a batch no longer computes for sentences that have ended: with sentences of different output
    lengths most of the batch's steps used to be spent on padding.
    """
    import torch

    model_kwargs.pop("synced_gpus", None)
    model_kwargs.pop("streamer", None)
    pad = generation_config._pad_token_tensor
    batch = input_ids.shape[0]
    rows = torch.arange(batch, device=input_ids.device)
    done_rows: dict[int, torch.Tensor] = {}
    outputs = model._prefill(input_ids, generation_config, model_kwargs)
    while True:
        model_kwargs = model._update_model_kwargs_for_generation(outputs, model_kwargs, is_encoder_decoder=True)
        logits = outputs.logits[:, -1].to(copy=True, dtype=torch.float32, device=input_ids.device)
        del outputs
        next_tokens = torch.argmax(logits_processor(input_ids, logits), dim=-1)
        input_ids = torch.cat([input_ids, next_tokens[:, None]], dim=-1)
        done = stopping_criteria(input_ids, None)
        if bool(done.any()):
            for i in done.nonzero().flatten().tolist():
                done_rows[int(rows[i])] = input_ids[i]
            keep = (~done).nonzero().flatten()
            if keep.numel() == 0:
                break
            _select_rows(model_kwargs, keep, input_ids.shape[0])
            for processor in logits_processor:
                if hasattr(processor, "select_rows"):
                    processor.select_rows(keep)
            input_ids, rows = input_ids[keep], rows[keep]
        model_inputs = model.prepare_inputs_for_generation(
            input_ids, next_sequence_length=1 if model_kwargs.get("use_cache") else None, **model_kwargs
        )
        outputs = model(**model_inputs, return_dict=True)
    width = max(len(seq) for seq in done_rows.values())
    fill = int(pad) if pad is not None else 0
    result = torch.full((batch, width), fill, dtype=input_ids.dtype, device=input_ids.device)
    for i, seq in done_rows.items():
        result[i, : len(seq)] = seq
    return result


def transformers_attention(engine: Any, sources: Sequence[str], translations: Sequence[str]) -> list:
    """:meth:`TransformersEngine.attention` of ``engine`` (kept for callers of the old function)."""
    return TransformersEngine.attention(engine, sources, translations)


ENGINES: dict[str, type[Engine]] = {"transformers": TransformersEngine}
_THREADS_SET = False


def wanted_threads() -> int:
    """CPU threads for an engine: ``MT_THREADS`` if set, else all cores (both engines read this)."""
    return env_count("MT_THREADS") or os.cpu_count() or 1


def env_count(name: str) -> int | None:
    """A count (>= 1) from environment variable ``name``; None when unset or blank, ConfigError
    naming the variable when it is not a whole number >= 1."""
    env = os.environ.get(name, "").strip()
    if not env:
        return None
    try:
        n = int(env)
    except ValueError:
        raise ConfigError(f"{name}={env!r} is not a whole number") from None
    if n < 1:
        raise ConfigError(f"{name} must be >= 1, not {n}")
    return n


def configure_threads() -> int:
    """torch CPU threads: ``MT_THREADS`` if set, else all cores. Done once per process."""
    global _THREADS_SET
    import torch

    n = wanted_threads()
    if not _THREADS_SET:
        torch.set_num_threads(n)
        _THREADS_SET = True
    return torch.get_num_threads()


GPU_DEVICE_NODES = ("/dev/nvidia0", "/dev/nvidiactl", "/proc/driver/nvidia/gpus",  # NVIDIA
                    "/dev/dxg",  # WSL2
                    "/dev/kfd")  # AMD ROCm (torch.cuda on ROCm builds)


def _gpu_device_present() -> bool:
    """True when the kernel shows a GPU torch could use (then torch is asked whether it works)."""
    return any(os.path.exists(p) for p in GPU_DEVICE_NODES) or bool(glob.glob("/dev/nvhost-*"))  # + Jetson


def pick_device(device: str | None = None) -> str:
    """``device`` or ``$MT_DEVICE`` or auto (cuda when available, else cpu); validated.

    On a machine with no GPU device node, auto is "cpu" without importing torch: that import
    is ~0.8 s of every CLI start, and the CTranslate2 engine does not need torch at all."""
    device = (device or os.environ.get("MT_DEVICE") or "auto").strip().lower()
    if device == "auto" and not _gpu_device_present():
        return "cpu"
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {device!r} (use auto, cpu or cuda[:N])") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but no CUDA GPU is available")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r} is not supported (use auto, cpu or cuda[:N])")
    return device


def load_engine(
    model: str | ModelSpec | None = None,
    *,
    engine: str | None = None,
    device: str | None = None,
    settings: DecodingSettings | None = None,
) -> Engine:
    """Load a model (None = default, registry id[@rev], local dir or a ModelSpec) into an engine.

    ``engine`` (else ``$MT_ENGINE``, else "auto"): "transformers", "ctranslate2" or
    "ctranslate2:COMPUTE_TYPE" (e.g. ``ctranslate2:float32``), or "auto": the model's ``engine=``
    in models.txt, else the fastest engine for its family on this device (mt.ct2.auto_engine:
    ctranslate2 int8 on CPU). An engine chosen automatically that cannot run the model (e.g.
    conversion not supported) falls back to transformers with a logged warning; one asked for
    by name raises. Raises ConfigError (bad name/option) or ModelUnavailable (files missing).
    """
    spec = resolve_model(model)
    requested = (engine or os.environ.get("MT_ENGINE") or "auto").strip().lower()
    name, _, variant = requested.partition(":")
    automatic = name == "auto"
    dev = pick_device(device)
    if automatic:
        if spec.engine != "auto":
            name = spec.engine
        else:
            from .ct2 import auto_engine

            name = auto_engine(spec, dev)
    if name == "ctranslate2" and name not in ENGINES:
        from .ct2 import CTranslate2Engine

        ENGINES[name] = CTranslate2Engine
    if name not in ENGINES:
        raise ConfigError(f"unknown or unavailable engine {name!r} (available: auto, {', '.join(dict.fromkeys([*ENGINES, 'ctranslate2']))})")
    if variant and name != "ctranslate2":
        raise ConfigError(f"engine {requested!r}: only ctranslate2 takes a compute type (ctranslate2:int8, ...)")
    if dev == "cpu" and name == "transformers":
        configure_threads()  # torch's; CTranslate2 takes its thread counts when the model loads
    model_dir = locate(spec)
    kwargs: dict[str, Any] = {"compute_type": variant} if variant else {}
    try:
        return ENGINES[name](spec, model_dir, device=dev, settings=settings, **kwargs)
    except Exception as e:
        if not automatic or name == "transformers":
            raise
        log.warning("engine %s cannot run model %s (%s); falling back to transformers", name, spec.ref, e)
        if dev == "cpu":
            configure_threads()
        return TransformersEngine(spec, model_dir, device=dev, settings=settings)
