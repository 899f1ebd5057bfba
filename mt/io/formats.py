"""Reading articles and writing documents in standard formats (plain text, JSONL, TSV, TMX 1.4).

The CLI and the web downloads both use these, so a file from either is the same.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from mt import __version__
from mt.errors import InputError

# Characters XML 1.0 forbids even when escaped: dropped from TMX output.
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def decode_article(data: bytes, name: str = "input") -> str:
    """Decode UTF-8 (with or without BOM); refuse binary or other encodings with a clear message."""
    if b"\x00" in data[:65536]:
        raise InputError(f"{name}: looks like a binary file, not UTF-8 text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{name}: not valid UTF-8 (byte {error.start}); save the article as UTF-8 text"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_article(path: str | Path) -> str:
    """Read an article from a path, or from standard input when the path is '-'."""
    import sys

    if str(path) == "-":
        return decode_article(sys.stdin.buffer.read(), "<stdin>")
    return decode_article(read_bytes(path), str(path))


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes, or one InputError line a user can act on (missing, a folder, no permission)."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write through a temporary file and rename, so a killed run never leaves half a file.

    The temporary file is created with mode 0666 and the kernel applies the umask (and any
    default ACL), so the result has the mode of any file the user writes (mkstemp's 0600 would
    stick to it after the rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def english_text(document) -> str:
    return document.translation + "\n"


def to_jsonl(document) -> str:
    """One JSON record per segment; offsets point into the original article."""
    return "".join(json.dumps(pair.to_dict(), ensure_ascii=False) + "\n" for pair in document.sentences)


def tsv_cell(value: str) -> str:
    return value.replace("\t", " ").replace("\n", " ")


def to_tsv(document) -> str:
    """Vietnamese<TAB>English<TAB>decoder confidence (blank when none) per segment: what
    spreadsheet and corpus tools read; tools that take two columns ignore the third."""
    return "".join(f"{tsv_cell(p.normalized)}\t{tsv_cell(p.translation)}\t{confidence_cell(p.confidence)}\n"
                   for p in document.sentences)


def confidence_cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def xml_text(value: str) -> str:
    return escape(XML_INVALID.sub("", value))


def tmx_header(model: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<tmx version="1.4">\n'
        f'  <header creationtool="mt-vi-en" creationtoolversion={quoteattr(__version__)} '
        f'datatype="plaintext" segtype="sentence" adminlang="en" srclang="vi" o-tmf="mt-vi-en"'
        f' o-encoding="UTF-8">\n'
        f'    <prop type="x-model">{xml_text(model)}</prop>\n'
        "  </header>\n  <body>\n"
    )


def tmx_unit(vietnamese: str, english: str) -> str:
    return (
        "    <tu>\n"
        f'      <tuv xml:lang="vi"><seg>{xml_text(vietnamese)}</seg></tuv>\n'
        f'      <tuv xml:lang="en"><seg>{xml_text(english)}</seg></tuv>\n'
        "    </tu>\n"
    )


TMX_FOOTER = "  </body>\n</tmx>\n"


def to_tmx(document) -> str:
    """TMX 1.4: one translation unit per translated segment, Vietnamese source and English target."""
    units = [
        tmx_unit(pair.normalized, pair.translation)
        for pair in document.sentences
        if pair.kind != "byline" and pair.translation
    ]
    return tmx_header(document.model) + "".join(units) + TMX_FOOTER


def alignment_jsonl(result) -> str:
    """One link per line, {"vi": [indices], "en": [indices]}: every unit of both sides exactly once."""
    return "".join(json.dumps({"vi": list(link.vi), "en": list(link.en)}) + "\n" for link in result.links)


def alignment_tsv(result) -> str:
    """Vietnamese group, English group and similarity per link; an empty side marks no counterpart."""
    rows = []
    for link in result.links:
        vi, en = result.vi_text(link), result.en_text(link)
        rows.append(f"{tsv_cell(vi)}\t{tsv_cell(en)}\t{link.score:.3f}\n")
    return "".join(rows)


def alignment_tmx(result) -> str:
    """TMX 1.4 of the links that have both sides (unmatched sentences have no translation unit)."""
    units = [tmx_unit(result.vi_text(link), result.en_text(link)) for link in result.links if link.vi and link.en]
    return tmx_header("sentence-alignment") + "".join(units) + TMX_FOOTER
