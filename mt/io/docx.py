"""DOCX in and out: paragraphs of the body, tables, text boxes, headers, footers, foot/endnotes.

The package is read with ``zipfile`` and only the WordprocessingML parts holding text are
parsed (lxml, no entities, no network); every other part (styles, images, settings, relations)
is copied byte for byte, and so are the parts where nothing was translated. Limits come first,
before any XML is parsed: the file must be a zip, hold at most ``MAX_ENTRIES`` members and
``MAX_UNCOMPRESSED`` bytes in all, no member inflating more than ``MAX_RATIO`` times (zip bombs).

Within a paragraph, a block is a stretch of plain text runs (``<w:r>`` with ``<w:t>`` only) and
hyperlinks; anything else (a tab, a break, a drawing, a field, tracked changes) stays where it is
and separates blocks. The run holding most of the text gives the block's base formatting; runs
formatted differently (bold, italic, a colour) and hyperlinks are spans, carried to the English
words by the word links; the new runs copy the original runs' properties.
"""

from __future__ import annotations

import copy
import io
import zipfile
from dataclasses import dataclass, field

from .blocks import Block, DocumentError, Span, TranslatedBlock, partition

MAX_ENTRIES = 10_000  # members of the package
MAX_UNCOMPRESSED = 256 * 1024 * 1024  # all members together (streamed, one chunk at a time, never held)
MAX_TEXT_PARTS = 1_000  # distinct WordprocessingML parts holding text
MAX_TEXT_BYTES = 16 * 1024 * 1024  # their XML together: what lxml holds as trees (about 10x in memory)
MAX_RATIO = 200  # per member over RATIO_FLOOR: real XML compresses 5-30x
RATIO_FLOOR = 64 * 1024
_CHUNK = 1024 * 1024
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
_TEXT_PARTS = tuple(
    f"application/vnd.{kind}+xml"
    for kind in (
        "openxmlformats-officedocument.wordprocessingml.document.main",
        "ms-word.document.macroEnabled.main",
        "openxmlformats-officedocument.wordprocessingml.template.main",
        "ms-word.template.macroEnabledTemplate.main",
        "openxmlformats-officedocument.wordprocessingml.header",
        "openxmlformats-officedocument.wordprocessingml.footer",
        "openxmlformats-officedocument.wordprocessingml.footnotes",
        "openxmlformats-officedocument.wordprocessingml.endnotes",
    )
)
_RUN_TEXT = {f"{{{W}}}t", f"{{{W}}}rPr", f"{{{W}}}lastRenderedPageBreak"}
_MARKERS = {f"{{{W}}}{tag}" for tag in ("bookmarkStart", "bookmarkEnd", "proofErr", "permStart", "permEnd",
                                        "commentRangeStart", "commentRangeEnd")}


def _w(tag: str) -> str:
    return f"{{{W}}}{tag}"


@dataclass
class DocxDocument:
    data: bytes
    parts: dict = field(default_factory=dict)  # part name -> lxml root of the parts holding text
    changed: set = field(default_factory=set)


def _open_zip(data: bytes, name: str) -> zipfile.ZipFile:
    """The package, every member checked before any XML is parsed: declared sizes and ratios, the
    compression method, no encryption, then each member streamed once in 1 MiB chunks (never held
    whole) so a bad CRC, a lying size or a local header naming another file is an input error here,
    not a crash after the translation."""
    if not data.startswith(b"PK"):
        raise DocumentError(f"{name}: not a DOCX file (a DOCX is a zip package; this is not one)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, NotImplementedError) as error:
        raise DocumentError(f"{name}: not a valid DOCX (broken zip: {error})") from None
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise DocumentError(f"{name}: {len(infos):,} members in the package; the limit is {MAX_ENTRIES:,}")
    total = sum(info.file_size for info in infos)
    if total > MAX_UNCOMPRESSED:
        raise DocumentError(f"{name}: unpacks to {total:,} bytes; the limit is {MAX_UNCOMPRESSED:,} (zip bomb?)")
    for info in infos:
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(1, info.compress_size):
            raise DocumentError(f"{name}: member {info.filename} inflates {info.file_size // max(1, info.compress_size):,}x"
                                f" (limit {MAX_RATIO}x): refused as a zip bomb")
        if info.flag_bits & 0x1:
            raise DocumentError(f"{name}: member {info.filename} is encrypted: save the document without a password")
        if info.compress_type not in _METHODS:
            raise DocumentError(f"{name}: member {info.filename} uses compression method {info.compress_type}, "
                                "which this server does not unpack")
    for info in infos:
        _stream(archive, info, name)
    return archive


def _stream(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, keep: bool = False) -> bytes:
    """One member read in chunks; at most its declared size (+1 to catch a lie) is ever held."""
    chunks, size = [], 0
    try:
        with archive.open(info) as handle:
            while True:
                chunk = handle.read(min(_CHUNK, info.file_size + 1 - size))
                if not chunk:
                    break
                size += len(chunk)
                if size > info.file_size:
                    raise DocumentError(f"{name}: {info.filename} is larger than its header says: refused")
                if keep:
                    chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, ValueError) as error:
        raise DocumentError(f"{name}: cannot unpack {info.filename}: {error}") from None
    return b"".join(chunks)


def _read_member(archive: zipfile.ZipFile, member: str, name: str) -> bytes:
    return _stream(archive, archive.getinfo(member), name, keep=True)


def _parse(data: bytes, member: str, name: str):
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, load_dtd=False)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        raise DocumentError(f"{name}: {member} is not valid XML ({error})") from None


def _text_parts(archive: zipfile.ZipFile, name: str) -> list[str]:
    """The distinct parts holding text (an override listed twice is read once), within the caps."""
    try:
        types = _parse(_read_member(archive, "[Content_Types].xml", name), "[Content_Types].xml", name)
    except KeyError:
        raise DocumentError(f"{name}: not a Word document (no [Content_Types].xml)") from None
    found: dict[str, str] = {}
    for override in types:
        if isinstance(override.tag, str) and override.tag.endswith("Override"):  # not a comment or PI
            kind = override.get("ContentType")
            if kind in _TEXT_PARTS:
                found.setdefault(override.get("PartName", "").lstrip("/"), kind)
    mains = [part for part, kind in found.items() if kind.endswith(".main+xml")]
    if not mains:
        raise DocumentError(f"{name}: not a Word document (no main document part)")
    names = set(archive.namelist())
    missing = [part for part in mains if part not in names]
    if missing:
        raise DocumentError(f"{name}: the main document part {missing[0]} is listed but missing from the package")
    parts = [part for part in found if part in names]
    if len(parts) > MAX_TEXT_PARTS:
        raise DocumentError(f"{name}: {len(parts):,} text parts; the limit is {MAX_TEXT_PARTS:,}")
    size = sum(archive.getinfo(part).file_size for part in parts)
    if size > MAX_TEXT_BYTES:
        raise DocumentError(f"{name}: {size:,} bytes of text XML; the limit is {MAX_TEXT_BYTES:,}")
    return parts


def _plain_run(run) -> bool:
    return run.tag == _w("r") and all(child.tag in _RUN_TEXT for child in run)


def _run_text(run) -> str:
    return "".join(child.text or "" for child in run if child.tag == _w("t"))


def _props(run) -> bytes:
    from lxml import etree

    props = run.find(_w("rPr"))
    if props is None:
        return b""
    props = copy.deepcopy(props)
    for child in list(props):
        if child.tag in (_w("rsid"), _w("lang"), _w("noProof")):  # not formatting
            props.remove(child)
    return etree.tostring(props, method="c14n")


def _paragraph_blocks(paragraph, part: str) -> list[Block]:
    blocks: list[Block] = []
    items: list = []  # (element, text, formatting key, hyperlink or None, first run)

    def flush():
        if items and "".join(text for _, text, *_ in items).strip():
            blocks.append(_block(items, part, paragraph))
        items.clear()

    for child in paragraph:
        if child.tag == _w("pPr") or child.tag in _MARKERS:
            continue
        if _plain_run(child):
            items.append((child, _run_text(child), _props(child), None, child))
        elif child.tag == _w("hyperlink") and len(child) and all(_plain_run(r) or r.tag in _MARKERS for r in child):
            runs = [r for r in child if _plain_run(r)]
            if runs:
                items.append((child, "".join(map(_run_text, runs)), _props(runs[0]), child, runs[0]))
        else:
            flush()
    flush()
    return blocks


def _block(items: list, part: str, paragraph) -> Block:
    by_key: dict = {}
    for _, text, key, link, _ in items:
        if link is None:
            by_key[key] = by_key.get(key, 0) + len(text)
    base_key = max(by_key, key=by_key.get) if by_key else None
    base_run = next((run for _, _, key, link, run in items if link is None and key == base_key), items[0][4])
    text, spans, position = [], [], 0
    for element, piece, key, link, run in items:
        if link is not None or key != base_key:
            previous = spans[-1] if spans else None
            if previous and link is None and previous.data[1] is None and previous.data[2] == key and previous.end == position:
                previous.end += len(piece)  # the same formatting split over two runs: one span
            else:
                spans.append(Span(position, position + len(piece), (run, link, key)))
        text.append(piece)
        position += len(piece)
    return Block("".join(text), spans, ref=(part, paragraph, [item[0] for item in items], base_run))


def read_docx(data: bytes, name: str = "input.docx") -> tuple[list[Block], DocxDocument]:
    archive = _open_zip(data, name)
    document = DocxDocument(data)
    blocks: list[Block] = []
    for part in _text_parts(archive, name):
        root = _parse(_read_member(archive, part, name), part, name)
        document.parts[part] = root
        for paragraph in root.iter(_w("p")):
            blocks.extend(_paragraph_blocks(paragraph, part))
    return blocks, document


def _clean(text: str) -> str:
    """Characters XML 1.0 cannot carry are dropped from the English."""
    return "".join(c for c in text if c in "\t\n\r" or " " <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd" or c > "\uffff")


def _new_run(template, text: str):
    run = copy.deepcopy(template)
    for child in list(run):
        if child.tag != _w("rPr"):
            run.remove(child)
    t = run.makeelement(_w("t"), {})
    t.text = _clean(text)
    t.set(_XML_SPACE, "preserve")
    run.append(t)
    return run


def _rewrite(item: TranslatedBlock) -> None:
    part, paragraph, elements, base_run = item.block.ref
    spans = item.block.spans
    new = []
    for piece, index in partition(item.text, spans, item.spans):
        if index is None:
            if piece:
                new.append(_new_run(base_run, piece))
            continue
        run, link, _ = spans[index].data
        if link is None:
            if piece:
                new.append(_new_run(run, piece))
            continue
        shell = link.makeelement(link.tag, dict(link.attrib))
        if piece:
            shell.append(_new_run(run, piece))
        new.append(shell)  # an empty hyperlink stays: the link is never lost
    position = paragraph.index(elements[0])  # lxml's own search, not a Python list per block
    for element in elements:
        paragraph.remove(element)
    for offset, element in enumerate(new):
        paragraph.insert(position + offset, element)


def write_docx(document: DocxDocument, translated: list[TranslatedBlock]) -> bytes:
    from lxml import etree

    for item in translated:
        _rewrite(item)
        document.changed.add(item.block.ref[0])
    source = zipfile.ZipFile(io.BytesIO(document.data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():  # every member was checked by the reader; guarded again
            if info.filename in document.changed:
                body = etree.tostring(document.parts[info.filename], xml_declaration=True, encoding="UTF-8",
                                      standalone=True)
            else:
                body = _stream(source, info, "document", keep=True)
            target.writestr(info, body, compress_type=info.compress_type)
    return out.getvalue()
