"""Translation memory files in and out: TMX 1.4 (translate-toolkit's ``translate.storage.tmx``), a
two-column TSV, and XLIFF 1.2 (:mod:`mt.io.xliff`).

What ``mt memory import`` reads: a TMX from any CAT tool (``xml:lang`` vi / vi-VN and en / en-US,
inline codes dropped), the ``.tmx`` that ``mt align --tmx`` and ``mt batch`` write, a TSV of
Vietnamese<TAB>English (header line optional, further columns ignored, so ``mt align --tsv`` and
``mt batch``'s ``.tsv`` read too), an XLIFF back from post-editing (units still marked as needing
review are left out unless asked for). Exports keep each entry's project and origin in the TMX
(``prop``) and its date (``creationdate``), so an export imports back as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Iterable

from ..cache.memory import MemoryEntry
from ..errors import InputError
from .formats import XML_INVALID, decode_article

FORMATS = {".tmx": "tmx", ".tsv": "tsv", ".tab": "tsv", ".txt": "tsv", ".xliff": "xliff", ".xlf": "xliff"}
SOURCE_HEADERS = {"source", "src", "vi", "vietnamese", "tiếng việt", "vi-vn"}
TARGET_HEADERS = {"target", "tgt", "en", "english", "en-us", "en-gb", "translation"}
UNREVIEWED = {"new", "initial", "needs-translation", "needs-review-translation", "needs-adaptation", "needs-l10n",
              "needs-review-adaptation", "needs-review-l10n"}
INLINE_CODES = {"bpt", "ept", "ph", "it", "ut"}  # TMX markup of the original format: not text
TSV_HEADER = "source\ttarget\n"


@dataclass
class Read:
    """The entries of a file and what was left out, in words for the user."""

    entries: list[MemoryEntry] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def file_format(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{name}: a memory file is .tmx, .tsv or .xliff (.xlf), not {suffix or 'without extension'}")
    return FORMATS[suffix]


def read_memory_file(data: bytes, name: str, *, unreviewed: bool = False, project: str | None = None) -> Read:
    """The entries of a TMX, TSV or XLIFF file (by ``name``'s extension), origin "imported"."""
    kind = file_format(name)
    if kind == "tmx":
        found = read_tmx(data, name)
    elif kind == "tsv":
        found = read_tsv(data, name)
    else:
        found = _read_xliff(data, name, unreviewed)
    if project:
        found.entries = [MemoryEntry(e.source, e.target, e.origin, project) for e in found.entries]
    return found


# -- TMX -------------------------------------------------------------------------------------------
def _lang_matches(lang: str, wanted: str) -> bool:
    lang = lang.lower().replace("_", "-")
    return lang == wanted or lang.startswith(wanted + "-")


def _seg_text(seg) -> str:
    """A ``<seg>``'s text without inline codes (``<bpt>``, ``<ph>``...: markup of the original file)."""
    parts = [seg.text or ""]
    for child in seg:
        local = child.tag.rpartition("}")[2] if isinstance(child.tag, str) else ""
        if local not in INLINE_CODES:
            parts.append("".join(child.itertext()))
        parts.append(child.tail or "")
    return "".join(parts).strip()


def read_tmx(data: bytes, name: str = "TMX", source_lang: str = "vi", target_lang: str = "en") -> Read:
    from lxml import etree
    from translate.misc.xml_helpers import getXMLlang
    from translate.storage import tmx

    try:
        store = tmx.tmxfile(BytesIO(data))
    except etree.XMLSyntaxError as error:
        raise InputError(f"{name}: not well-formed XML ({error.msg})") from None
    except (AssertionError, ValueError, StopIteration):
        raise InputError(f"{name}: not a TMX file (its root element is not <tmx>)") from None
    found = Read()
    for unit in store.units:
        texts: dict[str, str] = {}
        for node in unit.getlanguageNodes():
            lang = getXMLlang(node) or ""
            seg = next(node.iterdescendants(unit.namespaced("seg")), None)
            for wanted in (source_lang, target_lang):
                if seg is not None and wanted not in texts and _lang_matches(lang, wanted):
                    texts[wanted] = _seg_text(seg)
        if not texts.get(source_lang) or not texts.get(target_lang):
            found.skip(f"without both a {source_lang} and an {target_lang} segment")
            continue
        props = {prop.get("type"): (prop.text or "").strip() for prop in unit.xmlelement.iterchildren(unit.namespaced("prop"))}
        found.entries.append(MemoryEntry(texts[source_lang], texts[target_lang], "imported",
                                         props.get("x-project") or None))
    return found


def _xml(text: str) -> str:
    return XML_INVALID.sub("", text)


def tmx_date(created: float | None) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(created if created is not None else time.time()))


def write_tmx(entries: Iterable[MemoryEntry]) -> bytes:
    """TMX 1.4: one ``<tu>`` per entry, vi then en, its date, origin and project kept."""
    from mt import __version__
    from translate.storage import tmx

    store = tmx.tmxfile(sourcelanguage="vi", targetlanguage="en")
    for entry in entries:
        unit = store.addsourceunit(_xml(entry.source), "vi")
        unit.settarget(_xml(entry.target), "en", append=True)
        unit.xmlelement.set("creationdate", tmx_date(entry.created))
        for kind, value in (("x-origin", entry.origin), ("x-project", entry.project)):
            if value:
                _add_prop(unit, kind, _xml(value))
    header = store.document.getroot().find(store.namespaced("header"))
    if header is not None:
        header.set("creationtool", "mt-vi-en")
        header.set("creationtoolversion", __version__)
    return bytes(store)


def _add_prop(unit, kind: str, value: str) -> None:
    from lxml import etree

    prop = etree.Element(unit.namespaced("prop"))
    prop.set("type", kind)
    prop.text = value
    first = unit.xmlelement.find(unit.namespaced("tuv"))
    unit.xmlelement.insert(unit.xmlelement.index(first) if first is not None else len(unit.xmlelement), prop)


# -- TSV -------------------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ").strip()


def read_tsv(data: bytes, name: str = "TSV") -> Read:
    """Vietnamese<TAB>English per line; a first line naming the columns is a header."""
    found = Read()
    for number, line in enumerate(decode_article(data, name).split("\n"), 1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) < 2:
            found.skip("without a tab between Vietnamese and English")
            continue
        source, target = cells[0].strip(), cells[1].strip()
        if number == 1 and source.lower() in SOURCE_HEADERS and target.lower() in TARGET_HEADERS:
            continue
        if not source or not target:
            found.skip("with an empty side")
            continue
        found.entries.append(MemoryEntry(source, target, "imported"))
    return found


def write_tsv(entries: Iterable[MemoryEntry]) -> bytes:
    """A header line, then Vietnamese<TAB>English per entry (tabs and line breaks as spaces)."""
    return (TSV_HEADER + "".join(f"{_cell(e.source)}\t{_cell(e.target)}\n" for e in entries)).encode("utf-8")


# -- XLIFF -------------------------------------------------------------------------------------------
def _read_xliff(data: bytes, name: str, unreviewed: bool) -> Read:
    from .xliff import read_xliff

    found = Read()
    for source, target, state in read_xliff(data, name):
        if not unreviewed and state.lower() in UNREVIEWED:
            found.skip(f"still marked {state} (confirm them in the CAT tool, or import with --unreviewed)")
            continue
        found.entries.append(MemoryEntry(source.strip(), target.strip(), "imported"))
    return found


def write_xliff(entries: Iterable[MemoryEntry]) -> bytes:
    from .xliff import write_xliff_pairs

    return write_xliff_pairs(((e.source, e.target) for e in entries), "translation-memory")


def write_memory_file(entries: Iterable[MemoryEntry], name: str) -> bytes:
    return {"tmx": write_tmx, "tsv": write_tsv, "xliff": write_xliff}[file_format(name)](entries)
