"""CTranslate2 engine: the Hugging Face model converted once, int8 on CPU, float16 on CUDA.

Conversion. ``ctranslate2.converters.TransformersConverter(model_dir).convert(out, quantization=q)``
runs once per model version and quantisation; the result is kept in
``$MT_CT2_DIR`` (default ``$XDG_CACHE_HOME/mt-vi-en/ct2``, else ``~/.cache/mt-vi-en/ct2``) as
``<model>-<version>-<quantisation>/``, where version is the engine's ``model_version`` (pinned
revision, hub snapshot commit, or a content hash of a local folder). The converter writes into a
temporary folder beside it, which is renamed into place only when complete (with a marker file,
``mt-ct2.json``, written last): a reader never sees half a model. A lock file serialises
conversions of the same model between processes, so a second process waits and then reuses
the first one's result instead of converting again. After a conversion, entries of local
folders that can no longer be used (folder deleted, or an older version of the folder just
converted) are removed; hub models are kept. Entries can also be deleted by hand at any time.

Decoding is the same as :class:`mt.translate.TransformersEngine`'s: the same tokenizer and
``_encode`` (ids -> pieces), the same batches (``Engine.translate`` / ``batches_by_tokens``), the
same beam, the same output cap (``min(a × source tokens + b, positions - 1)`` new tokens per
sentence, EOS and forced language code included), the model's generation config
(``repetition_penalty``, ``no_repeat_ngram_size``, ``length_penalty``, ``bad_words_ids``), the
tokenizer's decode (special tokens skipped) and ``strip_prefix``. CTranslate2 takes one
``max_decoding_length`` per call: the batch runs to its longest sentence's cap and each output is
cut at its own cap, which for greedy decoding is exactly what a per-sentence cap gives (a
greedy prefix does not depend on the cap), so greedy translations do not depend on batch
composition. Family specifics:

* marian: CTranslate2's Marian loader drops the last vocabulary entry, assuming it is ``<pad>``
  (the OPUS-MT convention, followed by :func:`mt.testing.build_tiny_marian`); a Marian model
  whose ``<pad>`` is not last is refused (and ``auto`` falls back to transformers).
* nllb, m2m100: ``target_prefix=[[tgt_lang code]]`` (``forced_bos_token_id`` in transformers);
  the code is stripped from the output.
* mbart: transformers is driven with ``decoder_start_token_id = tgt_lang code``; the converted
  model's ``decoder_start_token`` is cleared so that CTranslate2 starts from the prefix
  ``[tgt_lang code]`` in the same way.
* t5: nothing special (task prefix and ``strip_prefix`` are handled by :class:`Engine`).

Precision: ``compute_type`` argument, else ``$MT_CT2_COMPUTE_TYPE``, else int8 on CPU and float16
on CUDA (``load_engine(engine="ctranslate2:float32")`` passes one). The model is converted with
the same quantisation. It is part of the cache namespace (``ctranslate2-int8``), so int8 and
float32 translations never share cache entries.

Measured agreement with transformers on the random-weight test model (30 IWSLT sentences):
float32 greedy: identical tokens (tests/test_ct2.py). float32 beam 4: identical for 28/30 when
the model has no ``repetition_penalty`` (the two libraries normalise finished hypotheses
slightly differently); with the test model's ``repetition_penalty=3`` only 1/30, because in beam
search transformers applies the penalty to log-probabilities and CTranslate2 to logits. int8
changes the outputs of a random model (flat distributions) but not its speed profile.

Word links (``attention``): teacher-forced, ``translate_batch(source, target_prefix=<lead +
translation pieces>, return_attention=True, beam_size=1, max_decoding_length=len(prefix))``;
for a translation this engine has just produced (same source pieces, and the translation
re-tokenises to the generated pieces) the attention recorded while decoding is used instead
(``return_attention`` costs ~3 % of decoding; the forced pass costs as much as decoding).
CTranslate2 returns the cross-attention of its alignment layer and heads, fixed at conversion:
the last decoder layer (``alignment_layer=-1``); head 0 for marian (the converter's default
``alignment_heads=1``: the guided-alignment head of OPUS-MT transformer-align models), the mean
over all heads for the other families (``alignment_heads`` set to the number of heads), as
:func:`mt.wordalign.alignment_choice` does by default for transformers. ``MT_ALIGN_LAYER`` /
``MT_ALIGN_HEAD`` are not applied to this engine (a warning says so).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, Sequence

from .errors import ConfigError, ModelUnavailable
from .models import ModelSpec
from .pieces import MarianPieces
from .translate import DecodingSettings, Engine, TransformersEngine, batches_by_tokens, env_count

log = logging.getLogger(__name__)

FAMILIES = ("marian", "t5", "mbart", "nllb", "m2m100")  # every family CTranslate2 can convert
MARKER = "mt-ct2.json"  # written last into a finished conversion
COMPUTE_TYPES = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")
_ALIASES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "half": "float16", "float": "float32"}
# Families whose target language code is forced as the first target token (prefix) / is the start token.
_PREFIX_FAMILIES = ("nllb", "m2m100", "mbart")


class ConversionError(ConfigError):
    """The model cannot be converted to (or loaded as) a CTranslate2 model."""


def available() -> bool:
    """True when the ctranslate2 package can be imported."""
    try:
        import ctranslate2  # noqa: F401
    except Exception:  # ImportError, or a broken binary wheel
        return False
    return True


def auto_engine(spec: ModelSpec, device: str) -> str:
    """The engine ``auto`` picks: ctranslate2 on CPU for every family it converts (int8 measured
    2.3× faster than transformers fp32 greedy, 6.7× at beam 4, at about a quarter of the memory:
    benchmarks/speed.py), when installed; transformers otherwise. On CUDA transformers: the GPU speed of the two was not measured here (choose
    ``--engine ctranslate2`` or ``engine=ctranslate2`` in models.txt to use it there)."""
    if device.startswith("cuda") or spec.family not in FAMILIES:
        return "transformers"
    return "ctranslate2" if available() else "transformers"


def default_compute_type(device: str) -> str:
    return "float16" if device.startswith("cuda") else "int8"


def resolve_compute_type(requested: str | None, device: str) -> str:
    """``requested``, else ``$MT_CT2_COMPUTE_TYPE``, else the device default; validated."""
    value = (requested or os.environ.get("MT_CT2_COMPUTE_TYPE") or "auto").strip().lower()
    value = _ALIASES.get(value, value)
    if value in ("", "auto", "default"):
        value = default_compute_type(device)
    if value not in COMPUTE_TYPES:
        raise ConfigError(f"unknown CTranslate2 compute type {value!r} (use one of: {', '.join(COMPUTE_TYPES)})")
    import ctranslate2

    kind = "cuda" if device.startswith("cuda") else "cpu"
    try:
        supported = ctranslate2.get_supported_compute_types(kind)
    except Exception as e:  # no CUDA driver...
        raise ConfigError(f"CTranslate2 cannot run on {device}: {e}") from None
    if value not in supported:
        raise ConfigError(
            f"CTranslate2 compute type {value!r} is not supported on {device} here "
            f"(supported: {', '.join(sorted(supported))})"
        )
    return value


def cache_root() -> Path:
    """``$MT_CT2_DIR``, else ``$XDG_CACHE_HOME/mt-vi-en/ct2``, else ``~/.cache/mt-vi-en/ct2``."""
    explicit = os.environ.get("MT_CT2_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and os.path.isabs(xdg):
        base = Path(xdg)
    else:
        try:
            base = Path.home() / ".cache"
        except (RuntimeError, KeyError):
            base = Path(tempfile.gettempdir())
    return base / "mt-vi-en" / "ct2"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"


def conversion_key(spec: ModelSpec, model_dir: Path, version: str, quantization: str) -> str:
    """Folder name of a conversion: ``<safe model name>-<version>-<quantisation>``."""
    name = Path(model_dir).name if spec.path is not None else spec.id.replace("/", "--")
    return f"{_safe(name)}-{_safe(version.replace(':', '-'))}-{quantization}"


def is_converted(path: Path) -> bool:
    return (path / MARKER).is_file() and (path / "model.bin").is_file()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _check_marian_vocabulary(model_dir: Path) -> None:
    """CTranslate2's Marian loader drops the last vocabulary entry and the last weight row,
    assuming they are ``<pad>`` (as in every OPUS-MT model); refuse models where they are not."""
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConversionError(f"cannot read {model_dir}/config.json: {e}") from None
    pad, size = cfg.get("pad_token_id"), cfg.get("decoder_vocab_size") or cfg.get("vocab_size")
    if pad is not None and size is not None and int(pad) != int(size) - 1:
        raise ConversionError(
            f"Marian model {model_dir}: <pad> is token {pad}, not the last one ({int(size) - 1}); "
            "the CTranslate2 converter only handles the OPUS-MT layout (<pad> last)"
        )


def _convert(model_dir: Path, out: Path, quantization: str, family: str) -> None:
    """Run the CTranslate2 converter into ``out`` (an existing empty folder)."""
    import numpy as np
    from ctranslate2.converters import TransformersConverter
    from transformers.utils import logging as hf_logging

    class Converter(TransformersConverter):
        def load_model(self, model_class, model_name_or_path, **kwargs):
            model = super().load_model(model_class, model_name_or_path, **kwargs)
            if getattr(model.config, "model_type", "") == "mbart" and not hasattr(model.config, "normalize_before"):
                # The MBart loader reads BartConfig.normalize_before, which transformers 5 configs no
                # longer have: mBART layers are pre-norm, with a layer norm on the embeddings.
                model.config.normalize_before = True
                model.config.normalize_embedding = True
            return model

        def _load(self):  # the spec as converted, with this project's alignment heads
            spec = super()._load()
            decoder = getattr(spec, "decoder", None)
            if family != "marian" and decoder is not None and hasattr(decoder, "alignment_heads"):
                decoder.alignment_heads = np.dtype("int16").type(int(decoder.num_heads))  # mean of all heads
            return spec

    if family == "marian":
        _check_marian_vocabulary(model_dir)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        Converter(str(model_dir)).convert(str(out), quantization=quantization, force=True)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if family == "mbart":  # start from the target language code, as transformers does here
        cfg["decoder_start_token"] = None
    for key in ("bos_token", "eos_token", "unk_token"):  # the runtime wants strings (a tokenizer may lack <s>)
        if cfg.get(key, "") is None:
            cfg[key] = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}[key]
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def ensure_converted(
    spec: ModelSpec,
    model_dir: Path,
    version: str,
    quantization: str,
    root: Path | None = None,
) -> Path:
    """The CTranslate2 conversion of a model, converting it first when not cached.

    Atomic: converted into a temporary folder next to the final one, marker written last, then
    renamed. Raises ConversionError (the converter's message) when conversion fails.
    """
    root = Path(root) if root is not None else cache_root()
    key = conversion_key(spec, model_dir, version, quantization)
    final = root / key
    if is_converted(final):
        return final
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConversionError(f"cannot create the CTranslate2 model cache {root}: {e}") from None
    with _locked(root / f".{key}.lock"):
        if is_converted(final):  # converted by another process while we waited
            return final
        for stale in root.glob(f".{key}.*.tmp"):  # left by a process that died converting
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=root))
        try:
            log.info("converting %s to CTranslate2 (%s) into %s (once per model version)", spec.ref, quantization, final)
            start = time.perf_counter()
            try:
                _convert(Path(model_dir), tmp, quantization, spec.family)
            except ConversionError:
                raise
            except Exception as e:  # unsupported architecture, activation, vocabulary...
                why = re.sub(r"\s*\(supported configurations are:.*\)\s*$", "", str(e), flags=re.S)
                raise ConversionError(f"CTranslate2 cannot convert model {spec.ref}: {type(e).__name__}: {why}") from None
            import ctranslate2

            marker = {
                "model": spec.ref,
                "model_dir": str(model_dir),
                "local": spec.path is not None,
                "family": spec.family,
                "version": version,
                "quantization": quantization,
                "ctranslate2": ctranslate2.__version__,
                "seconds": round(time.perf_counter() - start, 2),
                "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            (tmp / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
            if final.exists():  # an incomplete folder (no marker): replace it
                trash = root / f".{key}.{os.getpid()}.old.tmp"
                os.rename(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    _prune(root, final, Path(model_dir), quantization)
    log.info("converted %s in %.1f s", spec.ref, time.perf_counter() - start)
    return final


def _prune(root: Path, keep: Path, model_dir: Path, quantization: str) -> None:
    """Delete conversions of local folders that can no longer be used: folder gone (temporary
    models of tests and benchmarks), or an older version of the folder just converted. Hub
    models (keyed by commit) are kept. Runs only after a conversion, so rarely."""
    for entry in root.iterdir():
        if entry == keep or entry.name.startswith(".") or not (entry / MARKER).is_file():
            continue
        try:
            info = json.loads((entry / MARKER).read_text(encoding="utf-8"))
            source = Path(info["model_dir"])
            stale = bool(info.get("local")) and (
                not (source / "config.json").is_file()
                or (source == model_dir and info.get("quantization") == quantization)
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if stale:
            log.info("removing unusable CTranslate2 conversion %s", entry)
            trash = root / f".{entry.name}.{os.getpid()}.old.tmp"
            try:
                os.rename(entry, trash)  # atomically out of sight, then deleted
            except OSError:
                continue
            shutil.rmtree(trash, ignore_errors=True)
            with contextlib.suppress(OSError):
                (root / f".{entry.name}.lock").unlink()


def _model_configs(model_dir: Path) -> tuple[dict, Any]:
    """config.json, and the generation settings (generation_config.json, else config.json, as
    transformers derives them), read as JSON: no transformers import on the engine's start."""
    from types import SimpleNamespace

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise ValueError("config.json is not a JSON object")
    gen_path = model_dir / "generation_config.json"
    gen = config
    if gen_path.is_file():
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(gen_path.read_text(encoding="utf-8"))
            gen = loaded if isinstance(loaded, dict) else config
    return config, SimpleNamespace(**gen)


def thread_split(threads: int) -> tuple[int, int]:
    """(batches decoded at once, threads per batch) for ``threads`` CPU threads.

    CTranslate2 runs ``inter_threads`` batches in parallel on one copy of the weights. On the
    2-core machine of benchmarks/speed.py two batches on one thread each decode 2.0× faster
    than one batch on one thread, while one batch on two threads is *slower* than on one
    (int8 GEMMs this small do not split well). Up to 4 batches at once; threads left over go
    to each batch. ``$MT_CT2_INTER_THREADS`` overrides the first number."""
    threads = max(1, threads)
    inter = env_count("MT_CT2_INTER_THREADS") or min(threads, 4)
    return inter, max(1, threads // inter)


def _threads() -> int:
    from .translate import wanted_threads

    return wanted_threads()


class CTranslate2Engine(Engine):
    """CTranslate2 translator over the converted model; the HF tokenizer on both ends."""

    name = "ctranslate2"

    def __init__(
        self,
        spec: ModelSpec,
        model_dir: Path,
        *,
        device: str = "cpu",
        compute_type: str | None = None,
        cache_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(spec, model_dir, device=device, **kwargs)
        if spec.family not in FAMILIES:
            raise ConversionError(f"model family {spec.family!r} is not supported by the CTranslate2 engine")
        try:
            import ctranslate2
        except Exception as e:
            raise ConfigError(f"the ctranslate2 engine is not available ({e}); install ctranslate2 or use --engine transformers") from None
        self.compute_type = resolve_compute_type(compute_type, device)
        self.precision = self.compute_type
        self._hf_tokenizer = None
        # Marian: SentencePiece alone on the translation path (no transformers, no torch: a
        # faster start); the transformers tokenizer is loaded when word links first need it.
        self.pieces = MarianPieces(Path(model_dir)) if spec.family == "marian" and MarianPieces.usable(model_dir) else None
        try:
            if self.pieces is None:
                self._hf_tokenizer = self._load_tokenizer()
            config, gen = _model_configs(Path(model_dir))
        except Exception as e:
            hint = "" if spec.path is not None else f" (the cached copy may be incomplete: run `mt download {spec.ref}`)"
            raise ModelUnavailable(f"cannot load model {spec.ref} from {model_dir}: {e}{hint}") from None

        # Same limits as TransformersEngine.
        positions = config.get("max_position_embeddings") or config.get("n_positions") or 512
        tok_max = (self.pieces or self.tokenizer).model_max_length or positions
        self.max_source_tokens = int(min(positions, tok_max if tok_max < 1e9 else positions))
        self.max_target_tokens = int(positions) - 1

        self.ct2_dir = ensure_converted(spec, Path(model_dir), self.model_version, self.compute_type, cache_dir)
        kind, _, index = device.partition(":")
        self.threads = _threads() if kind == "cpu" else 1
        inter, intra = thread_split(self.threads) if kind == "cpu" else (1, 0)
        self.parallel_batches = inter
        try:
            self.translator = ctranslate2.Translator(
                str(self.ct2_dir),
                device=kind,
                device_index=int(index or 0),
                compute_type=self.compute_type,
                inter_threads=inter,
                intra_threads=intra,
            )
        except Exception as e:
            raise ConversionError(f"CTranslate2 cannot load {self.ct2_dir} on {device}: {e}") from None
        # Target piece -> output id: the position in the converted vocabulary is the model's output
        # index, so outputs decode to exactly the ids transformers would produce (the tokenizer's
        # own lookup would turn pieces it does not know, e.g. M2M100's madeupwords, into <unk>).
        self._target_index: dict[str, int] = {}
        for i, piece in enumerate(self._target_vocabulary()):
            self._target_index.setdefault(piece, i)

        # Target language code: a forced first target token (nllb, m2m100) or the start token (mbart).
        self.target_token: str | None = None
        if spec.family in _PREFIX_FAMILIES and spec.tgt_lang:
            lang_id = TransformersEngine._lang_id(self, spec.tgt_lang)  # same lookup, same ConfigError
            self.target_token = self.tokenizer.convert_ids_to_tokens(lang_id)
        # Tokens the cap counts besides the kept text: EOS, and the forced code (not mbart's start token).
        self._forced = 1 if spec.family in ("nllb", "m2m100") and self.target_token else 0
        self._options = self._decoding_options(gen)
        # Cross-attention recorded while translating (return_attention costs ~3 %), so that word
        # links of fresh translations need no second, teacher-forced pass (which costs as much as
        # the translation): (source pieces, translation) -> (generated pieces, rows), least
        # recently used dropped; 0 turns it off.
        self.attention_memo_size = 1024
        self._attention_memo: OrderedDict[tuple, Any] = OrderedDict()
        self._decode_kwargs: dict[str, Any] = {"skip_special_tokens": True}
        if spec.family == "marian":
            self._decode_kwargs["use_source_tokenizer"] = False  # as TransformersEngine

    # -- setup helpers -------------------------------------------------------------------------

    @property
    def tokenizer(self):
        """The transformers tokenizer; for Marian models loaded on first use (word links)."""
        if self._hf_tokenizer is None:
            with self._lock:
                if self._hf_tokenizer is None:
                    self._hf_tokenizer = self._load_tokenizer()
        return self._hf_tokenizer

    def _load_tokenizer(self):
        from transformers import AutoTokenizer

        kwargs: dict[str, Any] = {}
        if self.spec.family in ("mbart", "nllb", "m2m100"):
            kwargs = {"src_lang": self.spec.src_lang, "tgt_lang": self.spec.tgt_lang}
        return AutoTokenizer.from_pretrained(str(self.model_dir), **kwargs)

    def _target_vocabulary(self) -> list[str]:
        for name in ("target_vocabulary.json", "shared_vocabulary.json"):
            path = self.ct2_dir / name
            if path.is_file():
                try:
                    return list(json.loads(path.read_text(encoding="utf-8")))
                except (OSError, ValueError):
                    break
        return []

    def _piece_ids(self, pieces: Sequence[str]) -> list[int]:
        index, tok = self._target_index, self.tokenizer
        return [index[p] if p in index else tok.convert_tokens_to_ids(p) for p in pieces]

    def _decoding_options(self, gen) -> dict[str, Any]:
        """translate_batch options mirroring what ``generate`` takes from the generation config."""
        options: dict[str, Any] = {
            "repetition_penalty": float(getattr(gen, "repetition_penalty", None) or 1.0),
            "no_repeat_ngram_size": int(getattr(gen, "no_repeat_ngram_size", None) or 0),
            "length_penalty": float(1.0 if getattr(gen, "length_penalty", None) is None else gen.length_penalty),
            "min_decoding_length": int(getattr(gen, "min_new_tokens", None) or 0),
            "max_input_length": 0,  # _encode truncates, as for transformers
        }
        suppress = []
        for seq in getattr(gen, "bad_words_ids", None) or []:
            pieces = (self.pieces or self.tokenizer).convert_ids_to_tokens(list(seq))
            # <pad> of Marian is not in the converted vocabulary (never generated): nothing to ban.
            if pieces and all(isinstance(p, str) and p in self._target_index for p in pieces):
                suppress.append(pieces)
        if suppress:
            options["suppress_sequences"] = suppress
        return options

    # -- hooks ---------------------------------------------------------------------------------

    def _encode_ids(self, texts: list[str]) -> list[list[int]]:
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_source_tokens)
        return [list(ids) for ids in enc["input_ids"]]

    def _encode(self, texts: list[str]) -> list[list[str]]:
        if self.pieces is not None and all(MarianPieces.handles(t) for t in texts):
            return [self.pieces.encode(t, self.max_source_tokens) for t in texts]
        return [self.tokenizer.convert_ids_to_tokens(ids) for ids in self._encode_ids(texts)]

    def _decode_texts(self, pieces: list[list[str]]) -> list[str]:
        if self.pieces is not None:
            return [self.pieces.decode(p) for p in pieces]
        return self.tokenizer.batch_decode([self._piece_ids(p) for p in pieces], **self._decode_kwargs)

    def decode_tokens(self, encoded: list[list[str]], settings: DecodingSettings) -> list[list[str]]:
        """Run one batch; the target pieces of each sentence (no language code, no EOS), cut at
        the sentence's own cap."""
        return self._decode(encoded, settings)[0]

    def _decode(self, encoded: list[list[str]], settings: DecodingSettings) -> tuple[list[list[str]], list]:
        """:meth:`decode_tokens`, plus each output's cross-attention rows (None when not recorded)
        for the attention memo. Safe to call from several threads at once: CTranslate2 decodes
        up to ``parallel_batches`` batches in parallel, and nothing here touches shared state."""
        caps = [min(settings.max_new_tokens(len(e)), self.max_target_tokens) for e in encoded]
        # The cap counts EOS (and a forced language code) like max_new_tokens does; CTranslate2's
        # max_decoding_length counts the prefix but not EOS.
        keep = [max(0, cap - 1 - self._forced) for cap in caps]
        prefix = [[self.target_token] for _ in encoded] if self.target_token else None
        results = self.translator.translate_batch(
            [list(e) for e in encoded],
            target_prefix=prefix,
            beam_size=settings.beam,
            num_hypotheses=1,
            max_batch_size=0,
            max_decoding_length=max(1, max(keep) + self._forced),
            return_attention=self.attention_memo_size > 0,
            **self._options,
        )
        out, all_rows = [], []
        for result, n in zip(results, keep):
            pieces = list(result.hypotheses[0]) if result.hypotheses else []
            skip = 0
            if self._forced and pieces and pieces[0] == self.target_token:
                skip = 1  # nllb, m2m100: the forced code (mbart's start code is not returned)
            pieces = pieces[skip : skip + n]
            out.append(pieces)
            all_rows.append(list(result.attention[0][skip : skip + len(pieces)]) if result.attention else None)
        if settings.beam > 1 and len(encoded) > 1 and self.attention_memo_size > 0:
            self._fix_first_rows(encoded, out, all_rows)
        return out, all_rows

    def _fix_first_rows(self, encoded: list[list[str]], pieces: list[list[str]], all_rows: list) -> None:
        """CTranslate2 4.x returns a wrong first attention row from batched beam search (right
        for greedy and for a batch of one): recompute it with one forced step per sentence."""
        todo = [j for j, p in enumerate(pieces) if p and all_rows[j]]
        if not todo:
            return
        lead = [self.target_token] if self.target_token else []
        results = self.translator.translate_batch(
            [list(encoded[j]) for j in todo],
            target_prefix=[lead + pieces[j][:1] for j in todo],
            beam_size=1,
            max_batch_size=0,
            max_input_length=0,
            min_decoding_length=0,
            max_decoding_length=len(lead) + 1,
            return_attention=True,
        )
        for j, result in zip(todo, results):
            if result.attention and len(result.attention[0]) > self._forced:
                all_rows[j][0] = result.attention[0][self._forced]

    def _translate_batch(self, encoded: list[list[str]], settings: DecodingSettings) -> list[str]:
        pieces, all_rows = self._decode(encoded, settings)
        with self._lock:  # the tokenizer and the memo are shared
            texts = self._decode_texts(pieces)
            if self.attention_memo_size > 0:
                for source, out, text, rows in zip(encoded, pieces, texts, all_rows):
                    if rows is not None and out:
                        self._remember(source, self._postprocess(text), out, rows)
        return texts

    def _run_batches(self, batches: list[list[list[str]]], settings: DecodingSettings) -> list[list[str]]:
        """Batches decoded ``parallel_batches`` at a time (CTranslate2 releases the GIL)."""
        if self.parallel_batches <= 1 or len(batches) <= 1:
            return super()._run_batches(batches, settings)
        with ThreadPoolExecutor(max_workers=min(self.parallel_batches, len(batches))) as pool:
            return list(pool.map(lambda batch: self._translate_batch(batch, settings), batches))

    def _remember(self, source: Sequence[str], translation: str, pieces: list[str], rows: list) -> None:
        """Keep what decoding saw: (source pieces, final translation) -> (target pieces, rows)."""
        import numpy as np

        matrix = np.asarray(rows, dtype=np.float32).reshape(len(pieces), len(source))
        memo, key = self._attention_memo, (tuple(source), translation)
        memo[key] = (list(pieces), matrix)
        memo.move_to_end(key)
        while len(memo) > self.attention_memo_size:
            memo.popitem(last=False)

    # -- word links ----------------------------------------------------------------------------

    def forced_attention(self, src_pieces: Sequence[Sequence[str]], tgt_pieces: Sequence[Sequence[str]]) -> list:
        """Teacher-forced cross-attention (alignment layer/heads of the conversion): per sentence
        a float32 array (target pieces, all source positions); row t predicts ``tgt_pieces[t]``.

        ``max_decoding_length=len(prefix)`` (not + 1): the rows of the forced prefix are all that
        is needed, and one decoder position fewer keeps the longest translations within the
        model's positions. Pieces beyond the decoder's positions get zero rows.
        """
        import numpy as np

        lead = [self.target_token] if self.target_token else []
        room = max(0, self.max_target_tokens - len(lead))  # decoder positions: start, lead, pieces
        forced = [list(t)[:room] for t in tgt_pieces]
        out: list = [np.zeros((len(t), len(s)), dtype=np.float32) for s, t in zip(src_pieces, tgt_pieces)]
        todo = [k for k in range(len(forced)) if forced[k] and src_pieces[k]]
        lengths = [max(len(src_pieces[k]), len(forced[k]) + len(lead)) for k in todo]
        max_tokens, max_sentences = self.batch_limits(self.settings.replace(beam=1))
        with self._lock:
            for batch in batches_by_tokens(lengths, max_tokens, max_sentences):
                batch = [todo[b] for b in batch]
                prefixes = [lead + forced[k] for k in batch]
                results = self.translator.translate_batch(
                    [list(src_pieces[k]) for k in batch],
                    target_prefix=prefixes,
                    beam_size=1,
                    max_batch_size=0,
                    max_input_length=0,
                    min_decoding_length=0,
                    max_decoding_length=max(len(p) for p in prefixes),
                    return_attention=True,
                )
                for k, result in zip(batch, results):
                    rows = np.asarray(result.attention[0], dtype=np.float32).reshape(-1, len(src_pieces[k]))
                    # rows follow the hypothesis: it holds nllb/m2m100's forced code, not mbart's start code
                    got = rows[self._forced : self._forced + len(forced[k])]
                    out[k][: len(got)] = got
        return out

    def attention(self, sources: list[str], translations: list[str]) -> list:
        """The engine attention contract (mt.engines.attention): one ``TokenAttention`` per pair.

        Pieces and spans are built as for TransformersEngine (:class:`AttentionRequest`). For a
        translation this engine produced itself (still in its memo) the target pieces are the
        generated ones and the weights those recorded while decoding; otherwise the translation
        is re-tokenised and forced (:meth:`forced_attention`)."""
        from .engines.attention import AttentionRequest, empty_attention, target_ids

        sources, translations = list(sources), list(translations)
        request = AttentionRequest.build(self.spec, sources, translations)
        out = [empty_attention() for _ in sources]
        todo = request.todo
        if not todo:
            return out
        if os.environ.get("MT_ALIGN_LAYER") or os.environ.get("MT_ALIGN_HEAD"):
            log.warning("MT_ALIGN_LAYER/MT_ALIGN_HEAD do not apply to the ctranslate2 engine: it uses the "
                        "last decoder layer, head 0 (marian) or the mean of its heads (other families)")
        tok = self.tokenizer
        special = set(tok.all_special_ids) - {tok.unk_token_id}
        with self._lock:
            src_ids = self._encode_ids(request.model_inputs)
            src_pieces = [tok.convert_ids_to_tokens(ids) for ids in src_ids]
            remembered = [self._attention_memo.get((tuple(src_pieces[k]), translations[i].strip()))
                          for k, i in enumerate(todo)]
        tgt: list = [None] * len(todo)  # per sentence: (target pieces, ids) and the weights
        matrices: list = [None] * len(todo)
        for k, found in enumerate(remembered):
            if found is not None:
                pieces, matrices[k] = found
                tgt[k] = (pieces, self._piece_ids(pieces))
        misses = [k for k in range(len(todo)) if tgt[k] is None]
        if misses:
            with self._lock:
                miss_ids = target_ids(tok, [request.forced_texts[k] for k in misses])
            for k, ids in zip(misses, miss_ids):
                tgt[k] = (tok.convert_ids_to_tokens(ids), ids)
            forced = self.forced_attention([src_pieces[k] for k in misses], [tgt[k][0] for k in misses])
            for k, matrix in zip(misses, forced):
                matrices[k] = matrix
        for k, i in enumerate(todo):
            pieces, ids = tgt[k]
            rows = [r for r, t in enumerate(ids) if t not in special]  # generated specials print nothing
            out[i] = request.token_attention(tok, k, src_ids[k], src_pieces[k], ids, pieces, matrices[k], rows)
        return out
