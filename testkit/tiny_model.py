"""Random-weight models built offline, for tests, benchmarks and the offline demo.

Nothing here touches the network: the tokenizer is a SentencePiece model trained on the spot
on real IWSLT'15 TED text from ``../shared/data/iwslt15`` (CC BY-NC-ND 3.0, read in place, not
copied; a short built-in list is used when that folder is missing), and the model is a
``MarianMTModel`` with seeded random weights. Both are written with ``save_pretrained`` so that
loading goes through the real ``AutoTokenizer`` / ``AutoModelForSeq2SeqLM`` code path.

The translations of a random model are gibberish, but they are deterministic, non-empty and of
varied length: weights are scaled so that outputs depend on the source, the model's generation
config penalises repeats (``repetition_penalty=3``; a random decoder otherwise loops on one
token), and the end-of-sentence logit is biased so that decoding stops on its own for about 2/3
of real sentences instead of always running to the length cap.

``build_tiny_marian(dir, **OPUS_MT_VI_EN_SHAPE)`` gives the full Helsinki-NLP/opus-mt-vi-en shape
(75M parameters, 274 MiB) for benchmarks: same compute per token as the real model.

Try the page end to end without any download (builds the model, then runs ``server.py`` on it)::

    .venv/bin/python -m testkit.tiny_model --serve [server.py options, e.g. --port 8000]
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import sys
from pathlib import Path

from testkit.shared_data import ROOT, iwslt_segments

# Shape of Helsinki-NLP/opus-mt-vi-en (config.json of the published model).
OPUS_MT_VI_EN_SHAPE = dict(d_model=512, layers=6, heads=8, ffn=2048, vocab_size=53739)
DEMO_DIR = ROOT / "test-output" / "tiny-marian-vi-en"

_FALLBACK_VI = [
    "Xin chào, tôi tên là Lan và tôi sống ở Hà Nội.",
    "Hôm nay trời rất đẹp, chúng ta đi dạo công viên nhé.",
    "Việt Nam là một quốc gia nằm ở Đông Nam Á.",
    "Tôi thích đọc sách và nghe nhạc vào buổi tối.",
    "Chính phủ đã công bố kế hoạch phát triển kinh tế mới.",
    "Các nhà khoa học đang nghiên cứu biến đổi khí hậu.",
    "Giá xăng dầu tăng mạnh trong tháng này.",
    "Học sinh được nghỉ hè từ đầu tháng sáu.",
    "Bệnh viện đã tiếp nhận hàng trăm bệnh nhân mỗi ngày.",
    "Thành phố Hồ Chí Minh là trung tâm kinh tế lớn nhất cả nước.",
    "Người dân miền Tây sống chủ yếu bằng nghề trồng lúa.",
    "Văn hoá truyền thống cần được bảo tồn và phát huy.",
    "Anh ấy đã làm việc ở công ty này được mười năm.",
    "Chúng tôi sẽ tổ chức hội nghị vào tuần tới.",
    "Đội tuyển bóng đá quốc gia đã giành chiến thắng.",
    "Mẹ tôi nấu phở rất ngon vào mỗi sáng chủ nhật.",
]
_FALLBACK_EN = [
    "Hello, my name is Lan and I live in Hanoi.",
    "The weather is very nice today, let's take a walk in the park.",
    "Vietnam is a country located in Southeast Asia.",
    "I like reading books and listening to music in the evening.",
    "The government has announced a new economic development plan.",
    "Scientists are studying climate change.",
    "Fuel prices rose sharply this month.",
    "Students have their summer holidays from early June.",
    "The hospital has received hundreds of patients every day.",
    "Ho Chi Minh City is the largest economic centre of the country.",
    "People in the Mekong Delta live mainly by growing rice.",
    "Traditional culture needs to be preserved and promoted.",
    "He has worked at this company for ten years.",
    "We will hold a conference next week.",
    "The national football team won.",
    "My mother cooks delicious pho every Sunday morning.",
]


def sample_sentences(lang: str = "vi", n: int = 400) -> list[str]:
    """Up to ``n`` real sentences (IWSLT'15 dev2010), or the built-in list when the data is missing."""
    try:
        segs = iwslt_segments("dev2010", lang)
    except FileNotFoundError:
        segs = []
    if not segs:
        return list(_FALLBACK_VI if lang == "vi" else _FALLBACK_EN)
    return segs[:n]


def _train_spm(sentences: list[str], vocab_size: int, seed: int) -> bytes:
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        num_threads=1,
        unk_id=1,
        bos_id=-1,  # Marian vocabularies have no <s>
        eos_id=0,
        pad_id=-1,
        unk_piece="<unk>",
        eos_piece="</s>",
        minloglevel=2,
    )
    return model.getvalue()


def _pieces(spm_bytes: bytes) -> list[str]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=spm_bytes)
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def build_tiny_marian(
    out_dir: str | Path,
    *,
    d_model: int = 32,
    layers: int = 2,
    heads: int = 2,
    ffn: int = 64,
    vocab_size: int | None = None,
    seed: int = 0,
    spm_vocab: int = 1000,
    eos_bias: float | None = None,
) -> Path:
    """Write a random-weight Marian vi→en model (tokenizer + weights) into ``out_dir``; return it.

    Deterministic for given arguments. Cached per process (the same arguments return the directory
    built earlier without rebuilding); a new process rebuilds, overwriting what is there.
    """
    out = Path(out_dir).resolve()
    return _build_cached(str(out), d_model, layers, heads, ffn, vocab_size, seed, spm_vocab, eos_bias)


@functools.lru_cache(maxsize=None)
def _build_cached(out, d_model, layers, heads, ffn, vocab_size, seed, spm_vocab, eos_bias) -> Path:
    return _build(Path(out), d_model, layers, heads, ffn, vocab_size, seed, spm_vocab, eos_bias)


def _build(out: Path, d_model, layers, heads, ffn, vocab_size, seed, spm_vocab, eos_bias) -> Path:
    import torch
    from transformers import GenerationConfig, MarianConfig, MarianMTModel, MarianTokenizer

    out.mkdir(parents=True, exist_ok=True)
    src = _train_spm(sample_sentences("vi"), spm_vocab, seed)
    tgt = _train_spm(sample_sentences("en"), spm_vocab, seed)
    (out / "source.spm").write_bytes(src)
    (out / "target.spm").write_bytes(tgt)

    # Joint vocabulary as in the OPUS-MT models: </s>=0, <unk>=1, pieces of both sides, <pad> last.
    vocab: dict[str, int] = {"</s>": 0, "<unk>": 1}
    for piece in _pieces(src) + _pieces(tgt):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    n_pieces = len(vocab)
    if vocab_size is not None:
        if vocab_size < len(vocab) + 1:
            raise ValueError(f"vocab_size {vocab_size} is smaller than the {len(vocab) + 1} pieces needed")
        for i in range(vocab_size - n_pieces - 1):
            vocab[f"<filler_{i}>"] = len(vocab)
    vocab["<pad>"] = len(vocab)
    pad = vocab["<pad>"]
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")

    tokenizer = MarianTokenizer(
        source_spm=str(out / "source.spm"),
        target_spm=str(out / "target.spm"),
        vocab=str(out / "vocab.json"),
        source_lang="vi",
        target_lang="en",
    )
    tokenizer.save_pretrained(str(out))

    config = MarianConfig(
        vocab_size=len(vocab),
        decoder_vocab_size=len(vocab),
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        max_position_embeddings=512,
        activation_function="swish",
        scale_embedding=True,
        pad_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
        decoder_start_token_id=pad,
        dropout=0.1,
        init_std=0.02,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        # Default init (std 0.02) makes every layer negligible next to the residual stream: greedy
        # decoding then repeats one token forever. Scale the projections to 1/sqrt(fan_in) and the
        # embeddings (tied with the output layer) so that logits have a spread of about 1.7
        # whatever d_model, and depend on the source and the position.
        for name, param in model.named_parameters():
            if param.dim() == 2 and "embed" not in name and "shared" not in name:
                param.normal_(0.0, param.shape[1] ** -0.5, generator=gen)
        emb = model.get_input_embeddings().weight
        emb.normal_(0.0, 1.7 / d_model**0.5, generator=gen)
        emb[pad].zero_()
        # Bias </s> so that most random translations end by themselves (some reach the cap), and
        # keep filler tokens (present only to give the vocabulary its full size) out of outputs.
        bias = model.final_logits_bias
        bias.zero_()
        bias[0, n_pieces:pad] = -10.0
        bias[0, 0] = _default_eos_bias(len(vocab)) if eos_bias is None else eos_bias
    model.generation_config = GenerationConfig(
        decoder_start_token_id=pad,
        eos_token_id=0,
        pad_token_id=pad,
        forced_eos_token_id=0,
        bad_words_ids=[[pad]],
        # A random decoder feeds on its own output and falls into loops; penalising repeats keeps
        # outputs varied and lets </s> win after a while (vectorised: no Python per step).
        repetition_penalty=3.0,
        num_beams=1,
    )
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(str(out))
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return out


def _default_eos_bias(vocab_size: int) -> float:
    # Tuned by hand (greedy, cap 1.2 x source + 10): about 2/3 of the IWSLT
    # sentences stop on their own, the rest reach the cap; the largest logit among more tokens
    # is higher, hence the larger bias for the full-size vocabulary.
    return 2.7 if vocab_size < 5000 else 4.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m testkit.tiny_model",
        description="Build the random-weight test model (offline); with --serve, start server.py on it.",
        epilog="Arguments after the known ones go to server.py (e.g. --port 8000 --engine transformers).",
    )
    parser.add_argument("--out", type=Path, default=DEMO_DIR, help=f"model directory (default {DEMO_DIR})")
    parser.add_argument("--rebuild", action="store_true", help="build again even if --out holds a model")
    parser.add_argument("--serve", action="store_true", help="then run server.py --model OUT")
    args, server_args = parser.parse_known_args(argv)
    if server_args and not args.serve:
        parser.error(f"unrecognized arguments: {' '.join(server_args)} (server options need --serve)")
    out = args.out.resolve()
    if args.rebuild or not (out / "config.json").is_file():
        print(f"building the tiny random-weight model in {out} ...", file=sys.stderr)
        build_tiny_marian(out)
    print(f"tiny model: {out} (random weights: translations are gibberish)", file=sys.stderr)
    if not args.serve:
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing to fetch: the model is local
    command = [sys.executable, str(ROOT / "server.py"), "--model", str(out), *server_args]
    os.execv(sys.executable, command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
