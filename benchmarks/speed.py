"""Speed: every engine and precision, end to end, pipeline overhead, and the server under load.

Model: a random-weight Marian model with the exact shape of Helsinki-NLP/opus-mt-vi-en
(d_model 512, 6+6 layers, 8 heads, ffn 2048, vocabulary 53,739), built offline by
``testkit/tiny_model.py`` (``build_tiny_marian``) into a folder named ``opus-mt-vi-en`` so that the settings of
that models.txt line apply (beam 4, output cap 1.5 × source tokens + 10). Compute per token is
the real model's; only the words are gibberish, so output lengths differ between engines and
speed is given in generated tokens per second (EOS included, as ``generate`` counts it). Text:
the first 48 segments of the first talk of IWSLT'15 TED tst2013 (vi) in ``../shared/data/iwslt15``
(CC BY-NC-ND 3.0, read in place).

Usage::

    .venv/bin/python benchmarks/speed.py [--quick] [--threads N] [--model-dir DIR]

Parts, in one run; every measurement runs in a fresh child process (peak memory = the child's
VmHWM, or its ``ru_maxrss`` from ``wait4`` for commands we do not control; this parent imports
no ML library, so children do not inherit a large peak):

1. End to end, whole process (start, imports, model load, translate): ``mt translate ARTICLE
   --model DIR --no-cache``, the default command (default engine, auto; the model line's beam, 4;
   plain text out) against the loop a user would write (transformers fp32, one ``generate`` per
   sentence, same cap) at the same beam (the published opus-mt configs set ``num_beams``,
   opus-mt-en-de's to 4, so a plain ``generate()`` call does beam search there too). Then
   ``--beam 1`` against the greedy loop (the issue's baseline table).
   Goal >= 8x. Tokens of both are counted the same way (their outputs re-tokenised with the
   target tokenizer, one EOS per segment). The one-time CTranslate2 conversion runs before,
   and is reported on its own line.
2. Engines: ``Engine.translate`` on the same sentences (token-budget batches), each engine and
   precision at greedy and beam 4, model loaded and warmed up.
3. Pipeline overhead: ``translate_document`` (NullCache) against the raw engine call on the
   sentences the pipeline produces (segmented, normalised); goal <= 10 %. Word links and the
   quality score are extra model passes that the raw call does not make: measured apart.
4. Server: ``python server.py --model DIR --no-cache --port 0``; 24 one-sentence requests to
   ``POST /api/translate`` one after another, then from 8 concurrent clients (goal >= 2.5x
   requests/s), and with ``--no-batching`` for comparison; p50 and p95 latency.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]  # mt and testkit from the checkout
IWSLT = Path(__file__).resolve().parents[1].parent / "shared/data/iwslt15"
MODEL_NAME = "opus-mt-vi-en"  # matches the models.txt line: its beam and cap apply
BEAM, MAX_LEN_A, MAX_LEN_B = 4, 1.5, 10  # that line's settings (used by the naive loop too)
SERVER_REQUESTS, SERVER_CLIENTS = 24, 8
# End-of-sentence logit bias of the random model: with 4.2 its translations of these segments
# average ~30 tokens (greedy 30, beam 4 28; a fifth reach the cap), like real ones.
EOS_BIAS = 4.2


# --------------------------------------------------------------------------- children


def vm_hwm_mb(pid: str | int = "self") -> float:
    """Peak resident memory (VmHWM) of a process, MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def segments_of(n: int) -> list[str]:
    from testkit.shared_data import iwslt_talks

    for talk in iwslt_talks("tst2013", "vi"):
        if len(talk) >= n:
            return talk[:n]
    raise SystemExit(f"no IWSLT'15 tst2013 talk with {n} segments in {IWSLT}")


def article_text(segments: list[str]) -> str:
    """The segments as an article: paragraphs of 6 segments."""
    return "\n\n".join(" ".join(segments[i : i + 6]) for i in range(0, len(segments), 6))


def child_build(args) -> dict:
    from testkit.tiny_model import OPUS_MT_VI_EN_SHAPE, build_tiny_marian

    start = time.perf_counter()
    out = build_tiny_marian(Path(args.model_dir), eos_bias=EOS_BIAS, **OPUS_MT_VI_EN_SHAPE)
    return {"seconds": time.perf_counter() - start, "mib": (out / "model.safetensors").stat().st_size / 2**20}


def child_convert(args) -> dict:
    """Load with the default engine (auto): converts the model once into $MT_CT2_DIR."""
    from mt.engines.loader import load_engine

    start = time.perf_counter()
    engine = load_engine(args.model_dir)
    seconds = time.perf_counter() - start
    load_engine(args.model_dir, engine="ctranslate2:float32")  # converted now, not inside a timed row
    return {"seconds": seconds, "engine": engine.name, "precision": engine.precision}


def _counting(engine) -> dict:
    """Wrap the engine's batch decoder to count generated tokens (EOS included) and batches."""
    counted = {"tokens": 0, "batches": 0}
    if engine.name == "ctranslate2":
        decode, lock = engine._decode, threading.Lock()  # batches may run in parallel threads

        def counting(encoded, settings):
            pieces, rows = decode(encoded, settings)
            with lock:
                counted["tokens"] += sum(len(p) + 1 for p in pieces)  # + EOS (natural or forced at the cap)
                counted["batches"] += 1
            return pieces, rows

        engine._decode = counting
    else:
        generate_ids = engine.generate_ids
        pad = engine.tokenizer.pad_token_id

        def counting(encoded, settings, **extra):
            inputs, out = generate_ids(encoded, settings, **extra)
            seqs = out.sequences if hasattr(out, "sequences") else out
            counted["tokens"] += int((seqs[:, 1:] != pad).sum())
            counted["batches"] += 1
            return inputs, out

        engine.generate_ids = counting
    return counted


def child_engine(args) -> dict:
    from mt.engines.base import DecodingSettings
    from mt.engines.loader import load_engine

    segments = json.loads(Path(args.segments).read_text())
    start = time.perf_counter()
    if args.engine == "torch-int8":  # transformers with torch dynamic int8 quantisation of the Linear layers
        import torch

        engine = load_engine(args.model_dir, engine="transformers")
        engine.model = torch.ao.quantization.quantize_dynamic(engine.model, {torch.nn.Linear}, dtype=torch.qint8)
        engine.precision = "dynamic-int8"
    else:
        engine = load_engine(args.model_dir, engine=args.engine)
    load_s = time.perf_counter() - start
    counted = _counting(engine)
    engine.translate(segments[:2], DecodingSettings(beam=1, max_len_a=MAX_LEN_A, max_len_b=MAX_LEN_B))  # warm-up
    rows = {}
    for beam in [int(b) for b in args.beams.split(",")]:
        settings = DecodingSettings(beam=beam, max_len_a=MAX_LEN_A, max_len_b=MAX_LEN_B)
        counted.update(tokens=0, batches=0)
        start = time.perf_counter()
        outputs = engine.translate(segments, settings)
        rows[beam] = {"seconds": time.perf_counter() - start, "tokens": counted["tokens"], "batches": counted["batches"],
                      "empty": sum(not o for o in outputs)}
    return {"engine": engine.name, "precision": engine.precision, "load_s": load_s, "rows": rows, "rss": vm_hwm_mb()}


def child_naive(args) -> dict:
    """What a user would write: transformers fp32, one generate() per sentence."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    torch.set_num_threads(int(os.environ.get("MT_THREADS") or os.cpu_count() or 1))
    segments = json.loads(Path(args.segments).read_text())
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(args.model_dir).eval()
    outputs, generated = [], 0
    start = time.perf_counter()
    with torch.inference_mode():
        for sentence in segments:
            batch = tokenizer([sentence], return_tensors="pt")
            cap = max(1, int(MAX_LEN_A * batch["input_ids"].shape[1] + MAX_LEN_B))
            out = model.generate(**batch, num_beams=args.naive_beam, max_new_tokens=cap)
            generated += int((out[0, 1:] != model.config.pad_token_id).sum())
            outputs.append(tokenizer.decode(out[0], skip_special_tokens=True, use_source_tokenizer=False).strip())
    return {"outputs": outputs, "seconds": time.perf_counter() - start, "tokens": generated}


def child_count(args) -> dict:
    """Target tokens (+ EOS) of each list of translations, re-tokenised the same way."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    lists = json.loads(Path(args.segments).read_text())
    counts = {}
    for name, texts in lists.items():
        ids = tokenizer(text_target=texts, add_special_tokens=False)["input_ids"] if texts else []
        counts[name] = {"tokens": sum(len(x) + 1 for x in ids), "sentences": len(texts), "empty": sum(not t for t in texts)}
    return counts


def child_pipeline(args) -> dict:
    from mt.cache import NullCache
    from mt.pipeline import translate_document
    from mt.engines.loader import load_engine

    segments = json.loads(Path(args.segments).read_text())
    text = article_text(segments)
    engine = load_engine(args.model_dir)
    settings = engine.settings
    first = translate_document(text, engine, NullCache(), settings=settings, links=False, quality=False)  # warm-up
    sentences = [p.normalized for p in first.sentences if p.normalized.strip()]
    raw, plain = [], []
    for _ in range(args.repeats):  # alternate, so that machine load hits both alike
        start = time.perf_counter()
        engine.translate(sentences, settings)
        raw.append(time.perf_counter() - start)
        start = time.perf_counter()
        document = translate_document(text, engine, NullCache(), settings=settings, links=False, quality=False)
        plain.append(time.perf_counter() - start)
    # one-time loads kept out of the timing: the embedding model, and (Marian on CTranslate2) the
    # transformers tokenizer that word links use
    translate_document("Xin chào các bạn.", engine, NullCache(), settings=settings)
    start = time.perf_counter()
    full = translate_document(text, engine, NullCache(), settings=settings)
    full_s = time.perf_counter() - start
    same = [p.translation for p in document.sentences if p.normalized.strip()] == engine.translate(sentences, settings)
    return {"engine": f"{engine.name}-{engine.precision}", "beam": settings.beam, "segments": len(sentences),
            "raw_s": statistics.median(raw), "plain_s": statistics.median(plain), "full_s": full_s,
            "timings": {k: round(v, 1) for k, v in full.timings.items()}, "same": same, "rss": vm_hwm_mb()}


CHILDREN = {"build": child_build, "convert": child_convert, "engine": child_engine, "naive": child_naive,
            "count": child_count, "pipeline": child_pipeline}


# --------------------------------------------------------------------------- parent


def child_env(args, ct2_dir: Path) -> dict[str, str]:
    # MT_* settings dropped, but MT_E5_NICE passes through: the aligned rows at both e5 priorities
    env = {k: v for k, v in os.environ.items() if not k.startswith("MT_") or k == "MT_E5_NICE"}
    if args.threads > 0:
        env.update(MT_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    env.update(HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT),
               MT_CT2_DIR=str(ct2_dir), PYTHONUNBUFFERED="1")
    return env


def spawn(cmd: list[str], env: dict, out_path: Path, err_path: Path | None = None) -> tuple[int, float, float]:
    """Run a command with stdout (and stderr, unless ``err_path``) to a file; (exit status, wall
    seconds, peak RSS MB from wait4)."""
    start = time.perf_counter()
    with open(out_path, "wb") as out, open(err_path or os.devnull, "wb") as err:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=err if err_path else subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - start, usage.ru_maxrss / 1024


def run_child(part: str, args, env: dict, work: Path, *extra: str, script: str = __file__) -> dict:
    """``script --child part`` in a fresh process; its last stdout line is the JSON result."""
    log = work / f"{part}.log"
    cmd = [sys.executable, script, "--child", part, "--model-dir", str(args.model_dir), *extra]
    rc, _, _ = spawn(cmd, env, log)
    text = log.read_text(errors="replace")
    if rc != 0:
        raise SystemExit(f"child {part} {' '.join(extra)} failed (exit {rc}):\n{text[-4000:]}")
    return json.loads(text.strip().splitlines()[-1])


def post(port: int, path: str, body: dict, timeout: float = 900) -> tuple[float, dict]:
    """(seconds, JSON answer) of one POST to our server on loopback; anything but 200 raises."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:300]!r}")
    finally:
        conn.close()
    return time.perf_counter() - start, json.loads(data)


def request(port: int, sentence: str) -> float:
    return post(port, "/api/translate", {"text": sentence}, timeout=600)[0]


def serve_and_load(args, env: dict, work: Path, sentences: list[str], extra: list[str], label: str) -> list[dict]:
    """Start server.py, warm it up, then the sequential and the concurrent request runs."""
    log = open(work / f"server-{label}.log", "w")
    cmd = [sys.executable, str(ROOT / "server.py"), "--model", str(args.model_dir), "--no-cache", "--host", "127.0.0.1",
           "--port", "0", "--threads", str(SERVER_CLIENTS), *extra]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    port = 0
    deadline = time.monotonic() + 300
    assert proc.stdout is not None
    for line in proc.stdout:
        log.write(line)
        if "serving on http://" in line:
            port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
            break
        if time.monotonic() > deadline:
            break
    if not port:
        proc.kill()
        raise SystemExit(f"server did not start; see {work / f'server-{label}.log'}")
    threading.Thread(target=lambda: [log.write(x) for x in proc.stdout], daemon=True).start()
    try:
        request(port, sentences[0])  # loads the model
        request(port, sentences[1])
        rows = []
        for clients in (1, SERVER_CLIENTS):
            latencies: list[float] = []
            queue = list(sentences)
            lock = threading.Lock()

            def client():
                while True:
                    with lock:
                        if not queue:
                            return
                        sentence = queue.pop(0)
                    latencies.append(request(port, sentence))

            start = time.perf_counter()
            workers = [threading.Thread(target=client) for _ in range(clients)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            total = time.perf_counter() - start
            latencies.sort()
            rows.append({"label": label, "clients": clients, "total": total, "n": len(latencies),
                         "p50": statistics.median(latencies), "p95": latencies[max(0, int(0.95 * len(latencies)) - 1)]})
        for row in rows:
            row["rss"] = vm_hwm_mb(proc.pid)
        return rows
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 sentences, fewer rows (a couple of minutes)")
    parser.add_argument("--sentences", type=int, default=None, help="article length (default 48; --quick 12)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads per process (default 0: none set, so every process uses all cores, "
                        "as a user's would; on a machine shared with other jobs, 1 gives steadier figures)")
    parser.add_argument("--naive-beam", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", default=None, help=f"reuse a model built before (a folder named {MODEL_NAME})")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--segments", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--beams", default="1,4", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(CHILDREN[args.child](args), ensure_ascii=False))
        return 0

    n = args.sentences or (12 if args.quick else 48)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mt-speed-") as tmp:
        work = Path(tmp)
        env = child_env(args, work / "ct2")
        segments = segments_of(n)
        seg_file = work / "segments.json"
        seg_file.write_text(json.dumps(segments, ensure_ascii=False))
        article = work / "article.txt"
        article.write_text(article_text(segments) + "\n", encoding="utf-8")
        built = None
        if args.model_dir is None:
            args.model_dir = str(work / MODEL_NAME)
            built = run_child("build", args, env, work)
        report(args, env, work, segments, seg_file, article, built, began)
    return 0


def report(args, env, work: Path, segments, seg_file: Path, article: Path, built, began: float) -> None:
    say = lambda *a: print(*a, flush=True)  # noqa: E731
    shape = "random-weight Marian, opus-mt-vi-en shape (d_model 512, 6+6 layers, 8 heads, ffn 2048, vocabulary 53,739)"
    say(f"model   {shape}" + (f", built in {built['seconds']:.0f} s ({built['mib']:.0f} MiB fp32)" if built else ""))
    say(f"text    IWSLT'15 tst2013, first talk: {len(segments)} segments; output cap {MAX_LEN_A} x source tokens + {MAX_LEN_B}")
    threads = f"{args.threads} threads per process" if args.threads > 0 else "all cores per process (no thread setting)"
    say(f"setup   CPU, {threads} ({os.cpu_count()} cores); each row a fresh process\n")

    # 1. conversion (once), then end to end
    conv = run_child("convert", args, env, work)
    conv_name = f"{conv['engine']} {conv['precision']}"
    say(f"0. default engine (auto) = {conv_name}; first load, including the one-time conversion: {conv['seconds']:.1f} s\n")

    # The default command: plain text out (word links and quality scores are --jsonl extras), and
    # the same with --beam 1, each against the naive loop at the same beam.
    runs = {}
    for beam in (BEAM, 1):
        out_file = work / f"mt-beam{beam}.txt"
        cmd = [sys.executable, "-m", "mt", "translate", str(article), "--model", str(args.model_dir), "--no-cache"]
        cmd += [] if beam == BEAM else ["--beam", "1"]
        err_file = work / f"mt-beam{beam}.err"  # kept apart: only the translation is counted
        rc, wall, rss = spawn(cmd, env, out_file, err_file)
        if rc != 0:
            raise SystemExit(f"mt translate failed:\n{err_file.read_text()[-3000:]}")
        paragraphs = [line for line in out_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        runs[f"mt{beam}"] = {"wall": wall, "rss": rss, "texts": paragraphs, "segments": len(segments)}
        naive_cmd = [sys.executable, __file__, "--child", "naive", "--model-dir", str(args.model_dir), "--segments",
                     str(seg_file), "--naive-beam", str(beam)]
        rc, wall, rss = spawn(naive_cmd, env, work / f"naive{beam}.log")
        if rc != 0:
            raise SystemExit(f"naive loop failed:\n{(work / f'naive{beam}.log').read_text()[-3000:]}")
        naive = json.loads((work / f"naive{beam}.log").read_text().strip().splitlines()[-1])
        runs[f"naive{beam}"] = {"wall": wall, "rss": rss, "texts": naive["outputs"], "segments": len(naive["outputs"]),
                                "loop_s": naive["seconds"], "loop_tokens": naive["tokens"]}
    count_file = work / "count.json"
    count_file.write_text(json.dumps({k: v["texts"] for k, v in runs.items()}, ensure_ascii=False))
    counts = run_child("count", args, env, work, "--segments", str(count_file))
    for key, run in runs.items():
        # + 1 EOS per segment (mt's text comes back as paragraphs of joined sentences)
        run["tokens"] = counts[key]["tokens"] - counts[key]["sentences"] + run["segments"]
        run["tps"] = run["tokens"] / run["wall"]
    header = f"{'':<60}{'wall s':>8}{'sent':>6}{'tokens':>8}{'tok/s':>8}{'peak RSS':>10}"
    say("1. End to end, whole process (start, imports, load, translate)")
    say(header)
    labels = {f"naive{BEAM}": f"naive loop, beam {BEAM}",
              f"mt{BEAM}": f"mt translate (the default: {conv_name}, beam {BEAM})",
              "naive1": "naive loop, greedy (the issue's baseline)",
              "mt1": f"mt translate --beam 1 ({conv_name})"}
    for key, label in labels.items():
        run = runs[key]
        say(f"{'   ' + label:<60}{run['wall']:>8.1f}{run['segments']:>6}{run['tokens']:>8}{run['tps']:>8.1f}{run['rss']:>8.0f}MB")
    e2e = runs[f"mt{BEAM}"]["tps"] / runs[f"naive{BEAM}"]["tps"]
    e2e_greedy = runs["mt1"]["tps"] / runs["naive1"]["tps"]
    e2e_mixed = runs[f"mt{BEAM}"]["tps"] / runs["naive1"]["tps"]
    say(f"   same beam {BEAM}: {e2e:.1f}x in generated tokens/s, "
        f"{runs[f'naive{BEAM}']['wall'] / runs[f'mt{BEAM}']['wall']:.1f}x in wall time (goal >= 8x)")
    say(f"   same beam 1: {e2e_greedy:.1f}x in tokens/s, {runs['naive1']['wall'] / runs['mt1']['wall']:.1f}x in wall time")
    say(f"   default (beam {BEAM}) against the greedy loop: {e2e_mixed:.1f}x in tokens/s "
        f"(beam {BEAM} does ~{BEAM}x the decoder work per token)")
    naive_loop_tps = runs["naive1"]["loop_tokens"] / runs["naive1"]["loop_s"]
    say(f"   (the greedy loop's translation alone, model loaded: {runs['naive1']['loop_s']:.1f} s, "
        f"{runs['naive1']['loop_tokens']} tokens, {naive_loop_tps:.1f} tok/s)\n")

    # 2. engines
    engines = ["transformers", "ctranslate2:int8", "ctranslate2:float32"] + ([] if args.quick else ["torch-int8"])
    say("2. Engines: Engine.translate on the same segments, batched (model loaded, warmed up)")
    header = f"{'   engine':<34}{'beam':>5}{'load s':>8}{'time s':>8}{'batches':>8}{'sent/s':>8}{'tokens':>8}{'tok/s':>8}{'vs tf':>7}{'peak RSS':>10}"
    say(header)
    base: dict[int, float] = {}
    default_tps = None
    for name in engines:
        try:
            r = run_child("engine", args, env, work, "--engine", name, "--segments", str(seg_file), "--beams", "1,4")
        except SystemExit as e:
            if name == "torch-int8":
                say(f"   torch dynamic int8: not available ({str(e).splitlines()[-1][:80]})")
                continue
            raise
        for beam, row in sorted(r["rows"].items(), key=lambda kv: int(kv[0])):
            beam = int(beam)
            tps = row["tokens"] / row["seconds"]
            base.setdefault(beam, tps) if name == "transformers" else None
            if name == "ctranslate2:int8" and beam == BEAM:
                default_tps = tps
            label = f"   {r['engine']} {r['precision']}"
            say(f"{label:<34}{beam:>5}{r['load_s']:>8.1f}{row['seconds']:>8.1f}{row['batches']:>8}{len(segments) / row['seconds']:>8.2f}"
                f"{row['tokens']:>8}{tps:>8.1f}{tps / base.get(beam, tps):>6.1f}x{r['rss']:>8.0f}MB")
    say("")

    # 3. pipeline overhead
    p = run_child("pipeline", args, env, work, "--segments", str(seg_file), "--repeats", "1" if args.quick else "3")
    overhead = (p["plain_s"] / p["raw_s"] - 1) * 100
    say(f"3. Pipeline overhead ({p['engine']}, beam {p['beam']}, {p['segments']} segments after splitting; median of "
        f"{1 if args.quick else 3}, NullCache)")
    say(f"   engine.translate(normalised segments)                 {p['raw_s'] * 1000:>8.0f} ms")
    say(f"   translate_document(links=False, quality=False)         {p['plain_s'] * 1000:>8.0f} ms   overhead {overhead:+.1f} % "
        f"(goal <= 10 %); same translations: {p['same']}")
    t = p["timings"]
    extras = ", ".join(f"{k} {v:.0f} ms" for k, v in t.items() if k not in ("total_ms",))
    say(f"   translate_document(default: + word links + quality)   {p['full_s'] * 1000:>8.0f} ms   ({extras})\n")

    # 4. server
    sentences = segments[:SERVER_REQUESTS] if len(segments) >= SERVER_REQUESTS else (segments * SERVER_REQUESTS)[:SERVER_REQUESTS]
    say(f"4. Server: {SERVER_REQUESTS} one-sentence POST /api/translate (server.py --no-cache, default engine, "
        f"{SERVER_CLIENTS} worker threads)")
    say(f"{'   mode':<44}{'total s':>8}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}{'speed-up':>9}{'peak RSS':>10}")
    runs = [([], "batching")] + ([] if args.quick else [(["--no-batching"], "no batching")])
    for extra, label in runs:
        rows = serve_and_load(args, env, work, sentences, extra, label)
        seq = rows[0]["total"]
        for row in rows:
            who = "one after another" if row["clients"] == 1 else f"{row['clients']} concurrent clients"
            say(f"{'   ' + label + ', ' + who:<44}{row['total']:>8.1f}{row['n'] / row['total']:>8.2f}{row['p50'] * 1000:>8.0f}"
                f"{row['p95'] * 1000:>8.0f}{seq / row['total']:>8.1f}x{row['rss']:>8.0f}MB")
        if label == "batching":
            server_speedup = seq / rows[1]["total"]
    say("")
    say("Goals")
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    say(f"   end to end, mt translate vs naive loop, beam {BEAM} both (tok/s)         {e2e:>6.1f}x  goal >= 8x    {verdict(e2e >= 8)}")
    say(f"   end to end, mt translate --beam 1 vs naive loop, greedy both         {e2e_greedy:>6.1f}x  goal >= 8x    "
        f"{verdict(e2e_greedy >= 8)}")
    say(f"   end to end, mt translate (beam {BEAM}) vs the greedy naive loop          {e2e_mixed:>6.1f}x  (unequal work; informative)")
    if default_tps:
        ratio = default_tps / naive_loop_tps
        say(f"   translation only: ctranslate2 int8 beam {BEAM} batched vs greedy loop   {ratio:>6.1f}x  (model loaded; informative)")
    say(f"   pipeline overhead over the raw engine call                      {overhead:>+6.1f}%  goal <= 10 %  {verdict(overhead <= 10)}")
    say(f"   server, {SERVER_CLIENTS} concurrent clients vs one after another (req/s)        {server_speedup:>6.1f}x  goal >= 2.5x  "
        f"{verdict(server_speedup >= 2.5)}")
    say(f"\ntotal benchmark time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
