"""A corpus .jsonl (one ``{"id": ..., "text": ...}`` per line) read as a stream, for both the
local batch (mt.io.folder_batch) and the Ray batch (mt.io.ray_batch).

The listing keeps no text: each pending line is a small :class:`CorpusLine` (its byte offset
and length), and its text is read from the file when its turn comes, so a million-line corpus
is never held in memory. Every fault is about one line and is named ``CORPUS:LINE``; the run
goes on with the others.
"""

from __future__ import annotations

import hashlib
import json
import os
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


#: A file name holds 255 bytes; the longest made from an output stem is the temporary file of
#: its English text, ".STEM.en.txt.XXXXXXXX.part": 22 bytes more than the stem's last part.
NAME_MAX = 255
LAST_PART_MAX = NAME_MAX - len(".") - len(".en.txt") - len(".12345678.part")
PATH_MAX = 4095  # Linux, in bytes; the temporary files add up to 22 bytes to a stem
PATH_MARGIN = 32


def safe_part(part: str, limit: int) -> str:
    """One part of an id as a file name: unchanged when it fits in ``limit`` bytes and can be
    encoded (every id that worked before keeps its output names); else its first bytes, "~" and
    16 hex digits of its SHA-256: the same id always gets the same name, so a run is resumable."""
    try:
        if len(os.fsencode(part)) <= limit:
            return part
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the JSON): no file name has it
        pass
    digest = hashlib.sha256(part.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    keep = part.encode("utf-8", "replace")[: limit - 1 - len(digest)].decode("utf-8", "ignore")
    return f"{keep}~{digest}"


def short_repr(value: object, limit: int = 60) -> str:
    """An id in a message: repr'd (controls escaped), a long one cut."""
    text = str(value)
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def corpus_stem(article_id: object, out_dir: Path) -> str:
    """OUT_DIR/<id>; an id may name subfolders ("2024/a1") but never leave OUT_DIR. A part too
    long for a file name is shortened (:func:`safe_part`); an id too long for a path fails."""
    if isinstance(article_id, bool) or not isinstance(article_id, (str, int)) or not str(article_id).strip():
        raise InputError('"id" must be a non-empty string or integer')
    name = str(article_id)
    parts = PurePosixPath(name).parts
    if (name.startswith("/") or "\\" in name or "\0" in name
            or any(part in (".", "..") or part.startswith(".") for part in parts)):
        raise InputError(f'"id" {short_repr(name)} is not a safe relative file name')
    safe = [safe_part(part, NAME_MAX) for part in parts[:-1]] + [safe_part(parts[-1], LAST_PART_MAX)]
    stem = str(Path(out_dir).joinpath(*safe))
    if len(os.fsencode(stem)) + PATH_MARGIN > PATH_MAX:
        raise InputError(f'"id" {short_repr(name)} is too long for a file path under the output folder')
    return stem


def parse_corpus_line(line: str, out_dir: Path) -> tuple[dict, str]:
    """One corpus line -> (its record, the stem of its outputs); InputError says what is wrong."""
    try:
        record = json.loads(line)
    except ValueError as error:
        raise InputError(f"not a JSON object ({error.msg})") from None
    except RecursionError:  # the C parser counts its depth and stops cleanly: this line only fails
        raise InputError("not a JSON object (nested too deeply)") from None
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


def pending_lines(corpus: Path, out_dir: Path, summary, is_done: Callable[[str, str], bool]) -> Iterator[CorpusLine]:
    """The lines of ``corpus`` still to translate, listed lazily in file order. Bad lines,
    repeated ids and unsafe ids are appended to ``summary.failed`` as ("CORPUS:LINE", reason);
    lines whose outputs are done (``is_done(stem, text)``: made from this text) are counted in
    ``summary.skipped``."""
    corpus, seen = Path(corpus), set()
    for number, offset, raw in corpus_lines(corpus):
        where = f"{corpus.name}:{number}"
        try:
            line = decode_line(raw, where, first=number == 1)
            if not line.strip():
                continue
            record, stem = parse_corpus_line(line, out_dir)
            if stem in seen:
                raise InputError(f'"id" {short_repr(record["id"])} repeats an earlier line')
            seen.add(stem)
            done = is_done(stem, corpus_text(record))
        except InputError as error:
            summary.failed.append((where, str(error).removeprefix(f"{where}: ")))
            continue
        except OSError as error:  # its outputs cannot even be looked at (a name, a mount)
            summary.failed.append((where, f"cannot check its outputs ({error.strerror or error})"))
            continue
        if done:
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
                         f"(its line now holds id {short_repr(record.get('id'))})")
    return corpus_text(record)
