"""Translate many articles: a folder of .txt files (and documents: .md, .html, .docx, .srt, .vtt)
or a corpus .jsonl; resumable, atomic outputs, progress in sentences.

A document IN_DIR/a/b.docx gives OUT_DIR/a/b.jsonl, b.tmx (its aligned segments) and
b.en.docx (the translated document, structure kept; mt.io.documents), the document last.

For IN_DIR/a/b.txt it writes OUT_DIR/a/b.jsonl, OUT_DIR/a/b.tmx and OUT_DIR/a/b.en.txt; for a
corpus line ``{"id": "a/b", "text": ...}`` the same three files. Then OUT_DIR/a/b.meta, last: the
SHA-256 of the source and the model and settings that made them (mt.io.batch_safety.DoneCheck).
An article counts as done when its outputs exist and its marker matches: an article whose
source changed (or, locally, whose model or settings changed) is translated again; ``force``
translates everything again. Each file is written atomically, so a killed run is resumed by
running the same command again (translations already made come from the cache). :func:`translate_article` is
the one article → outputs step, shared by this local batch and the Ray batch (mt.io.ray_batch);
both list a corpus with mt.io.corpus (offsets, no texts held).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath

from mt.errors import InputError, MTError
from mt.io.batch_progress import SentenceProgress, printable
from mt.io.batch_safety import (DoneCheck, InputFile, Rejected, bytes_digest, check_folders, claim,
                                describe_os_error, discard_partial, file_digest, marker_path, read_input,
                                remove_leftovers, remove_marker, text_digest, walk_inputs, write_marker)
from mt.io.corpus import LAST_PART_MAX, CorpusLine, pending_lines, read_corpus_text, safe_part
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
        # one line each: a name's newlines and escape sequences are shown escaped, never printed
        lines += [f"  failed: {printable(name)}: {printable(reason, backslash=False)}" for name, reason in self.failed]
        return "\n".join(lines)


@dataclass
class Article:
    """One article still to translate: how messages name it, its text, where its outputs go."""

    name: str
    text: str
    stem: str  # OUT_DIR/<name without .txt>; the outputs are stem + each suffix of OUTPUTS
    source: str | None = None  # a document's path (html, docx...): read and written by mt.io.documents
    digest: str = ""  # SHA-256 of the source as read: recorded in the marker (mt.io.batch_safety)
    size: int = 0  # its bytes


def stem_outputs(stem: str | Path) -> list[Path]:
    stem = Path(stem)
    return [stem.with_name(stem.name + suffix) for suffix, _ in OUTPUTS]


def translate_article(article: Article, engine, cache, settings=None, terms=None) -> tuple[int, int]:
    """Article → its three output files, each written atomically; (sentences, cache hits).
    An MTError (the article cannot be translated) propagates to the caller, nothing written.
    ``terms`` (mt.terms.TermRules, e.g. ``mt batch --glossary``; None: the pipeline's default)."""
    if article.source:
        from mt.io.documents import translate_to_outputs

        return translate_to_outputs(article.source, article.stem, engine, cache, settings, terms)
    document = translate_document(article.text, engine, cache, settings=settings,
                                  **({} if terms is None else {"terms": terms}))
    for path, (_, render) in zip(stem_outputs(article.stem), OUTPUTS):
        write_atomic(path, render(document))
    return len(document.sentences), document.cache_hits


def model_key(engine, settings=None, terms=None) -> str | None:
    """What besides the source determines the outputs: model id@version, engine, settings, and
    the terms when they are not the default (a glossary: mt.terms.glossary_file.rules_key)."""
    from mt.terms.glossary_file import rules_key

    namespace = getattr(engine, "namespace", None)
    key = namespace(settings) if callable(namespace) else None
    return f"{key}|{rules_key(terms)}" if key is not None and rules_key(terms) else key


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


def pending_corpus(corpus: Path, out_dir: Path, summary: BatchSummary, done: DoneCheck = DoneCheck()):
    """The corpus lines still to do, listed lazily (mt.io.corpus: faults named CORPUS:LINE)."""
    return pending_lines(corpus, out_dir, summary, lambda stem, text: done(stem_outputs(stem), text_digest(text)))


def load_corpus_line(corpus: Path, line: CorpusLine, out_dir: Path) -> Article:
    """Read one listed corpus line when its turn comes."""
    text = read_corpus_text(corpus, line, out_dir)
    return Article(line.name, text, line.stem, digest=text_digest(text), size=len(text.encode("utf-8", "surrogatepass")))


def input_outputs(name: str, out_dir: Path) -> list[Path]:
    """The outputs of IN_DIR/<name>: a document's translation keeps its extension (NAME.en.EXT)."""
    relative = PurePosixPath(name)
    longer = max(0, len(relative.suffix.encode()) - len(".txt"))  # NAME.en.markdown's temporary file is longer
    *folders, last = relative.with_suffix("").parts
    outputs = stem_outputs(out_dir.joinpath(*folders, safe_part(last, LAST_PART_MAX - longer)))
    if relative.suffix.lower() != ".txt":
        outputs[-1] = outputs[-1].with_name(outputs[-1].name[: -len(".txt")] + relative.suffix)
    return outputs


def input_suffixes() -> tuple[str, ...]:
    from mt.io.documents import SUPPORTED_EXTENSIONS

    return SUPPORTED_EXTENSIONS


def pending_inputs(source: Path, out_dir: Path, summary: BatchSummary, done: DoneCheck = DoneCheck()):
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
        try:
            current = done(outputs, partial(file_digest, item.path, item.name), item.size)
        except InputError as error:
            summary.failed.append((item.name, str(error).removeprefix(f"{item.name}: ")))
            continue
        except OSError as error:  # its outputs cannot even be looked at (a name, a mount)
            summary.failed.append((item.name, f"cannot check its outputs ({error.strerror or error})"))
            continue
        if current:
            summary.skipped += 1
        else:
            yield item, outputs


def load_input(item: InputFile, outputs: list[Path]) -> Article:
    """Read one listed article when its turn comes (a document is read by mt.io.documents)."""
    stem = str(outputs[0])[: -len(OUTPUTS[0][0])]
    if item.path.suffix.lower() != ".txt":  # hashed now, read by mt.io.documents: a later edit is caught next run
        return Article(item.name, "", stem, str(item.path), file_digest(item.path, item.name), item.size)
    data = read_input(item.path, item.name)
    return Article(item.name, decode_article(data, item.name), stem, digest=bytes_digest(data), size=len(data))


def run_article(name: str, outputs: list[Path], load, size: int, engine, cache, settings,
                summary: BatchSummary, bar: SentenceProgress, force: bool = False, terms=None) -> None:
    """Claim, read, translate and write one article, then its marker; any failure is named in
    the summary and the run goes on (an OSError such as a full disk, an engine error,
    unreadable input)."""
    model = model_key(engine, settings, terms)
    try:
        with claim(str(outputs[0])[: -len(OUTPUTS[0][0])]) as ours:
            article = load() if ours else None
            if not ours:
                summary.claimed += 1
            elif DoneCheck(model, force)(outputs, article.digest):  # another run finished it since the listing
                summary.skipped += 1
            else:
                marker = marker_path(str(outputs[0])[: -len(OUTPUTS[0][0])])
                remove_leftovers(outputs + [marker])
                remove_marker(outputs)  # the old outputs are not done until the new marker
                try:
                    sentences, hits = translate_article(article, engine, cache, settings, terms)
                    write_marker(outputs, article.digest, article.size, model)
                except BaseException:
                    discard_partial(outputs + [marker])
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


def translate_folder(in_dir, out_dir, engine, cache, *, settings=None, progress: bool = True,
                     force: bool = False, terms=None) -> BatchSummary:
    """Translate a folder (or corpus .jsonl) in this process; see the module docstring. Both are
    streamed: listed lazily, one article in memory at a time, read when its turn comes and
    segmented once (by the pipeline); the progress bar is sized from the pending bytes.
    ``force``: translate every article again, done or not (sentences still come from the cache)."""
    started = time.perf_counter()
    summary = BatchSummary()
    source, out_dir = Path(in_dir), Path(out_dir)
    check_dirs(source, out_dir)
    done = DoneCheck(model_key(engine, settings, terms), force)
    if is_corpus(source):
        def listing(into: BatchSummary):
            for line in pending_corpus(source, out_dir, into, done):
                yield line.name, stem_outputs(line.stem), partial(load_corpus_line, source, line, out_dir), line.size
    else:
        def listing(into: BatchSummary):
            for item, outputs in pending_inputs(source, out_dir, into, done):
                yield item.name, outputs, partial(load_input, item, outputs), item.size
    total = sum(size for *_, size in listing(BatchSummary()))  # a first pass (stat / offsets only) sizes the bar
    work = listing(summary)
    with SentenceProgress(total, progress) as bar:
        for name, outputs, load, size in work:
            run_article(name, outputs, load, size, engine, cache, settings, summary, bar, force, terms)
    summary.seconds = time.perf_counter() - started
    return summary
