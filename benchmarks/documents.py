"""Documents: time per format for the same article against the plain-text path, and the peak
memory of a 200-page DOCX.

Model: a random-weight Marian model with the shape of Helsinki-NLP/opus-mt-vi-en (d_model 512,
6+6 layers; ``testkit/tiny_model.py``), so compute per token is the real model's. Article: the seed
news article (``../shared/data/seed``, its byline left out) in paragraphs of three sentences,
wrapped as HTML (a link and a bold word per paragraph), Markdown (emphasis and a link), DOCX (bold
runs) and SRT (each sentence over two cues): the same sentences in every format. No cache: every
run translates afresh.

Rows: the plain-text path as ``mt translate`` runs it (no word links), the plain-text path with
word links (what a document needs to carry its inline markup), and each format end to end
(``translate_file``: read, one pipeline call with links, write). "format handling" = the file's
wall time minus its pipeline call's own ``total_ms``, over the pipeline time (goal <= 10 %; the
sentences sent are checked to be exactly the plain path's, so the pipeline work is the same); whole
wall times of different runs vary with the machine's load and are shown for scale only. Then a 200-page DOCX (the
seed article 200 times with its table, header and footer; repeated sentences are translated once)
in a child process: time and peak resident memory (VmHWM) over the loaded model's.

Usage::

    .venv/bin/python benchmarks/documents.py [--model-dir DIR] [--repeats 3] [--pages 200]
"""

from __future__ import annotations

import argparse
import datetime
import html
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]  # mt and testkit from the checkout


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def article_files() -> tuple[str, dict[str, bytes]]:
    import docx
    import srt
    from testkit.document_fixtures import seed_paragraphs

    paragraphs = seed_paragraphs()
    plain = "\n\n".join(" ".join(p) for p in paragraphs)
    page, md, cues = [], [], []
    document = docx.Document()
    for n, sentences in enumerate(paragraphs):
        words = " ".join(sentences).split(" ")
        escaped = [html.escape(w, quote=False) for w in words]
        escaped[1] = f'<a href="https://vnexpress.net/{n}">{escaped[1]}</a>'
        escaped[3] = f"<b>{escaped[3]}</b>"
        page.append("<p>" + " ".join(escaped) + "</p>")
        marked = list(words)
        alpha = [i for i, w in enumerate(marked) if w[0].isalpha()]
        marked[alpha[1]] = f"[{marked[alpha[1]]}](https://vnexpress.net/{n})"
        marked[alpha[3]] = f"**{marked[alpha[3]]}**"
        md.append(" ".join(marked))
        paragraph = document.add_paragraph(" ".join(words[:3]) + " ")
        paragraph.add_run(" ".join(words[3:5])).bold = True
        paragraph.add_run(" " + " ".join(words[5:]))
        for sentence in sentences:
            half = sentence.split(" ")
            for piece in (" ".join(half[: len(half) // 2]), " ".join(half[len(half) // 2 :])):
                start = datetime.timedelta(seconds=2 * len(cues))
                cues.append(srt.Subtitle(len(cues) + 1, start, start + datetime.timedelta(seconds=1.8), piece))
    buffer = io.BytesIO()
    document.save(buffer)
    return plain, {
        "article.html": ("<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"></head><body>\n"
                         + "\n".join(page) + "\n</body></html>\n").encode(),
        "article.md": "\n\n".join(md).encode(),
        "article.docx": buffer.getvalue(),
        "article.srt": srt.compose(cues).encode(),
    }


def timed(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def child_docx(model_dir: str, pages: int) -> None:
    from testkit.document_fixtures import seed_docx

    from mt.engines.loader import load_engine
    from mt.io.documents import translate_file

    engine = load_engine(model_dir)
    engine.translate(["Xin chào."])
    data = seed_docx(pages=pages)
    before = _vm("VmRSS")
    started = time.perf_counter()
    result = translate_file(data, "report.docx", engine)
    seconds = time.perf_counter() - started
    print(json.dumps({"bytes": len(data), "blocks": len(result.blocks), "sentences": len(result.document.sentences),
                      "distinct": len({p.normalized for p in result.document.sentences}), "seconds": seconds,
                      "rss_before": before, "peak": _vm("VmHWM"), "out_bytes": len(result.data)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default=None, help="reuse a model built before (opus-mt-vi-en shape)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_docx(args.model_dir, args.pages)
        return 0

    model_dir = Path(args.model_dir or ROOT / "benchmarks" / "out" / "models" / "opus-mt-vi-en")
    if not (model_dir / "config.json").exists():
        from testkit.tiny_model import OPUS_MT_VI_EN_SHAPE, build_tiny_marian

        build_tiny_marian(model_dir, **OPUS_MT_VI_EN_SHAPE)
    from mt.engines.loader import load_engine
    from mt.io.documents import format_for, translate_file
    from mt.io.blocks import translate_blocks
    from mt.pipeline import translate_document

    engine = load_engine(str(model_dir))
    plain, files = article_files()
    translate_document(plain, engine, links=True, quality=False)  # warm up (first calls, links)
    print(f"engine: {engine.name}; article: {len(plain):,} characters, "
          f"{len(translate_document(plain, engine, links=False, quality=False).sentences)} sentences; "
          f"median of {args.repeats}")
    base = timed(lambda: translate_document(plain, engine, links=False, quality=False), args.repeats)
    linked = timed(lambda: translate_document(plain, engine, links=True, quality=False), args.repeats)
    wanted = [p.normalized for p in translate_document(plain, engine, links=False, quality=False).sentences]
    print(f"{'path':<26}{'seconds':>9}{'same sentences':>16}{'format handling':>17}{'read+write ms':>15}")
    print(f"{'plain text (mt translate)':<26}{base:>9.3f}{'':>16}{'':>17}{'':>15}")
    print(f"{'plain text + links':<26}{linked:>9.3f}{'':>16}{'':>17}{'':>15}")
    for name, data in files.items():
        fmt = format_for(name)
        walls, handling = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            result = translate_file(data, name, engine)
            wall = time.perf_counter() - started
            walls.append(wall)
            handling.append(wall - result.document.timings["total_ms"] / 1000)
        same = [p.normalized for p in result.document.sentences] == wanted
        seconds, extra = statistics.median(walls), statistics.median(handling)
        started = time.perf_counter()
        fresh_blocks, fresh_state = fmt.read(data, name)
        read_ms = (time.perf_counter() - started) * 1000
        done = translate_blocks(fresh_blocks, engine)[1]
        started = time.perf_counter()
        fmt.write(fresh_state, done)
        io_ms = read_ms + (time.perf_counter() - started) * 1000
        print(f"{name:<26}{seconds:>9.3f}{'yes' if same else 'no':>16}{extra / (seconds - extra):>+16.2%}"
              f"{io_ms:>15.1f}")

    command = [sys.executable, __file__, "--child", "--model-dir", str(model_dir), "--pages", str(args.pages)]
    figures = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
    print(f"{args.pages}-page DOCX: {figures['bytes'] / 1e6:.2f} MB, {figures['blocks']:,} blocks, "
          f"{figures['sentences']:,} sentences ({figures['distinct']} distinct), {figures['seconds']:.1f} s; "
          f"peak RSS {figures['peak'] / 2**20:.0f} MiB (model loaded: {figures['rss_before'] / 2**20:.0f} MiB, "
          f"+{(figures['peak'] - figures['rss_before']) / 2**20:.0f} MiB for the document)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
