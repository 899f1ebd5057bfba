"""Document formats by extension and content type: read → blocks → translate → write.

Every format goes through :func:`mt.io.blocks.translate_blocks`, i.e. ONE
``translate_document`` call per file (cache first, one batched model call), so a file costs what
its text costs as plain text. ``.txt`` is the plain-text path itself. See docs/DOCUMENTS.md.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from .blocks import Block, DocumentError, EmptyDocument, FileTooLarge, TranslatedBlock, UnsupportedFormat
from .formats import read_bytes as read_file  # a document is read as bytes; same errors as an article

#: Largest file accepted (bytes); the web layer has its own body cap on top.
MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Format:
    name: str
    extensions: tuple[str, ...]
    content_types: tuple[str, ...]
    module: str  # mt.io.<module>: read_<name>(data, name) -> (blocks, state); write_<name>(state, blocks)
    binary: bool = False

    @property
    def media_type(self) -> str:
        return self.content_types[0]

    def read(self, data: bytes, name: str):
        if self.module == "text":
            return _read_text(data, name)
        return getattr(importlib.import_module(f"mt.io.{self.module}"), f"read_{self.module}")(data, name)

    def write(self, state, translated: list[TranslatedBlock]) -> bytes:
        return getattr(importlib.import_module(f"mt.io.{self.module}"), f"write_{self.module}")(state, translated)


FORMATS = (
    Format("text", (".txt",), ("text/plain",), "text"),
    Format("markdown", (".md", ".markdown"), ("text/markdown", "text/x-markdown"), "markdown"),
    Format("html", (".html", ".htm"), ("text/html",), "html"),
    Format("xhtml", (".xhtml",), ("application/xhtml+xml",), "html"),  # served back as XML, not text/html
    Format("docx", (".docx",),
           ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",), "docx", binary=True),
    Format("srt", (".srt",), ("application/x-subrip", "text/srt"), "subtitles"),
    Format("vtt", (".vtt",), ("text/vtt",), "subtitles"),
)
SUPPORTED_EXTENSIONS = tuple(ext for fmt in FORMATS for ext in fmt.extensions)


def format_for(name: str | None = None, content_type: str | None = None) -> Format:
    """The format of a file: its extension first, else its content type (plain text only for a name
    without extension: uploads of any file often claim text/plain); UnsupportedFormat else."""
    suffix = Path(name or "").suffix.lower()
    for fmt in FORMATS:
        if suffix and suffix in fmt.extensions:
            return fmt
    wanted = (content_type or "").split(";")[0].strip().lower()
    for fmt in FORMATS:
        if wanted and wanted in fmt.content_types and (fmt.name != "text" or not suffix):
            return fmt
    what = f"'{suffix}'" if suffix else f"content type '{wanted}'" if wanted else "a file without extension"
    raise UnsupportedFormat(
        f"{name or 'input'}: {what} is not a supported document format (supported: {', '.join(SUPPORTED_EXTENSIONS)})"
    )


def is_document(name: str) -> bool:
    """A file the document path reads (a supported extension other than .txt); anything else is
    an article read as plain text, as it always was."""
    suffix = Path(name).suffix.lower()
    return suffix in SUPPORTED_EXTENSIONS and suffix != ".txt"


def translated_name(name: str) -> str:
    """``report.docx`` → ``report.en.docx`` (what ``mt batch`` and the downloads call the result)."""
    path = Path(name)
    return f"{path.stem}.en{path.suffix}" if path.suffix else f"{path.name}.en"


@dataclass
class FileTranslation:
    data: bytes  # the translated file
    format: Format
    name: str  # suggested file name of the result
    document: object  # mt.document.Document of the joined blocks (the aligned segments)
    blocks: list[TranslatedBlock]

    def aligned(self) -> list[dict]:
        """The aligned view: each block with its source, English and sentences."""
        return [
            {"source": item.block.text.strip(), "translation": item.text.strip(),
             "sentences": [pair.to_dict() for pair in item.pairs]}
            for item in self.blocks
        ]


def translate_file(data: bytes, name: str, engine, cache=None, *, settings=None, content_type: str | None = None,
                   max_bytes: int = MAX_FILE_BYTES, max_chars: int | None = None, quality: bool = False,
                   terms=None) -> FileTranslation:
    """Translate one file of any supported format; DocumentError (an InputError) when it can't.
    ``terms`` (mt.terms.TermRules; None: the pipeline's default) are enforced on every block."""
    fmt = format_for(name, content_type)
    if len(data) > max_bytes:
        raise FileTooLarge(f"{name}: {len(data):,} bytes; the limit is {max_bytes:,} bytes")
    blocks, state = fmt.read(data, name)
    if not any(block.text.strip() for block in blocks):
        raise EmptyDocument(f"{name}: no text to translate (the file is empty or only markup)")
    if max_chars is not None:
        chars = sum(len(block.text) for block in blocks)
        if chars > max_chars:
            raise FileTooLarge(f"{name}: {chars:,} characters of text; the limit is {max_chars:,}")
    from .blocks import translate_blocks

    if fmt.name == "text":
        return _translate_text(state, fmt, name, engine, cache, settings, quality, terms)
    document, translated = translate_blocks(blocks, engine, cache, settings=settings, quality=quality, terms=terms)
    return FileTranslation(fmt.write(state, translated), fmt, translated_name(name), document, translated)


def _read_text(data: bytes, name: str):
    from .formats import decode_article

    text = decode_article(data, name)
    return [Block(text)], text


def _translate_text(text: str, fmt: Format, name: str, engine, cache, settings, quality, terms=None) -> FileTranslation:
    """Plain text is the article path itself: line breaks are sentence ends there, not layout."""
    from mt.pipeline import translate_document

    from .formats import english_text

    document = translate_document(text, engine, cache, settings=settings, links=True, quality=quality,
                                  **({} if terms is None else {"terms": terms}))
    blocks = []
    for pairs in document.paragraphs():
        source = text[pairs[0].start : pairs[-1].end]
        english = " ".join(pair.translation for pair in pairs if pair.translation)
        blocks.append(TranslatedBlock(Block(source), pairs, english, [], []))
    return FileTranslation(english_text(document).encode("utf-8"), fmt, translated_name(name), document, blocks)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Through a temporary file and a rename: a killed run never leaves half a document (the
    umask applies, as for every output: mt.io.formats.write_atomic)."""
    from .formats import write_atomic

    write_atomic(Path(path), data)


def translate_to_outputs(source: str | Path, stem: str | Path, engine, cache=None, settings=None, terms=None
                         ) -> tuple[int, int]:
    """``mt batch`` for one document: STEM.jsonl and STEM.tmx (its aligned segments), then
    STEM.en.EXT (the translated document) last, each atomically; (sentences, cache hits)."""
    from .formats import to_jsonl, to_tmx, write_atomic

    source, stem = Path(source), Path(stem)
    result = translate_file(read_file(source), source.name, engine, cache, settings=settings, quality=True, terms=terms)
    write_atomic(stem.with_name(stem.name + ".jsonl"), to_jsonl(result.document))
    write_atomic(stem.with_name(stem.name + ".tmx"), to_tmx(result.document))
    write_bytes_atomic(stem.with_name(stem.name + ".en" + source.suffix), result.data)
    return len(result.document.sentences), result.document.cache_hits
