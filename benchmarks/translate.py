"""Translation speed: naive per-sentence ``generate`` vs the engine's batches; cold vs cached.

Model: a random-weight Marian model with the exact shape of Helsinki-NLP/opus-mt-vi-en
(d_model 512, 6+6 layers, 8 heads, ffn 2048, vocabulary 53,739), built offline by
``mt.testing.build_tiny_marian``; compute per token is the real model's, only the words are
gibberish. Text: the first 48 segments of the first talk of IWSLT'15 TED tst2013 (vi), read from
``../shared/data/iwslt15`` (CC BY-NC-ND 3.0), else the seed article.

Usage::

    .venv/bin/python benchmarks/translate.py [--sentences 48] [--beams 1,4] [--threads N]

Rows, in one run (each measured in a fresh subprocess, so peak RSS is its own):
  * naive loop: ``AutoModelForSeq2SeqLM`` fp32, one ``generate`` per sentence, the way a user would
    write it, vs ``Engine.translate`` on the same sentences (length-sorted token-budget batches),
    same beam, same per-sentence cap 1.2 × source tokens + 10; goal ≥ 4× faster;
  * ``mt.pipeline.translate_document`` cold (empty SQLite cache in a temp dir) vs the same article
    again (all cache hits, after reopening the cache); goal ≥ 100× faster.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MAX_LEN_A, MAX_LEN_B = 1.2, 10
ENGINE = os.environ.get("MT_BENCH_ENGINE", "transformers")  # set from --engine


def article_segments(n: int) -> tuple[str, list[str]]:
    from mt.testing import SEED_DIR, iwslt_talks

    for talk in iwslt_talks("tst2013", "vi"):
        if len(talk) >= n:
            return f"IWSLT'15 tst2013, first talk with >= {n} segments", talk[:n]
    seed = sorted(SEED_DIR.glob("*.txt"))
    if seed:
        from mt.segment import split_sentences

        segs = [s.text for s in split_sentences(seed[0].read_text(encoding="utf-8"))]
        return f"seed article {seed[0].name}", (segs * (n // max(1, len(segs)) + 1))[:n]
    raise SystemExit("no text: ../shared/data/iwslt15 and ../shared/data/seed are both missing")


def article_text(segments: list[str]) -> str:
    """The segments as an article: paragraphs of 6 segments."""
    return "\n\n".join(" ".join(segments[i : i + 6]) for i in range(0, len(segments), 6))


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---------------------------------------------------------------------------------------------
# Parts, each run in its own process


def part_naive(model_dir: str, segments: list[str], beam: int) -> dict:
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir)
    model.eval()
    loaded = peak_rss_mb()
    outputs, generated = [], 0
    start, cpu = time.perf_counter(), time.process_time()
    for sentence in segments:
        batch = tokenizer([sentence], return_tensors="pt")
        cap = max(1, int(MAX_LEN_A * batch["input_ids"].shape[1] + MAX_LEN_B))
        out = model.generate(**batch, num_beams=beam, max_new_tokens=cap)
        generated += int((out[0, 1:] != model.config.pad_token_id).sum())
        outputs.append(tokenizer.decode(out[0], skip_special_tokens=True, use_source_tokenizer=False).strip())
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "tokens": generated, "outputs": outputs, "rss_loaded": loaded,
            "rss_peak": peak_rss_mb(), "threads": torch.get_num_threads()}


def part_engine(model_dir: str, segments: list[str], beam: int) -> dict:
    import torch

    from mt.translate import DecodingSettings, load_engine

    engine = load_engine(model_dir, engine=ENGINE)
    loaded = peak_rss_mb()
    settings = DecodingSettings(beam=beam, max_len_a=MAX_LEN_A, max_len_b=MAX_LEN_B)
    counted = {"tokens": 0, "batches": 0}
    generate_ids = getattr(engine, "generate_ids", None)

    def counting(encoded, settings, **extra):  # count generated tokens, as in the naive loop
        inputs, out = generate_ids(encoded, settings, **extra)
        counted["tokens"] += int((out[:, 1:] != engine.tokenizer.pad_token_id).sum())
        counted["batches"] += 1
        return inputs, out

    if generate_ids is not None:
        engine.generate_ids = counting
    else:  # another engine: count batches and the tokens of the decoded outputs
        batch = engine._translate_batch

        def counting_batch(encoded, settings):
            counted["batches"] += 1
            texts = batch(encoded, settings)
            counted["tokens"] += sum(len(engine.tokenizer(text_target=t)["input_ids"]) for t in texts)
            return texts

        engine._translate_batch = counting_batch
    start, cpu = time.perf_counter(), time.process_time()
    outputs = engine.translate(segments, settings)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "tokens": counted["tokens"], "batches": counted["batches"], "outputs": outputs,
            "rss_loaded": loaded, "rss_peak": peak_rss_mb(), "threads": torch.get_num_threads()}


def part_pipeline(model_dir: str, segments: list[str], beam: int) -> dict:
    from mt.cache import open_cache
    from mt.pipeline import translate_document
    from mt.translate import DecodingSettings, load_engine

    engine = load_engine(model_dir, engine=ENGINE)
    settings = DecodingSettings(beam=beam, max_len_a=MAX_LEN_A, max_len_b=MAX_LEN_B)
    text = article_text(segments)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cache.sqlite"
        cache = open_cache(path)
        start = time.perf_counter()
        cold = translate_document(text, engine, cache, settings=settings)
        cold_s = time.perf_counter() - start
        cache.close()
        cache = open_cache(path)  # reopened: served from disk, not from this object
        runs = []
        for _ in range(7):
            start = time.perf_counter()
            warm = translate_document(text, engine, cache, settings=settings)
            runs.append(time.perf_counter() - start)
        cache.close()
    return {
        "cold_s": cold_s, "cached_s": statistics.median(runs), "sentences": len(cold.sentences),
        "cold_hits": cold.cache_hits, "cached_hits": warm.cache_hits,
        "same": warm.translation == cold.translation, "rss_peak": peak_rss_mb(),
    }


PARTS = {"naive": part_naive, "engine": part_engine, "pipeline": part_pipeline}


def run_part(name: str, model_dir: Path, n: int, beam: int, threads: int) -> dict:
    """Run one part in a fresh interpreter (own peak memory, own torch state); its JSON result."""
    env = dict(os.environ, MT_BENCH_ENGINE=ENGINE, MT_THREADS=str(threads), OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, __file__, "--part", name, "--model-dir", str(model_dir), "--sentences", str(n), "--beams", str(beam)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"part {name} (beam {beam}) failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=48)
    parser.add_argument("--beams", default="1,4", help="comma-separated beam sizes (default 1,4)")
    parser.add_argument("--pipeline-beam", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--engine", default="transformers",
                        help="engine of the engine rows and the pipeline (default transformers; e.g. auto, ctranslate2)")
    parser.add_argument("--model-dir", default=None, help="reuse a model built earlier (default: build one in a temp dir)")
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    beams = [int(b) for b in str(args.beams).split(",") if b.strip()]
    global ENGINE
    ENGINE = args.engine if not args.part else ENGINE
    _, segments = article_segments(args.sentences)

    if args.part:  # child process
        import torch

        torch.set_num_threads(args.threads if "MT_THREADS" not in os.environ else int(os.environ["MT_THREADS"]))
        print(json.dumps(PARTS[args.part](args.model_dir, segments, beams[0]), ensure_ascii=False))
        return 0

    from mt.testing import OPUS_MT_VI_EN_SHAPE, build_tiny_marian

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        model_dir = Path(args.model_dir) if args.model_dir else build_tiny_marian(Path(tmp) / "opus-shape", **OPUS_MT_VI_EN_SHAPE)
        build_s = time.perf_counter() - start
        report(args, beams, segments, model_dir, build_s)
    return 0


def report(args, beams, segments, model_dir: Path, build_s: float) -> None:
    from transformers import AutoConfig, AutoTokenizer

    source, _ = article_segments(args.sentences)
    cfg = AutoConfig.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    src_tokens = sum(len(tok(s)["input_ids"]) for s in segments)
    weights = (model_dir / "model.safetensors").stat().st_size / 2**20
    print(f"model   random-weight Marian, opus-mt-vi-en shape: d_model {cfg.d_model}, {cfg.encoder_layers}+{cfg.decoder_layers} layers, "
          f"{cfg.encoder_attention_heads} heads, ffn {cfg.encoder_ffn_dim}, vocabulary {cfg.vocab_size:,} "
          f"({weights:.0f} MiB fp32; built in {build_s:.1f} s)")
    print(f"text    {source}: {len(segments)} segments, {src_tokens} source tokens")
    print(f"setup   engine rows: load_engine(engine={args.engine!r}); CPU, torch threads {args.threads}, fp32, output cap {MAX_LEN_A} x source tokens + {MAX_LEN_B}, "
          f"each row in a fresh process\n")
    header = f"{'':<28}{'wall':>9}{'CPU':>9}{'sent/s':>8}{'gen tok/s':>10}{'tokens':>7}{'RSS load':>10}{'RSS peak':>10}"
    print(header)
    print("-" * len(header))
    speedups = {}
    for beam in beams:
        naive = run_part("naive", model_dir, len(segments), beam, args.threads)
        engine = run_part("engine", model_dir, len(segments), beam, args.threads)
        batches = f"{engine['batches']} batch" + ("es" if engine["batches"] != 1 else "")
        for label, r in ((f"beam {beam}  naive loop", naive), (f"beam {beam}  engine ({batches})", engine)):
            print(f"{label:<28}{r['seconds']:>8.2f}s{r['cpu']:>8.2f}s{len(segments) / r['seconds']:>8.2f}"
                  f"{r['tokens'] / r['seconds']:>10.0f}{r['tokens']:>7}{r['rss_loaded']:>8.0f}MB{r['rss_peak']:>8.0f}MB")
        same = sum(a == b for a, b in zip(naive["outputs"], engine["outputs"]))
        speedups[beam] = naive["seconds"] / engine["seconds"]
        print(f"{'':<28}speed-up {speedups[beam]:.1f}x wall, {naive['cpu'] / engine['cpu']:.1f}x CPU (goal >= 4x); "
              f"same output as naive: {same}/{len(segments)}")
    pipe = run_part("pipeline", model_dir, len(segments), args.pipeline_beam, args.threads)
    ratio = pipe["cold_s"] / pipe["cached_s"]
    print(f"\npipeline translate_document + SQLite cache (beam {args.pipeline_beam}), {pipe['sentences']} segments after splitting:")
    print(f"  cold   {pipe['cold_s'] * 1000:>10.1f} ms   cache hits {pipe['cold_hits']}")
    print(f"  cached {pipe['cached_s'] * 1000:>10.2f} ms   cache hits {pipe['cached_hits']}  (reopened cache, median of 7)  "
          f"same translation: {pipe['same']}")
    print(f"  speed-up {ratio:,.0f}x (goal >= 100x); peak RSS {pipe['rss_peak']:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
