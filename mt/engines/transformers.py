"""transformers + torch engine: AutoTokenizer / AutoModelForSeq2SeqLM, fp32 on CPU, fp16 on CUDA.

Greedy decoding drops finished sentences from the batch (:func:`_greedy_pruned`, a
``custom_generate`` loop), and each sentence ends at its own length cap whatever it is batched
with (:func:`_sentence_caps_processor`), so a translation does not depend on its batch.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, ModelUnavailable
from ..settings import Settings, current
from ..models import ModelSpec
from .attention import AttentionRequest, TokenAttention, empty_attention, target_ids
from .base import DecodingSettings, Engine
from .forced_attention import forced_cross_attention
from .nbest import transformers_alternatives

log = logging.getLogger(__name__)


class TransformersEngine(Engine):
    """transformers + torch: AutoTokenizer / AutoModelForSeq2SeqLM, fp32 on CPU, fp16 on CUDA."""

    name = "transformers"
    _alternatives_batch = transformers_alternatives  # n-best hook of Engine.alternatives

    def __init__(self, spec: ModelSpec, model_dir: Path, *, device: str = "cpu", config: Settings | None = None,
                 **kwargs: Any) -> None:
        super().__init__(spec, model_dir, device=device, **kwargs)
        self.config = config or current()  # MT_PRUNE_FINISHED, MT_ALIGN_LAYER / MT_ALIGN_HEAD
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
        self.prune_finished = self.config.prune_finished
        eos = self.model.generation_config.eos_token_id
        eos = self.model.config.eos_token_id if eos is None else eos
        self._eos_ids = [eos] if isinstance(eos, int) else list(eos or [])

    def _lang_id(self, lang: str) -> int:
        return language_token_id(self.tokenizer, lang, self.spec.ref)

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
        inputs, output = self.generate_ids(encoded, settings)
        sequences = output.sequences if hasattr(output, "sequences") else output
        try:
            self._note_scores(encoded, settings, self._mean_log_probs(inputs, sequences))
        except Exception as error:  # noqa: BLE001 - a confidence must never cost the translation
            log.warning("decoder confidence unavailable: %s: %s", type(error).__name__, error)
        decode_kwargs: dict[str, Any] = {"skip_special_tokens": True}
        if self.spec.family == "marian":
            # transformers 5 decodes shared-vocabulary Marian output with the *source* SentencePiece
            # model by default; the output is target language.
            decode_kwargs["use_source_tokenizer"] = False
        return self.tokenizer.batch_decode(sequences.tolist(), **decode_kwargs)

    def _mean_log_probs(self, inputs: dict, sequences, chunk: int = 8) -> list[float]:
        """Mean log-probability of each generated token (EOS included, padding and a forced
        language code not), from one teacher-forced pass over the output, ``chunk`` sentences
        at a time: generate's own ``output_scores`` keeps a vocabulary-wide row per step and
        beam, and the pruned greedy loop returns tokens only."""
        torch = self._torch
        pad = self.model.generation_config.pad_token_id
        first = 2 if "forced_bos_token_id" in self._gen_kwargs else 1
        out: list[float] = []
        with torch.inference_mode():
            for a in range(0, sequences.shape[0], chunk):
                seq = sequences[a : a + chunk]
                logits = self.model(input_ids=inputs["input_ids"][a : a + chunk],
                                    attention_mask=inputs["attention_mask"][a : a + chunk],
                                    decoder_input_ids=seq[:, :-1]).logits.float()
                targets = seq[:, 1:]
                picked = logits.gather(-1, targets[..., None])[..., 0] - logits.logsumexp(-1)
                mask = targets != pad if pad is not None else torch.ones_like(targets, dtype=torch.bool)
                mask[:, : first - 1] = False
                counts = mask.sum(-1).clamp(min=1)
                out.extend(((picked * mask).sum(-1) / counts).tolist())
        return out

    def attention(self, sources: Sequence[str], translations: Sequence[str]) -> list[TokenAttention]:
        """The engine attention contract (mt.engines.attention): sources encoded exactly as
        ``translate`` does, translations re-tokenised with the target tokenizer and forced as
        decoder input (:func:`mt.engines.forced_attention.forced_cross_attention`)."""
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



def language_token_id(tokenizer: Any, lang: str, model_ref: str) -> int:
    """The token id of target language code ``lang`` (``en_XX``, ``eng_Latn``, ``__en__``...);
    ConfigError when the vocabulary lacks it."""
    tok = tokenizer
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
    raise ConfigError(f"model {model_ref}: target language code {lang!r} is not in its vocabulary")


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
