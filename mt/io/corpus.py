"""A corpus .jsonl (one ``{"id": ..., "text": ...}`` per line) read as a stream, for both the
local batch (mt.io.folder_batch) and the Ray batch (mt.io.ray_batch).

The listing keeps no text: each pending line is a small :class:`CorpusLine` (its byte offset
and length), and its text is read from the file when its turn comes, so a million-line corpus
is never held in memory. Every fault is about one line and is named ``CORPUS:LINE``; the run
goes on with the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from mt.errors import InputError


@dataclass(frozen=True, slots=True)
class CorpusLine:
    """A corpus line still to translate: its id as messages name it, where its outputs go
    (OUT_DIR/<id>; each output is stem + a suffix) and its byte range in the corpus."""

    name: str
    stem: str
    offset: int
    length: int

    @property
    def size(self) -> int:
        """Bytes of input, what the progress bar's estimate counts."""
        return self.length


def corpus_stem(article_id: object, out_dir: Path) -> str:
    """OUT_DIR/<id>; an id may name subfolders ("2024/a1") but never leave OUT_DIR."""
    if isinstance(article_id, bool) or not isinstance(article_id, (str, int)) or not str(article_id).strip():
        raise InputError('"id" must be a non-empty string or integer')
    name = str(article_id)
    parts = PurePosixPath(name).parts
    if (name.startswith("/") or "\\" in name or "\0" in name
            or any(part in (".", "..") or part.startswith(".") for part in parts)):
        raise InputError(f'"id" {name!r} is not a safe relative file name')
    return str(Path(out_dir).joinpath(*parts))


def parse_corpus_line(line: str, out_dir: Path) -> tuple[dict, str]:
    """One corpus line -> (its record, the stem of its outputs); InputError says what is wrong."""
    try:
        record = json.loads(line)
    except ValueError as error:
        raise InputError(f"not a JSON object ({error.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise InputError('expected {"id": ..., "text": "..."}')
    return record, corpus_stem(record.get("id"), out_dir)


def corpus_text(record: dict) -> str:
    """A corpus line's text with the same newline handling as an article file."""
    return record["text"].replace("\r\n", "\n").replace("\r", "\n")


def corpus_lines(corpus: Path) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset, bytes) of each line, read in a stream."""
    offset = 0
    with open(corpus, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            yield number, offset, raw
            offset += len(raw)


def decode_line(raw: bytes, where: str, first: bool = False) -> str:
    """A line's bytes as text (a BOM allowed on the first); one bad line fails alone."""
    try:
        return raw.decode("utf-8-sig" if first else "utf-8").rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise InputError(f"{where}: not valid UTF-8 (byte {error.start})") from None


def pending_lines(corpus: Path, out_dir: Path, summary, is_done: Callable[[str], bool]) -> Iterator[CorpusLine]:
    """The lines of ``corpus`` still to translate, listed lazily in file order. Bad lines,
    repeated ids and unsafe ids are appended to ``summary.failed`` as ("CORPUS:LINE", reason);
    lines whose outputs are done (``is_done(stem)``) are counted in ``summary.skipped``."""
    corpus, seen = Path(corpus), set()
    for number, offset, raw in corpus_lines(corpus):
        where = f"{corpus.name}:{number}"
        try:
            line = decode_line(raw, where, first=number == 1)
            if not line.strip():
                continue
            record, stem = parse_corpus_line(line, out_dir)
            if stem in seen:
                raise InputError(f'"id" {record["id"]!r} repeats an earlier line')
        except InputError as error:
            summary.failed.append((where, str(error).removeprefix(f"{where}: ")))
            continue
        seen.add(stem)
        if is_done(stem):
            summary.skipped += 1
        else:
            yield CorpusLine(str(record["id"]), stem, offset, len(raw))


def read_corpus_text(corpus: str | Path, line: CorpusLine, out_dir: Path) -> str:
    """The text of a listed line, read from the file now (its turn). The line is read up to its
    newline, so an edit of that line since the listing is what gets translated; InputError when
    the offset no longer starts the listed article (lines before it changed length)."""
    with open(corpus, "rb") as handle:
        handle.seek(line.offset)
        raw = handle.readline()
    try:
        record, stem = parse_corpus_line(decode_line(raw, line.name, first=line.offset == 0), out_dir)
    except InputError as error:
        reason = str(error).removeprefix(f"{line.name}: ")
        raise InputError(f"{line.name}: the corpus changed since it was listed ({reason})") from None
    if stem != line.stem:
        raise InputError(f"{line.name}: the corpus changed since it was listed "
                         f"(its line now holds id {record.get('id')!r})")
    return corpus_text(record)
