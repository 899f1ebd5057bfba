"""Translate many articles: a folder of .txt files (and documents: .md, .html, .docx, .srt, .vtt)
or a corpus .jsonl; resumable, atomic outputs, progress in sentences.

A document IN_DIR/a/b.docx gives OUT_DIR/a/b.jsonl, b.tmx (its aligned segments) and
b.en.docx (the translated document, structure kept; mt.io.documents), the document last.

For IN_DIR/a/b.txt it writes OUT_DIR/a/b.jsonl, OUT_DIR/a/b.tmx and OUT_DIR/a/b.en.txt; for a
corpus line ``{"id": "a/b", "text": ...}`` the same three files. An article counts as done when
all three exist; each is written atomically, so a killed run is resumed by running the same
command again (translations already made come from the cache). :func:`translate_article` is
the one article → outputs step, shared by this local batch and the Ray batch (mt.io.ray_batch);
both list a corpus with mt.io.corpus (offsets, no texts held).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath

from mt.errors import InputError, MTError
from mt.io.batch_progress import SentenceProgress
from mt.io.batch_safety import (InputFile, Rejected, check_folders, claim, describe_os_error, discard_partial,
                                read_input, remove_leftovers, walk_inputs)
from mt.io.corpus import CorpusLine, pending_lines, read_corpus_text
from mt.io.formats import decode_article, english_text, to_jsonl, to_tmx, write_atomic
from mt.pipeline import translate_document

# Written in this order; the English text last, so its presence means the other two exist too.
OUTPUTS = ((".jsonl", to_jsonl), (".tmx", to_tmx), (".en.txt", english_text))


@dataclass
class BatchSummary:
    translated: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    sentences: int = 0
    cache_hits: int = 0
    seconds: float = 0.0
    claimed: int = 0  # articles another live run was translating (mt.io.batch_safety.claim)

    def describe(self) -> str:
        elsewhere = f", {self.claimed} being translated by another run" if self.claimed else ""
        lines = [
            f"files: {self.translated} translated, {self.skipped} already done{elsewhere}, {len(self.failed)} failed; "
            f"sentences: {self.sentences} ({self.cache_hits} from cache); {self.seconds:.1f} s"
        ]
        lines += [f"  failed: {name}: {reason}" for name, reason in self.failed]
        return "\n".join(lines)


@dataclass
class Article:
    """One article still to translate: how messages name it, its text, where its outputs go."""

    name: str
    text: str
    stem: str  # OUT_DIR/<name without .txt>; the outputs are stem + each suffix of OUTPUTS
    source: str | None = None  # a document's path (html, docx...): read and written by mt.io.documents


def stem_outputs(stem: str | Path) -> list[Path]:
    stem = Path(stem)
    return [stem.with_name(stem.name + suffix) for suffix, _ in OUTPUTS]


def translate_article(article: Article, engine, cache, settings=None) -> tuple[int, int]:
    """Article → its three output files, each written atomically; (sentences, cache hits).
    An MTError (the article cannot be translated) propagates to the caller, nothing written."""
    if article.source:
        from mt.io.documents import translate_to_outputs

        return translate_to_outputs(article.source, article.stem, engine, cache, settings)
    document = translate_document(article.text, engine, cache, settings=settings)
    for path, (_, render) in zip(stem_outputs(article.stem), OUTPUTS):
        write_atomic(path, render(document))
    return len(document.sentences), document.cache_hits


def is_done(paths: list[Path]) -> bool:
    return all(path.exists() for path in paths)


def is_corpus(source: str | Path) -> bool:
    return Path(source).suffix.lower() == ".jsonl" and not Path(source).is_dir()


def check_dirs(in_dir: Path, out_dir: Path) -> None:
    if is_corpus(in_dir):
        if not in_dir.is_file():
            raise InputError(f"{in_dir}: no such corpus file")
    elif not in_dir.is_dir():
        raise InputError(f"{in_dir}: not a directory")
    else:
        check_folders(in_dir, out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{out_dir}: cannot create output folder ({error.strerror})") from None


def pending_corpus(corpus: Path, out_dir: Path, summary: BatchSummary):
    """The corpus lines still to do, listed lazily (mt.io.corpus: faults named CORPUS:LINE)."""
    return pending_lines(corpus, out_dir, summary, lambda stem: is_done(stem_outputs(stem)))


def load_corpus_line(corpus: Path, line: CorpusLine, out_dir: Path) -> Article:
    """Read one listed corpus line when its turn comes."""
    return Article(line.name, read_corpus_text(corpus, line, out_dir), line.stem)


def input_outputs(name: str, out_dir: Path) -> list[Path]:
    """The outputs of IN_DIR/<name>: a document's translation keeps its extension (NAME.en.EXT)."""
    relative = PurePosixPath(name)
    outputs = stem_outputs(out_dir.joinpath(*relative.with_suffix("").parts))
    if relative.suffix.lower() != ".txt":
        outputs[-1] = outputs[-1].with_name(outputs[-1].name[: -len(".txt")] + relative.suffix)
    return outputs


def input_suffixes() -> tuple[str, ...]:
    from mt.io.documents import SUPPORTED_EXTENSIONS

    return SUPPORTED_EXTENSIONS


def pending_inputs(source: Path, out_dir: Path, summary: BatchSummary):
    """(InputFile, outputs) of each article of the folder not done yet, streamed from the
    listing; entries that are not read (mt.io.batch_safety) are named in summary.failed."""
    owners: dict[str, str] = {}  # output stem -> its input: a.txt and a.html would both write a.jsonl
    for item in walk_inputs(source, out_dir, input_suffixes()):
        if isinstance(item, Rejected):
            summary.failed.append((item.name, item.reason))
            continue
        outputs = input_outputs(item.name, out_dir)
        owner = owners.setdefault(str(outputs[0]), item.name)
        if owner != item.name:
            summary.failed.append((item.name, f"its outputs would overwrite those of {owner} (same name "
                                              "without the extension); rename one of them"))
            continue
        if is_done(outputs):
            summary.skipped += 1
        else:
            yield item, outputs


def load_input(item: InputFile, outputs: list[Path]) -> Article:
    """Read one listed article when its turn comes (a document is read by mt.io.documents)."""
    stem = str(outputs[0])[: -len(OUTPUTS[0][0])]
    if item.path.suffix.lower() != ".txt":
        return Article(item.name, "", stem, str(item.path))
    return Article(item.name, decode_article(read_input(item.path, item.name), item.name), stem)


def run_article(name: str, outputs: list[Path], load, size: int, engine, cache, settings,
                summary: BatchSummary, bar: SentenceProgress) -> None:
    """Claim, read, translate and write one article; any failure is named in the summary and
    the run goes on (an OSError such as a full disk, an engine error, unreadable input)."""
    try:
        with claim(str(outputs[0])[: -len(OUTPUTS[0][0])]) as ours:
            if not ours:
                summary.claimed += 1
            elif is_done(outputs):  # another run finished it since the listing
                summary.skipped += 1
            else:
                remove_leftovers(outputs)
                try:
                    sentences, hits = translate_article(load(), engine, cache, settings)
                except BaseException:
                    discard_partial(outputs)
                    raise
                summary.translated += 1
                summary.sentences += sentences
                summary.cache_hits += hits
                bar.article_done(size, sentences)
                return
    except MTError as error:
        summary.failed.append((name, str(error).removeprefix(f"{name}: ")))
    except OSError as error:
        summary.failed.append((name, describe_os_error(error)))
    except Exception as error:  # the engine or the cache failed on this article: report, go on
        summary.failed.append((name, f"{type(error).__name__}: {error}"))
    bar.article_dropped(size)


def translate_folder(in_dir, out_dir, engine, cache, *, settings=None, progress: bool = True) -> BatchSummary:
    """Translate a folder (or corpus .jsonl) in this process; see the module docstring. Both are
    streamed: listed lazily, one article in memory at a time, read when its turn comes and
    segmented once (by the pipeline); the progress bar is sized from the pending bytes."""
    started = time.perf_counter()
    summary = BatchSummary()
    source, out_dir = Path(in_dir), Path(out_dir)
    check_dirs(source, out_dir)
    if is_corpus(source):
        def listing(into: BatchSummary):
            for line in pending_corpus(source, out_dir, into):
                yield line.name, stem_outputs(line.stem), partial(load_corpus_line, source, line, out_dir), line.size
    else:
        def listing(into: BatchSummary):
            for item, outputs in pending_inputs(source, out_dir, into):
                yield item.name, outputs, partial(load_input, item, outputs), item.size
    total = sum(size for *_, size in listing(BatchSummary()))  # a first pass (stat / offsets only) sizes the bar
    work = listing(summary)
    with SentenceProgress(total, progress) as bar:
        for name, outputs, load, size in work:
            run_article(name, outputs, load, size, engine, cache, settings, summary, bar)
    summary.seconds = time.perf_counter() - started
    return summary
