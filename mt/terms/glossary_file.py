"""Glossary files: two columns, Vietnamese then English, as TSV or CSV, a header line optional.

What spreadsheets, CAT tools and DeepL export: tab- or comma-separated, UTF-8 (a BOM is skipped),
cells optionally quoted with doubled quotes inside; DeepL's four-column CSV (source, target,
source language, target language) is read when its languages are vi and en. A bad row is an
:class:`mt.errors.InputError` naming its line; every entry passes the store's own checks
(:func:`mt.cache.glossaries.check_entries`), so a file reads the same through every door.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..cache.glossaries import MAX_ENTRIES, InvalidGlossary, check_entries, check_term
from ..errors import InputError

__all__ = ["read_glossary", "read_glossary_file", "to_tsv"]

# a first row made of these (either side) is a header, not an entry
HEADER_WORDS = {"vi", "vie", "vietnamese", "tiếng việt", "source", "source term", "source_entry", "src", "term",
                "en", "eng", "english", "tiếng anh", "target", "target term", "target_entry", "tgt", "translation"}
MAX_FILE_BYTES = 8 << 20


def read_glossary(data: bytes | str, name: str = "", *, allow_empty: bool = False) -> dict[str, str]:
    """``{vietnamese: english}`` from a TSV or CSV glossary (tabs in the first row with text: TSV);
    a later row for the same Vietnamese wins. InputError naming the line of a bad row; also for
    a glossary without entries unless ``allow_empty`` (a form's field: none is no glossary)."""
    label = f"{name}: " if name else "glossary: "
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise InputError(f"{label}not UTF-8 text (byte {error.start:,}); save the glossary as UTF-8") from None
    text = data.removeprefix("\ufeff")
    first = next((line for line in text.splitlines() if line.strip()), "")
    tabs = "\t" in first
    rows = tsv_rows(text) if tabs else csv_rows(text, label)
    separator = "a tab" if tabs else "a comma"
    entries: dict[str, str] = {}
    header_checked = False
    for number, cells in rows:
        cells = trimmed(cells)
        if not cells:
            continue
        if not header_checked:
            header_checked = True
            if is_header(cells):
                continue
        where = f"{label}line {number}"
        if len(cells) == 4 and cells[2].strip().lower() == "vi" and cells[3].strip().lower() == "en":
            cells = cells[:2]  # DeepL's CSV: source, target, source language, target language
        if len(cells) != 2:
            raise InputError(f"{where}: {len(cells)} column(s); a glossary line is Vietnamese, then English "
                             f"({separator} between them)")
        try:
            entries[check_term(cells[0], "the Vietnamese")] = check_term(cells[1], "the English")
        except InvalidGlossary as error:
            raise InvalidGlossary(f"{where}: {error}") from None
        if len(entries) > MAX_ENTRIES:
            raise InvalidGlossary(f"{label}over {MAX_ENTRIES:,} entries, the most a glossary may have")
    if not entries and not allow_empty:
        raise InvalidGlossary(f"{label}no entries (two columns: Vietnamese, then English)")
    try:
        return check_entries(entries, "the glossary")
    except InvalidGlossary as error:
        raise InvalidGlossary(f"{label}{error}") from None


def read_glossary_file(path: str | Path) -> dict[str, str]:
    """A glossary file on disk (``mt translate --glossary FILE``); its problems as InputError."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{path}: over {MAX_FILE_BYTES:,} bytes; a glossary is at most {MAX_ENTRIES:,} entries")
        data = path.read_bytes()
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a glossary file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read the glossary ({error.strerror or error})") from None
    return read_glossary(data, str(path))


def tsv_rows(text: str):
    """(line number, cells) of tab-separated lines; a cell wholly in double quotes is unquoted."""
    for number, line in enumerate(text.splitlines(), 1):
        yield number, [unquoted(cell) for cell in line.split("\t")]


def unquoted(cell: str) -> str:
    stripped = cell.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"' and stripped[1:-1].strip():
        return stripped[1:-1].replace('""', '"')
    return cell  # not quoted, or quotes around nothing: the quotes are the term


def csv_rows(text: str, label: str):
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for cells in reader:
            yield reader.line_num, cells
    except csv.Error as error:
        raise InputError(f"{label}line {reader.line_num}: not valid CSV ({error})") from None


def trimmed(cells: list[str]) -> list[str]:
    """The row without its trailing empty cells (spreadsheets add them); [] for a blank row."""
    while cells and not cells[-1].strip():
        cells = cells[:-1]
    return cells


def is_header(cells: list[str]) -> bool:
    words = [cell.strip().strip('"').lower() for cell in cells[:2]]
    return len(words) == 2 and words[0] in HEADER_WORDS and words[1] in HEADER_WORDS


def to_tsv(entries: dict[str, str]) -> str:
    """The entries as TSV lines (no header): what read_glossary reads back."""
    return "".join(f"{source}\t{target}\n" for source, target in entries.items())


def rules_key(terms) -> str:
    """What a batch's done-marker records of its terms (mt.io.folder_batch): empty for the default
    (no glossary, protected spans on), else a short hash of the glossary and the protection flag,
    so a run with another glossary translates its articles again."""
    if terms is None or (not terms.glossary and terms.protect):
        return ""
    import hashlib
    import json

    data = json.dumps([sorted(terms.glossary.items()), bool(terms.protect)], ensure_ascii=False)
    return "terms:" + hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]
