"""Translate a folder of articles: resumable, atomic outputs, progress in sentences.

For IN_DIR/a/b.txt it writes OUT_DIR/a/b.jsonl, OUT_DIR/a/b.tmx and OUT_DIR/a/b.en.txt.
A file counts as done when all three exist; each is written atomically, so a killed run
is resumed by running the same command again (translations already made come from the cache).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from mt.errors import InputError, MTError
from mt.io.formats import english_text, read_article, to_jsonl, to_tmx, write_atomic
from mt.pipeline import translate_document
from mt.segment import split_sentences

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

    def describe(self) -> str:
        lines = [
            f"files: {self.translated} translated, {self.skipped} already done, {len(self.failed)} failed; "
            f"sentences: {self.sentences} ({self.cache_hits} from cache); {self.seconds:.1f} s"
        ]
        lines += [f"  failed: {name}: {reason}" for name, reason in self.failed]
        return "\n".join(lines)


def find_articles(in_dir: Path, out_dir: Path) -> list[Path]:
    """Every *.txt under in_dir, sorted, leaving out our own outputs when out_dir lies inside in_dir."""
    out_dir = out_dir.resolve()
    found = []
    for path in sorted(in_dir.rglob("*.txt")):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.resolve().is_relative_to(out_dir):
            continue
        found.append(path)
    return found


def output_paths(article: Path, in_dir: Path, out_dir: Path) -> list[Path]:
    stem = out_dir / article.relative_to(in_dir).with_suffix("")
    return [stem.with_name(stem.name + suffix) for suffix, _ in OUTPUTS]


def is_done(paths: list[Path]) -> bool:
    return all(path.exists() for path in paths)


def check_dirs(in_dir: Path, out_dir: Path) -> None:
    if not in_dir.is_dir():
        raise InputError(f"{in_dir}: not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{out_dir}: cannot create output folder ({error.strerror})") from None


def load_pending(articles, in_dir, out_dir, summary) -> list[tuple[Path, str, list[Path]]]:
    """Read every article still to do; unreadable ones are reported and left out."""
    pending = []
    for article in articles:
        outputs = output_paths(article, in_dir, out_dir)
        if is_done(outputs):
            summary.skipped += 1
            continue
        try:
            pending.append((article, read_article(article), outputs))
        except InputError as error:
            summary.failed.append((str(article.relative_to(in_dir)), str(error)))
    return pending


def make_progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="sent", desc="translating", disable=not enabled, dynamic_ncols=True)


def translate_folder(in_dir, out_dir, engine, cache, *, settings=None, progress: bool = True) -> BatchSummary:
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    check_dirs(in_dir, out_dir)
    started = time.perf_counter()
    summary = BatchSummary()
    pending = load_pending(find_articles(in_dir, out_dir), in_dir, out_dir, summary)
    total = sum(len(split_sentences(text)) for _, text, _ in pending)
    with make_progress(total, progress) as bar:
        for article, text, outputs in pending:
            try:
                document = translate_document(text, engine, cache, settings=settings)
            except MTError as error:
                summary.failed.append((str(article.relative_to(in_dir)), str(error)))
                continue
            for path, (_, render) in zip(outputs, OUTPUTS):
                write_atomic(path, render(document))
            summary.translated += 1
            summary.sentences += len(document.sentences)
            summary.cache_hits += document.cache_hits
            bar.update(len(document.sentences))
    summary.seconds = time.perf_counter() - started
    return summary
