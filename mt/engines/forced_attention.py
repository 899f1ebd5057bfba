"""Teacher-forced cross-attention of a transformers seq2seq model (TransformersEngine's word links).

The translation is forced as decoder input in one forward pass with ``output_attentions=True``,
so a cached translation can be linked without decoding again, and with exactly the model that
produced it. Row *k* of the result is the decoder step that predicts target piece *k*, as at
generation time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from .attention import alignment_choice

if TYPE_CHECKING:
    import numpy as np

ATTENTION_BUDGET_BYTES = 256 << 20  # attention tensors of one teacher-forced batch (all layers)
MAX_ATTENTION_BATCH = 64


def attention_batches(lengths: list[int], bytes_per_cell: int) -> list[list[int]]:
    """Longest first; a batch's padded attention tensors stay within ATTENTION_BUDGET_BYTES."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        n = max(1, lengths[i])
        w = max(width, n)
        if current and (len(current) >= MAX_ATTENTION_BATCH or (len(current) + 1) * w * w * bytes_per_cell > ATTENTION_BUDGET_BYTES):
            batches.append(current)
            current, w = [], n
        current.append(i)
        width = w
    if current:
        batches.append(current)
    return batches


def model_shape(model) -> tuple[int, int, int]:
    """(decoder layers, decoder heads, encoder layers) of a seq2seq model config."""
    cfg = model.config
    n_layers = getattr(cfg, "decoder_layers", None) or getattr(cfg, "num_decoder_layers", None) or cfg.num_layers
    n_heads = getattr(cfg, "decoder_attention_heads", None) or cfg.num_heads
    n_enc = getattr(cfg, "encoder_layers", None) or getattr(cfg, "num_layers", None) or n_layers
    return int(n_layers), int(n_heads), int(n_enc)


def decoder_lead(engine: Any) -> list[int]:
    """Decoder input before the first target piece, as ``generate`` builds it for this engine:
    the decoder start token, then the forced BOS (target language code) when there is one."""
    model = engine.model
    gen, cfg = model.generation_config, model.config
    family_kwargs = getattr(engine, "_gen_kwargs", {}) or {}
    start = family_kwargs.get("decoder_start_token_id")
    if start is None:
        start = gen.decoder_start_token_id if gen.decoder_start_token_id is not None else cfg.decoder_start_token_id
    forced_bos = family_kwargs.get("forced_bos_token_id", getattr(gen, "forced_bos_token_id", None))
    return [int(start)] + ([int(forced_bos)] if forced_bos is not None else [])


def forced_cross_attention(
    engine: Any,
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    *,
    layers: Sequence[int] | None = None,
    head: int | None | str = "default",
) -> list[np.ndarray]:
    """Teacher-forced cross-attention: for each sentence, a float32 array (target pieces, source
    positions) -- row t is the decoder step that predicts ``tgt_ids[t]``, columns are all of
    ``src_ids`` (EOS and language codes included).

    ``src_ids``: the encoder input (``engine._encode``); ``tgt_ids``: the target pieces without
    the decoder lead or EOS. ``layers``/``head``: default :func:`alignment_choice`; ``head=None``
    means the mean over heads, ``head="all"`` returns (layers, heads, T, S) per sentence instead
    (for benchmarks/wordlinks.py). Takes the engine lock.
    """
    import numpy as np
    import torch

    model = engine.model
    cfg = model.config
    n_layers, n_heads, n_enc = model_shape(model)
    if layers is None or head == "default":
        default_layers, default_head = alignment_choice(engine.spec.family, n_layers, n_heads, getattr(engine, "config", None))
        layers = default_layers if layers is None else [layer % n_layers for layer in layers]
        head = default_head if head == "default" else head
    lead = decoder_lead(engine)
    eos = cfg.eos_token_id if isinstance(cfg.eos_token_id, int) else 0
    pad = cfg.pad_token_id if cfg.pad_token_id is not None else eos
    bytes_per_cell = 4 * n_heads * (n_enc + 3 * n_layers)
    lengths = [max(len(s), len(t) + len(lead)) for s, t in zip(src_ids, tgt_ids)]
    out: list[np.ndarray] = [np.zeros((0, 0), dtype=np.float32)] * len(src_ids)
    with engine._lock:
        impl = getattr(cfg, "_attn_implementation", None)
        eager = impl not in (None, "eager")
        if eager:  # sdpa/flash kernels return no attention weights
            model.set_attn_implementation("eager")
        try:
            for batch in attention_batches(lengths, bytes_per_cell):
                S = max(max(len(src_ids[k]) for k in batch), 1)
                seqs = [lead + list(tgt_ids[k]) for k in batch]  # the EOS step is not needed
                T = max(len(q) for q in seqs)
                input_ids = torch.full((len(batch), S), pad, dtype=torch.long)
                attention_mask = torch.zeros((len(batch), S), dtype=torch.long)
                decoder_ids = torch.full((len(batch), T), pad, dtype=torch.long)
                decoder_mask = torch.zeros((len(batch), T), dtype=torch.long)
                for r, k in enumerate(batch):
                    input_ids[r, : len(src_ids[k])] = torch.tensor(list(src_ids[k]), dtype=torch.long)
                    attention_mask[r, : len(src_ids[k])] = 1
                    decoder_ids[r, : len(seqs[r])] = torch.tensor(seqs[r], dtype=torch.long)
                    decoder_mask[r, : len(seqs[r])] = 1
                with torch.inference_mode():
                    result = model(
                        input_ids=input_ids.to(engine.device),
                        attention_mask=attention_mask.to(engine.device),
                        decoder_input_ids=decoder_ids.to(engine.device),
                        decoder_attention_mask=decoder_mask.to(engine.device),
                        output_attentions=True,
                        use_cache=False,
                        return_dict=True,
                    )
                    if head == "all":
                        cross = torch.stack(list(result.cross_attentions), dim=1).float()  # (B, L, H, T, S)
                    else:
                        cross = torch.stack([result.cross_attentions[layer] for layer in layers]).float().mean(dim=0)
                        cross = cross.mean(dim=1) if head is None else cross[:, int(head)]  # (B, T, S)
                    cross = cross.cpu().numpy()
                del result
                for r, k in enumerate(batch):
                    n_t, n_s = len(tgt_ids[k]), len(src_ids[k])
                    rows = slice(len(lead) - 1, len(lead) - 1 + n_t)  # row i predicts decoder input i + 1
                    out[k] = np.ascontiguousarray(cross[r][..., rows, :n_s], dtype=np.float32)
        finally:
            if eager:
                model.set_attn_implementation(impl)
    return out
