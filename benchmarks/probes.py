"""Cost probes (issue #20): adversarial documents and word-link inputs sent to a real server.

Starts ``python server.py`` on loopback with the tiny random-weight model (as benchmarks/load.py
does), sends each probe once and prints its status, seconds and the server process tree's RSS
growth (VmRSS of the server and its children, sampled every 20 ms while the probe runs) against a
bound: the growth under ``--mb`` (300) and the time under ``--seconds`` (default 5) OR within
``--ratio`` (2) times an ordinary request of the same size. That reference is an IWSLT article
(../shared/data; Vietnamese filler without it) of the probe's body size (at most ``--ref-bytes``,
under the server's character cap), sent to the same endpoint (as a .txt file for file probes); it
is measured only for probes over the absolute bound unless ``--all-refs``: the tiny random-weight
model decodes every sentence to its length cap, so an ordinary article is slow too, and a probe
as slow as an ordinary input of its size costs what any input costs. The printout says which
criterion passed.

    python benchmarks/probes.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # testkit from the checkout

from testkit.procs import tree_rss_mb  # noqa: E402
from testkit.server_helpers import start_server  # noqa: E402


def _docx(parts: dict[str, bytes], types: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as package:
        package.writestr("[Content_Types].xml", types)
        for name, body in parts.items():
            package.writestr(name, body)
    return out.getvalue()


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
HEADER = "application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"


def _types(overrides: list[tuple[str, str]], extra: str = "") -> str:
    rows = "".join(f'<Override PartName="/{p}" ContentType="{k}"/>' for p, k in overrides)
    return f'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">{extra}{rows}</Types>'


def _big_xml(size: int) -> bytes:
    para = f'<w:p><w:r><w:t>Xin chào</w:t></w:r></w:p>'
    return f'<w:document {W}><w:body>{para * (size // len(para))}</w:body></w:document>'.encode()


def probes() -> list[tuple[str, str, bytes, str]]:
    """(name, path, body, file name or 'json')."""
    runs = "".join(f'<w:r><w:rPr><w:{"b" if n % 2 else "i"}/></w:rPr><w:t></w:t></w:r>' for n in range(100_000))
    empty_runs = _docx({"word/document.xml": f'<w:document {W}><w:body><w:p><w:r><w:t>Xin chào</w:t></w:r>{runs}'
                                             '</w:p></w:body></w:document>'.encode()},
                       _types([("word/document.xml", MAIN)]))
    overrides = _docx({"word/document.xml": _big_xml(1024 * 1024)}, _types([("word/document.xml", MAIN)] * 41))
    headers = _docx({"word/document.xml": _big_xml(4096), **{f"word/header{n}.xml": _big_xml(1024 * 1024)
                                                              for n in range(60)}},
                    _types([("word/document.xml", MAIN)] + [(f"word/header{n}.xml", HEADER) for n in range(60)]))
    comment = _docx({"word/document.xml": _big_xml(4096)}, _types([("word/document.xml", MAIN)], "<!-- c --><?pi x?>"))
    cols = 6000
    table = "|" + "|".join("ô" * 8 for _ in range(cols)) + "|\n|" + "---|" * cols + "\n|" + "x|" * cols + "\n"
    return [
        ("md_table_6000_cols", "/api/translate_file", table.encode(), "t.md"),
        ("md_nested_star_3000", "/api/translate_file", ("*a " * 3000 + "b" + "*" * 3000).encode(), "t.md"),
        ("md_a]_30k", "/api/translate_file", ("a]" * 30_000).encode(), "t.md"),
        ("md_&#_30k", "/api/translate_file", ("&#" * 30_000).encode(), "t.md"),
        ("html_<a_x40000", "/api/translate_file", ("<a " * 40_000).encode(), "t.html"),
        ("html_<!_80KB", "/api/translate_file", ("<!" * 40_000).encode(), "t.html"),
        ("html_<b></b>_x80000", "/api/translate_file", ("<p>Xin " + "<b></b>" * 80_000 + " chào</p>").encode(), "t.html"),
        ("html_nested_2000", "/api/translate_file", ("<p>" + "<b>" * 2000 + "Xin chào" + "</b>" * 2000).encode(), "t.html"),
        ("docx_100k_empty_runs", "/api/translate_file", empty_runs, "t.docx"),
        ("docx_41_overrides", "/api/translate_file", overrides, "t.docx"),
        ("docx_60_headers", "/api/translate_file", headers, "t.docx"),
        ("docx_comment_in_types", "/api/translate_file", comment, "t.docx"),
        ("vtt_bad_timing", "/api/translate_file", b"WEBVTT\n\n00:00:04,000 --> 00:00:05.000\nXin\n", "t.vtt"),
        ("empty_html", "/api/translate_file", b"", "t.html"),
        ("links_a,_16370", "/api/translate", json.dumps({"text": "a," * 16370}).encode(), "json"),
        ("links_a,_10000_stream", "/api/translate/stream", json.dumps({"text": "a," * 10000}).encode(), "json"),
        ("glossary_5000_shared_first", "/api/translate", json.dumps({  # entries sharing first syllables
            "text": " ".join(["tên lửa"] * 4000),
            "glossary": {"tên " + "lửa " * (1 + n % 12) + f"x{n}": "r" for n in range(5000)},
        }, ensure_ascii=False).encode(), "json"),
    ]


FILLER = ("Hà Nội là thủ đô của Việt Nam, một thành phố có hơn một nghìn năm lịch sử. "
          "Mỗi sáng, người dân đi bộ quanh hồ Hoàn Kiếm trước khi bắt đầu ngày làm việc. ")


def article(size: int) -> str:
    """An ordinary Vietnamese article of about ``size`` UTF-8 bytes: IWSLT talks' sentences,
    five to a paragraph (filler text if ../shared/data is missing)."""
    try:
        from testkit.shared_data import iwslt_segments

        sentences = [line for split in ("tst2012", "tst2013", "dev2010") for line in iwslt_segments(split, "vi")]
    except (OSError, ImportError):
        sentences = []
    sentences = sentences or FILLER.replace(". ", ".\n").split("\n")
    out, used, n = [], 0, 0
    while True:
        sentence = sentences[n % len(sentences)].strip()
        piece = sentence + ("\n\n" if n % 5 == 4 else " ")
        if used + len(piece.encode()) > size:
            return "".join(out).strip() or sentence[: max(1, size // 3)]
        out.append(piece)
        used += len(piece.encode())
        n += 1


def reference(body: bytes, filename: str, limit: int) -> tuple[int, bytes, str]:
    """(size, body, file name) of the ordinary request of ``body``'s size (at most ``limit``)."""
    if filename == "json":
        size = min(len(json.loads(body)["text"].encode()), limit)
        return size, json.dumps({"text": article(size)}, ensure_ascii=False).encode(), "json"
    size = min(len(body), limit)
    return size, article(size).encode(), "ref.txt"


def _send(port: int, path: str, body: bytes, name: str) -> int:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    if name == "json":
        headers = {"Content-Type": "application/json"}
    else:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode() + body + f"\r\n--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    connection.request("POST", path, body, headers)
    response = connection.getresponse()
    response.read()
    return response.status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--mb", type=float, default=300.0)
    parser.add_argument("--ratio", type=float, default=2.0)
    parser.add_argument("--ref-bytes", type=int, default=95_000, help="largest reference article (bytes)")
    parser.add_argument("--all-refs", action="store_true", help="measure the reference of every probe")
    parser.add_argument("--only", nargs="*")
    options = parser.parse_args(argv)
    from testkit.tiny_model import build_tiny_marian

    work = Path(tempfile.mkdtemp(prefix="mt-probes-"))
    model = build_tiny_marian(work / "tiny-marian-vi-en")
    server = start_server(["--model", str(model), "--no-cache", "--max-body-bytes", str(32 * 1024 * 1024)])
    failed = 0
    try:
        pid = server.process.pid
        references: dict[tuple, float] = {}

        def measure(path: str, body: bytes, filename: str) -> tuple[object, float, float]:
            base, peak, done = tree_rss_mb(pid), [0], threading.Event()

            def sample():
                while not done.is_set():
                    peak[0] = max(peak[0], tree_rss_mb(pid))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.perf_counter()
            try:
                status = _send(server.port, path, body, filename)
            except OSError as error:
                status = f"error {error}"
            seconds = time.perf_counter() - started
            done.set()
            sampler.join()
            return status, seconds, max(0, peak[0] - base)

        print(f"{'probe':26s} {'code':>4} {'time':>9} {'RSS':>9}  {'ordinary request of its size':32s} verdict",
              flush=True)
        for name, path, body, filename in probes():
            if options.only and name not in options.only:
                continue
            status, seconds, growth = measure(path, body, filename)
            fast, linear, ref_text = seconds < options.seconds, False, "-"
            if options.all_refs or not fast:
                size, ref_body, ref_name = reference(body, filename, options.ref_bytes)
                if (path, size) not in references:
                    ref_status, references[path, size], _ = measure(path, ref_body, ref_name)
                    if ref_status != 200:
                        references[path, size] = float("nan")
                        print(f"  (reference for {name}: status {ref_status})", flush=True)
                ref_seconds = references[path, size]
                linear = seconds <= options.ratio * ref_seconds
                ref_text = f"{size / 1000:6.1f} KB {ref_seconds:7.2f} s  x{seconds / ref_seconds:5.2f}"
            ok = (fast or linear) and growth < options.mb and status != 500
            failed += not ok
            why = (f"RSS >= {options.mb:g} MB" if growth >= options.mb else f"< {options.seconds:g} s" if fast
                   else f"<= {options.ratio:g}x ordinary" if linear
                   else f"> {options.seconds:g} s and > {options.ratio:g}x ordinary")
            print(f"{name:26s} {status!s:>4} {seconds:7.2f} s {growth:6.1f} MB  {ref_text:32s} "
                  f"{'PASS' if ok else 'FAIL'} ({why})", flush=True)
    finally:
        server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
