"""The CTranslate2 conversion cache: each model converted once per version and quantisation.

``ctranslate2.converters.TransformersConverter`` writes into a temporary folder beside the final
one, which is renamed into place only when complete (marker file ``mt-ct2.json`` written last):
a reader never sees half a model. A file lock (filelock) serialises conversions of the same model
between processes, so a second process waits and reuses the first one's result. After a
conversion, entries of local folders that can no longer be used are pruned; hub models are kept.
The folder is ``$MT_CT2_DIR``, else ``$XDG_CACHE_HOME/mt-vi-en/ct2``, else ``~/.cache/mt-vi-en/ct2``;
entries are ``<model>-<version>-<quantisation>/`` and can be deleted by hand at any time.
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
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from ..errors import ConfigError
from ..settings import cache_home, current
from ..models import ModelSpec

log = logging.getLogger(__name__)

MARKER = "mt-ct2.json"  # written last into a finished conversion
COMPUTE_TYPES = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")
_ALIASES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "half": "float16", "float": "float32"}


class ConversionError(ConfigError):
    """The model cannot be converted to (or loaded as) a CTranslate2 model."""


def available() -> bool:
    """True when the ctranslate2 package can be imported."""
    try:
        import ctranslate2  # noqa: F401
    except Exception:  # ImportError, or a broken binary wheel
        return False
    return True


def default_compute_type(device: str) -> str:
    return "float16" if device.startswith("cuda") else "int8"


def resolve_compute_type(requested: str | None, device: str) -> str:
    """``requested``, else the settings' (MT_CT2_COMPUTE_TYPE), else the device default; validated."""
    value = (requested or current().ct2_compute_type or "auto").strip().lower()
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


def cache_root(explicit: str | Path | None = None) -> Path:
    """``explicit``, else the settings' ct2_dir (MT_CT2_DIR), else ``$XDG_CACHE_HOME/mt-vi-en/ct2``,
    else ``~/.cache/mt-vi-en/ct2``."""
    explicit = explicit or current().ct2_dir
    if explicit:
        return Path(explicit).expanduser()
    return cache_home() / "ct2"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"


def conversion_key(spec: ModelSpec, model_dir: Path, version: str, quantization: str) -> str:
    """Folder name of a conversion: ``<safe model name>-<version>-<quantisation>``."""
    name = Path(model_dir).name if spec.path is not None else spec.id.replace("/", "--")
    return f"{_safe(name)}-{_safe(version.replace(':', '-'))}-{quantization}"


def is_converted(path: Path) -> bool:
    return (path / MARKER).is_file() and (path / "model.bin").is_file()


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
    start = time.perf_counter()

    def convert_into(tmp: Path) -> None:
        log.info("converting %s to CTranslate2 (%s) into %s (once per model version)", spec.ref, quantization, final)
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

    if not build_once(final, is_converted, convert_into):
        return final  # converted by another process while this one waited
    _prune(root, final, Path(model_dir), quantization)
    log.info("converted %s in %.1f s", spec.ref, time.perf_counter() - start)
    return final


def build_once(final: Path, complete: Callable[[Path], bool], build: Callable[[Path], None], *,
                lock_timeout: float = -1) -> bool:
    """Build the folder ``final`` once across threads and processes (the CTranslate2 conversions of
    the translation model and of e5): ``build(tmp)`` fills a temporary folder beside it, renamed into
    place whole, under a file lock; a process that died building leaves only a temporary folder,
    removed by the next builder. False when ``final`` was already complete (``complete(final)``).
    Raises what ``build`` raises, OSError when the folder cannot be made, filelock.Timeout (an
    OSError) past ``lock_timeout`` seconds (-1: wait for good)."""
    if complete(final):
        return False
    root = final.parent
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{final.name}.lock"), timeout=lock_timeout):
        if complete(final):  # built by another process while this one waited
            return False
        for stale in root.glob(f".{final.name}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=root))
        try:
            build(tmp)
            if final.exists():  # an incomplete folder: replace it
                trash = root / f".{final.name}.{os.getpid()}.old.tmp"
                os.rename(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return True


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
