"""XLIFF 1.2, the exchange format CAT tools (OmegaT, Trados, memoQ, MateCat) import most: the
aligned document out for post-editing, and the post-edited pairs back in (``mt memory import``).

Written and read with translate-toolkit (``translate.storage.xliff``), whose classes default to
XLIFF 1.1: the two subclasses below only name the 1.2 namespace. One ``trans-unit`` per sentence
(id = the sentence's index in the document); bylines (names, passed through untranslated) and empty
segments get none, as in the TMX download. Model output is ``needs-review-translation``, memory
hits ``translated``; quality, flag, decoder confidence and origin are ``note``s, memory
suggestions ``alt-trans`` with their match quality. Reading is bounded: a size cap, no DTD, no
entity expansion, no network (lxml), and a clear InputError for anything that is not XLIFF 1.x.
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree
from translate.storage import xliff as toolkit

from mt import __version__
from mt.errors import InputError

from .formats import XML_INVALID

XLIFF_NS = "urn:oasis:names:tc:xliff:document:1.2"
MEDIA_TYPE = "application/x-xliff+xml"
MAX_XLIFF_BYTES = 64 * 1024 * 1024  # a memory import; a 1,000-page book's XLIFF is ~10 MB
TOOL = "mt-vi-en"
REVIEW, TRANSLATED = "needs-review-translation", "translated"


class _Unit12(toolkit.Xliff1Unit):
    namespace = XLIFF_NS


class _File12(toolkit.Xliff1File):
    UnitClass = _Unit12
    namespace = XLIFF_NS
    XMLskeleton = (f"<?xml version='1.0' ?>\n<xliff version='1.2' xmlns='{XLIFF_NS}'>\n"
                   "<file original='NoName' source-language='vi' datatype='plaintext'>\n<body>\n</body>\n</file>\n"
                   "</xliff>")


def _clean(text: str) -> str:
    """XML 1.0 cannot carry C0 controls (other than tab and newlines) even escaped."""
    return XML_INVALID.sub("", text)


def _store(original: str) -> tuple[_File12, str]:
    store = _File12(sourcelanguage="vi", targetlanguage="en")
    return store, _clean(original) or "document"


def _add(store: _File12, original: str, uid: str, source: str, target: str, state: str):
    unit = store.addsourceunit(_clean(source), filename=original, createifmissing=True)
    unit.setid(uid)
    unit.settarget(_clean(target))
    unit.set_state_n(unit.S_TRANSLATED if state == TRANSLATED else unit.S_NEEDS_REVIEW)
    return unit


def _finish(store: _File12, original: str) -> bytes:
    """The file's tool header; an empty document still has its <file> and empty <body>."""
    node = store.getfilenode(original, createifmissing=True)
    node.set("tool-id", TOOL)
    header = etree.Element(f"{{{XLIFF_NS}}}header")
    node.insert(0, header)  # XLIFF 1.2: <header> before <body>
    etree.SubElement(header, f"{{{XLIFF_NS}}}tool", {"tool-id": TOOL, "tool-name": TOOL, "tool-version": __version__})
    return bytes(store)


def write_xliff(document, original: str = "document") -> bytes:
    """The aligned document as XLIFF 1.2 (UTF-8): one unit per translated sentence, the sentence
    as written for source, the English for target, notes for what a reviewer weighs."""
    store, original = _store(original)
    for pair in document.sentences:
        if pair.kind == "byline" or not pair.source.strip() or not pair.translation.strip():
            continue
        memory = getattr(pair, "origin", "model") == "memory"
        unit = _add(store, original, str(pair.index), pair.source, pair.translation,
                    TRANSLATED if memory else REVIEW)
        for note in _notes(pair, memory):
            unit.addnote(note, origin=TOOL)
        for suggestion in getattr(pair, "suggestions", None) or ():
            unit.addalttrans(_clean(suggestion["target"]), sourcetxt=_clean(suggestion["source"]), lang="en",
                             origin="translation-memory", matchquality=f"{100 * suggestion['score']:.0f}")
    return _finish(store, original)


def _notes(pair, memory: bool) -> list[str]:
    notes = ["origin: translation memory" if memory else
             f"origin: machine translation{' (cached)' if pair.cached else ''}, needs review"]
    if pair.quality is not None:
        notes.append(f"quality: {pair.quality:.3f}{' (flagged: low confidence)' if pair.flagged else ''}")
    elif pair.flagged:
        notes.append("flagged: low confidence")
    if pair.confidence is not None:
        notes.append(f"decoder confidence: {pair.confidence:.3f}")
    if pair.normalized and pair.normalized != pair.source:
        notes.append(f"model input: {_clean(pair.normalized)}")
    return notes


def write_xliff_pairs(pairs: Iterable[tuple[str, str]], original: str = "translation-memory") -> bytes:
    """Vietnamese/English pairs (a memory export) as XLIFF 1.2 units in state ``translated``."""
    store, original = _store(original)
    for index, (source, target) in enumerate(pairs):
        if source.strip() and target.strip():
            _add(store, original, str(index), source, target, TRANSLATED)
    return _finish(store, original)


def _checked_tree(data: bytes, name: str) -> etree._ElementTree:
    """Parsed with limits: InputError for oversized, malformed, DTD-carrying or non-XLIFF-1.x input."""
    if len(data) > MAX_XLIFF_BYTES:
        raise InputError(f"{name}: {len(data):,} bytes; an XLIFF file may have at most {MAX_XLIFF_BYTES:,}")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as error:
        raise InputError(f"{name}: not well-formed XML ({error.msg}); "
                         "export the file as XLIFF 1.2") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise InputError(f"{name}: XLIFF must not declare a DTD (<!DOCTYPE>)")
    namespace, _, local = root.tag.rpartition("}")
    version = root.get("version", "")
    if local != "xliff":
        raise InputError(f"{name}: not an XLIFF file (the root element is <{local}>, not <xliff>)")
    if version.startswith("2") or ":2." in namespace:
        raise InputError(f"{name}: XLIFF {version or '2'} is not supported; export XLIFF 1.2 from the CAT tool")
    if not namespace.lstrip("{").startswith("urn:oasis:names:tc:xliff:document:1.") and not version.startswith("1."):
        raise InputError(f"{name}: not XLIFF 1.x (namespace {namespace.lstrip('{') or 'none'}, version "
                         f"{version or 'none'})")
    if not any(isinstance(child.tag, str) and child.tag.endswith("file") for child in root):
        raise InputError(f"{name}: an XLIFF file without a <file> element: nothing to read")
    return tree


def read_xliff(data: bytes, name: str = "XLIFF") -> list[tuple[str, str, str]]:
    """``(source, target, state)`` of every unit that has a non-empty target, in file order.

    ``state`` is the target's XLIFF state as written (``translated``, ``final``,
    ``needs-review-translation``...); without one, ``translated`` for an approved unit, else "".
    Inline codes (``<g>``, ``<x/>``) read as their text, as translate-toolkit renders them."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    _checked_tree(data, name)
    try:
        store = toolkit.xlifffile.parsestring(data)
    except (ValueError, AssertionError, etree.XMLSyntaxError, StopIteration) as error:
        raise InputError(f"{name}: not a readable XLIFF 1.x file ({error})") from None
    out = []
    for unit in store.units:
        if unit.isheader():
            continue
        source, target = str(unit.source or ""), str(unit.target or "")
        if not target.strip() or not source.strip():
            continue
        node = unit.getlanguageNode(lang=None, index=1)
        state = node.get("state", "") if node is not None else ""
        out.append((source, target, state or (TRANSLATED if unit.isapproved() else "")))
    return out
