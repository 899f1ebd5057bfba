"""CTranslate2 engine: the Hugging Face model converted once (mt.engines.conversion), int8 on
CPU, float16 on CUDA.

Decoding mirrors :class:`mt.engines.transformers.TransformersEngine`: the same tokenizer, batches,
beam, per-sentence output cap, generation-config options and decode, so float32 greedy output is
token for token the same (tests/test_ct2.py). CTranslate2 takes one ``max_decoding_length`` per
call: the batch runs to its longest sentence's cap and each output is cut at its own cap, which for
greedy decoding is what a per-sentence cap gives. Marian models are tokenised with SentencePiece
alone (mt.engines.marian_pieces: no transformers import on the translation path). Word links:
attention recorded while decoding (memo), else a teacher-forced pass. The family specifics and
measurements are in docs/ENGINES.md ("CTranslate2 engine").
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, ModelUnavailable
from ..settings import Settings, current
from ..models import FAMILIES, ModelSpec
from .attention import AttentionRequest, TokenAttention, empty_attention, target_ids
from .base import DecodingSettings, Engine, batches_by_tokens
from .conversion import ConversionError, ensure_converted, resolve_compute_type
from .marian_pieces import MarianPieces
from .nbest import ctranslate2_alternatives
from .threads import thread_split, threads_started_by, wanted_threads
from .transformers import language_token_id

log = logging.getLogger(__name__)

# Families whose target language code is forced as the first target token (prefix) / is the start token.
_PREFIX_FAMILIES = ("nllb", "m2m100", "mbart")

def _mean_log_prob(result, length: int, length_penalty: float) -> float | None:
    """Mean token log-probability of the best hypothesis (its confidence, Engine.confidences):
    CTranslate2's score is the summed log-probability divided by ``length ** length_penalty``
    (greedy search too), so with the usual penalty of 1 it is the mean already."""
    if not result.scores:
        return None
    length = max(1, length)
    return float(result.scores[0]) * length ** length_penalty / length


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


class _PieceIds:
    """What :meth:`AttentionRequest.token_attention` asks of a tokenizer, for Marian's
    SentencePiece pieces: stand-in ids that tell its special pieces (``MarianTokenizer``'s
    ``all_special_ids``: EOS, unk, pad) and ``<unk>`` apart from the rest."""

    unk_token_id = 1
    all_special_ids = (0, 1, 2)
    _codes = {"</s>": 0, "<unk>": 1, "<pad>": 2}

    def of(self, pieces: Sequence[str]) -> list[int]:
        return [self._codes.get(p, 3) for p in pieces]


class CTranslate2Engine(Engine):
    """CTranslate2 translator over the converted model; the HF tokenizer on both ends."""

    name = "ctranslate2"
    _alternatives_batch = ctranslate2_alternatives  # n-best hook of Engine.alternatives

    def __init__(
        self,
        spec: ModelSpec,
        model_dir: Path,
        *,
        device: str = "cpu",
        compute_type: str | None = None,
        cache_dir: str | Path | None = None,
        config: Settings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(spec, model_dir, device=device, **kwargs)
        self.config = options = config or current()
        if spec.family not in FAMILIES:
            raise ConversionError(f"model family {spec.family!r} is not supported by the CTranslate2 engine")
        try:
            import ctranslate2
        except Exception as e:
            raise ConfigError(f"the ctranslate2 engine is not available ({e}); install ctranslate2 or use --engine transformers") from None
        self.compute_type = resolve_compute_type(compute_type or options.ct2_compute_type, device)
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

        self.ct2_dir = ensure_converted(spec, Path(model_dir), self.model_version, self.compute_type,
                                        cache_dir or options.ct2_dir)
        kind, _, index = device.partition(":")
        self.threads = wanted_threads(options.engine_threads) if kind == "cpu" else 1
        inter, intra = thread_split(self.threads, options.ct2_inter_threads) if kind == "cpu" else (1, 0)
        self.parallel_batches = inter
        try:
            self.translator, self.native_threads = threads_started_by(lambda: ctranslate2.Translator(
                str(self.ct2_dir), device=kind, device_index=int(index or 0), compute_type=self.compute_type,
                inter_threads=inter, intra_threads=intra))
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
            lang_id = language_token_id(self.tokenizer, spec.tgt_lang, spec.ref)  # as TransformersEngine
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
        """Marian's tokenizer by its own class: AutoTokenizer reads the model's config through
        transformers' configuration module, which imports torch (1.5 s and ~200 MB per worker that
        a CTranslate2 server otherwise never needs); AutoTokenizer picks this class for Marian."""
        if self.spec.family == "marian":
            from transformers import MarianTokenizer

            return MarianTokenizer.from_pretrained(str(self.model_dir))
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
            return_scores=True,
            **self._options,
        )
        out, all_rows, means = [], [], []
        for result, n in zip(results, keep):
            pieces = list(result.hypotheses[0]) if result.hypotheses else []
            means.append(_mean_log_prob(result, len(pieces), self._options["length_penalty"]))
            skip = 0
            if self._forced and pieces and pieces[0] == self.target_token:
                skip = 1  # nllb, m2m100: the forced code (mbart's start code is not returned)
            pieces = pieces[skip : skip + n]
            out.append(pieces)
            all_rows.append(list(result.attention[0][skip : skip + len(pieces)]) if result.attention else None)
        if settings.beam > 1 and len(encoded) > 1 and self.attention_memo_size > 0:
            self._fix_first_rows(encoded, out, all_rows)
        self._note_scores(encoded, settings, means)
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

    def _run_batches(self, batches: list[list[list[str]]], settings: DecodingSettings,
                     on_batch=None) -> list[list[str]]:
        """Batches decoded ``parallel_batches`` at a time (CTranslate2 releases the GIL)."""
        if self.parallel_batches <= 1 or len(batches) <= 1:
            return super()._run_batches(batches, settings, on_batch)

        def run(batch: list[list[str]]) -> list[str]:
            texts = self._translate_batch(batch, settings)
            if on_batch is not None:
                on_batch(texts)
            return texts

        with ThreadPoolExecutor(max_workers=min(self.parallel_batches, len(batches))) as pool:
            return list(pool.map(run, batches))

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

    def _memo_attention(self, request: AttentionRequest, translations: Sequence[str]) -> list[TokenAttention] | None:
        """Every pair of ``request`` from the attention memo, tokenised with SentencePiece alone
        (Marian): word links of fresh translations without importing transformers (~2 s of a
        ``mt translate --jsonl`` start). None when a pair is not remembered (the full path then);
        the result equals the full path's (tests/test_ct2.py)."""
        if self.pieces is None or not all(MarianPieces.handles(t) for t in request.model_inputs):
            return None
        src_pieces = [self.pieces.encode(t, self.max_source_tokens) for t in request.model_inputs]
        with self._lock:
            found = [self._attention_memo.get((tuple(s), translations[i].strip())) for s, i in zip(src_pieces, request.todo)]
        if any(f is None for f in found) or not all(p in self._target_index for f in found for p in f[0]):
            return None
        ids = _PieceIds()
        out = []
        for k, (pieces, matrix) in enumerate(found):
            src_ids, tgt_ids = ids.of(src_pieces[k]), ids.of(pieces)
            rows = [r for r, t in enumerate(tgt_ids) if t not in ids.all_special_ids or t == ids.unk_token_id]
            out.append(request.token_attention(ids, k, src_ids, src_pieces[k], tgt_ids, pieces, matrix, rows))
        return out

    def attention(self, sources: Sequence[str], translations: Sequence[str]) -> list[TokenAttention]:
        """The engine attention contract (mt.engines.attention): one ``TokenAttention`` per pair.

        Pieces and spans are built as for TransformersEngine (:class:`AttentionRequest`). For a
        translation this engine produced itself (still in its memo) the target pieces are the
        generated ones and the weights those recorded while decoding; otherwise the translation
        is re-tokenised and forced (:meth:`forced_attention`)."""
        sources, translations = list(sources), list(translations)
        request = AttentionRequest.build(self.spec, sources, translations)
        out = [empty_attention() for _ in sources]
        todo = request.todo
        if not todo:
            return out
        if self.config.align_layer or self.config.align_head:
            log.warning("MT_ALIGN_LAYER/MT_ALIGN_HEAD do not apply to the ctranslate2 engine: it uses the "
                        "last decoder layer, head 0 (marian) or the mean of its heads (other families)")
        remembered_all = self._memo_attention(request, translations)
        if remembered_all is not None:
            for i, attention in zip(todo, remembered_all):
                out[i] = attention
            return out
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
