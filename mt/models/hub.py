"""Where a model's files are: the Hugging Face cache, a download, or a clear offline error.

Hub models are looked up in the Hugging Face cache first and loaded from there without any
network access; only when they are not cached, and the hub is not switched off
(``HF_HUB_OFFLINE=1``), one short probe decides whether to download them, so that an offline
machine gets one clear :class:`ModelUnavailable` within seconds instead of minutes of retries.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelUnavailable
from ..settings import current, hub_offline
from .registry import ModelSpec, load_registry

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
# What `download` fetches: tokenizer, configs and one weight format (not TF/Flax/ONNX/Rust copies).
_DOWNLOAD_PATTERNS = ["*.json", "*.spm", "*.model", "*.txt", "sentencepiece*"]

def _offline_env() -> bool:
    return hub_offline()  # HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read in mt.settings


def hub_cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_snapshot(spec: ModelSpec) -> Path | None:
    """The cached snapshot folder of a hub model, if config and weights are there (no network)."""
    if spec.path is not None:
        return spec.path if (spec.path / "config.json").is_file() else None
    from huggingface_hub import try_to_load_from_cache

    try:
        cfg = try_to_load_from_cache(spec.id, "config.json", revision=spec.revision)
    except Exception:  # malformed id or revision: not cached
        return None
    if not isinstance(cfg, str):
        return None
    snap = Path(cfg).parent
    if not any((snap / w).exists() for w in _WEIGHT_FILES):
        return None
    return snap


def is_cached(spec: ModelSpec) -> bool:
    """True when the model can be loaded without the network (local dir or complete cache)."""
    return cached_snapshot(spec) is not None


def _unavailable(spec: ModelSpec, why: str) -> ModelUnavailable:
    return ModelUnavailable(
        f"model {spec.ref} is not downloaded (not in the Hugging Face cache {hub_cache_dir()}) "
        f"and cannot be fetched now: {why}. On a machine with internet access run "
        f"`mt download {spec.ref}` and copy the cache folder over (or point HF_HOME at it), "
        f"or pass a local model directory with `--model /path/to/dir`."
    )


def hub_timeout() -> float:
    return current().hub_timeout  # MT_HUB_TIMEOUT, at least 0.5 (mt.settings)


def probe_hub(spec: ModelSpec, timeout: float | None = None) -> None:
    """One request, no retries: raise ModelUnavailable unless the hub serves this model."""
    if _offline_env():
        raise _unavailable(spec, "offline mode is on (HF_HUB_OFFLINE=1)")
    from huggingface_hub import get_token, hf_hub_url
    from huggingface_hub.utils import get_session

    url = hf_hub_url(spec.id, "config.json", revision=spec.revision)
    # Not build_hf_headers(): it may first fetch telemetry from the hub with its own 3 s timeout.
    token = get_token()
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        resp = get_session().head(url, headers=headers, timeout=timeout or hub_timeout(), follow_redirects=False)
    except Exception as e:  # DNS failure, refused, timeout, proxy error...
        reason = str(e).strip() or type(e).__name__
        raise _unavailable(spec, f"the model hub cannot be reached ({reason})") from None
    if resp.status_code in (401, 403):
        raise ModelUnavailable(
            f"model {spec.ref}: the hub refuses access (HTTP {resp.status_code}); the model may be gated: "
            f"accept its terms on huggingface.co and log in (`hf auth login`), or use --model /path/to/dir."
        )
    if resp.status_code == 404:
        raise ModelUnavailable(f"model {spec.ref} was not found on the hub (HTTP 404): check the id and revision.")
    if resp.status_code >= 400:
        raise _unavailable(spec, f"the hub answered HTTP {resp.status_code}")


def download(spec: ModelSpec) -> Path:
    """Fetch a hub model into the Hugging Face cache (for `mt download`); return its folder."""
    if spec.path is not None:
        if not (spec.path / "config.json").is_file():
            raise ModelUnavailable(f"{spec.path} is not a model directory: it has no config.json")
        return spec.path
    probe_hub(spec)
    from huggingface_hub import HfApi, snapshot_download

    try:
        files = HfApi().list_repo_files(spec.id, revision=spec.revision)
        weights = [f for f in files if f.endswith(".safetensors") or f == "model.safetensors.index.json"]
        if not weights:
            weights = [f for f in files if f.startswith("pytorch_model") and f.endswith((".bin", ".json"))]
        folder = snapshot_download(
            spec.id, revision=spec.revision, allow_patterns=_DOWNLOAD_PATTERNS + weights
        )
    except Exception as e:
        raise ModelUnavailable(f"could not download model {spec.ref}: {e}") from None
    return Path(folder)


def locate(spec: ModelSpec) -> Path:
    """A local folder holding the model's files, downloading only when needed and possible.

    Order: local directory; complete snapshot in the HF cache (no network at all); otherwise,
    unless HF_HUB_OFFLINE is set, one short probe of the hub (``MT_HUB_TIMEOUT``, default 5 s,
    no retries) and a download. Every failure is one ModelUnavailable with what to do.
    """
    if spec.path is not None:
        if not (spec.path / "config.json").is_file():
            raise ModelUnavailable(f"model directory {spec.path} has no config.json")
        return spec.path
    snap = cached_snapshot(spec)
    if snap is not None:
        return snap
    return download(spec)


def model_status_rows(registry: list[ModelSpec] | None = None) -> list[dict]:
    """One row per registry model for `mt models`: id, family, license, size, published scores and their source."""
    reg = registry if registry is not None else load_registry()
    return [
        {
            "id": s.id,
            "family": s.family,
            "license": s.license,
            "default": i == 0,
            "cached": is_cached(s),
            "tone": s.tone,
            "revision": s.revision or "",
            "comment": s.comment,
            "size": s.size,
            "published": s.published,  # cited in models.txt, never measured here
            "score_source": s.score_source,
        }
        for i, s in enumerate(reg)
    ]
