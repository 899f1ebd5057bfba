"""`mt batch --ray`: the local batch's per-article step as a Ray Data job.

The driver lists what is still to do without reading any article: a folder's listing
(mt.io.batch_safety's rules: symlinks, FIFOs, devices named and skipped) or a corpus's line
offsets (mt.io.corpus), so a million-line corpus is never held on the driver. The (path, offset)
items become a dataset, and ``map_batches`` runs them through a pool of actors that each load the
engine and open the cache once; the actors read their articles and write the outputs themselves
through :func:`mt.io.folder_batch.run_article` (per-article claim, atomic writes, any failure
named and the run goes on), so OUT must be on a file system every node sees. Only counts travel
back, feeding the driver's progress bar. Where the fixed cost goes: docs/SCALE.md.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from mt.errors import ConfigError

from .batch_progress import SentenceProgress
from .batch_safety import DoneCheck, InputFile
from .corpus import CorpusLine
from .folder_batch import (BatchSummary, check_dirs, input_outputs, is_corpus, load_corpus_line, load_input,
                           pending_corpus, pending_inputs, run_article, stem_outputs)

__all__ = ["translate_with_ray", "ArticleWorker", "list_work", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'mt-vi-en[ray]'"
COLUMNS = ("index", "name", "path", "offset", "length", "stem", "size")


def list_work(source: Path, out_dir: Path, summary: BatchSummary, positions: list[int] | None = None,
              force: bool = False) -> list[dict]:
    """One small item per article still to do (no text): a folder's file, or a corpus line's
    byte range (the local batch's own listings). Done ones are counted as skipped, unreadable
    ones named in summary.failed (``positions`` gets, for each, how many items were listed
    before it: the summary keeps the listing's order, as the local batch's does). The driver has
    no engine: "done" compares the source's hash only (a worker checks the model again)."""
    positions, done = [] if positions is None else positions, DoneCheck(force=force)
    if is_corpus(source):
        listing = ((line.name, str(source), line.offset, line.length, line.stem, line.size)
                   for line in pending_corpus(source, out_dir, summary, done))
    else:
        listing = ((item.name, str(item.path), -1, 0, "", item.size) for item, _ in pending_inputs(source, out_dir, summary, done))
    items: list[dict] = []
    for name, path, offset, length, stem, size in listing:
        positions += [len(items)] * (len(summary.failed) - len(positions))
        items.append({"index": len(items), "name": name, "path": path, "offset": offset, "length": length,
                      "stem": stem, "size": size})
    positions += [len(items)] * (len(summary.failed) - len(positions))
    return items


class _Counts:
    """run_article's progress hooks, unused in a worker: the counts it returns feed the driver's bar."""

    def article_done(self, size: int, sentences: int) -> None:
        pass

    def article_dropped(self, size: int) -> None:
        pass


class ArticleWorker:
    """One Ray actor: engine and cache loaded once, then article items -> written outputs."""

    def __init__(self, *, out_dir, model, engine, beam, cache, cache_ttl, no_cache, threads, force=False, settings=None,
                 terms=None):
        # the engine options arrive as arguments (``settings``: the driver's, else the defaults),
        # made this process's for e5 and the aligner: nothing travels through the environment
        from mt.settings import defaults, use

        settings = use((settings or defaults()).model_copy(update=dict(
            model=model, engine=engine, engine_threads=threads, cache=cache, cache_ttl=cache_ttl, no_cache=no_cache)))
        import dataclasses

        from mt.cache import open_cache
        from mt.engines.loader import load_engine

        self.out_dir, self.force, self.terms = Path(out_dir), force, terms  # TermRules pickles (frozen dataclass)
        self.engine = load_engine(model, engine=engine, device=settings.device, config=settings)
        self.settings = None if beam is None else dataclasses.replace(self.engine.settings, beam=beam)
        self.cache = open_cache(cache, disabled=no_cache, ttl=cache_ttl, max_entries=settings.cache_max_entries)

    def __call__(self, batch) -> dict:
        rows = {name: [] for name in ("index", "size", "sentences", "cache_hits", "skipped", "claimed",
                                      "failed", "name", "error")}
        for item in zip(*(batch.column(name).to_pylist() for name in COLUMNS)):
            for column, value in zip(rows, self.translate(dict(zip(COLUMNS, item)))):
                rows[column].append(value)
        return rows

    def translate(self, item: dict) -> tuple:
        """Claim, read, translate, write one article; never raises (run_article names failures)."""
        summary, name = BatchSummary(), item["name"]
        if item["offset"] < 0:
            outputs = input_outputs(name, self.out_dir)
            source = InputFile(name, Path(item["path"]), item["size"])
            load = lambda: load_input(source, outputs)  # noqa: E731
        else:
            outputs = stem_outputs(item["stem"])
            line = CorpusLine(name, item["stem"], item["offset"], item["length"])
            load = lambda: load_corpus_line(Path(item["path"]), line, self.out_dir)  # noqa: E731
        run_article(name, outputs, load, item["size"], self.engine, self.cache, self.settings, summary, _Counts(),
                    self.force, self.terms)
        failed, error = (summary.failed[0] if summary.failed else ("", ""))
        return (item["index"], item["size"], summary.sentences, summary.cache_hits, summary.skipped,
                summary.claimed, failed, name, error)

    def __del__(self):
        try:
            self.cache.close()  # flush hit counts (SQLite, Redis)
        except Exception:  # noqa: BLE001 - the process is going away anyway
            pass


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401 - the Data library is a separate extra of ray
    except ImportError:
        raise ConfigError(f"mt batch --ray needs Ray Data: {INSTALL_HINT}") from None
    return ray


def _start(ray, address: str | None, workers: int, threads: int) -> bool:
    """Connect to ADDRESS ("auto", "ray://host:10001", "host:6379"), or start a local Ray
    instance sized for the pool; True when we started it (and must shut it down)."""
    logging.getLogger("ray").setLevel(logging.ERROR)
    if ray.is_initialized():
        return False
    if address:
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"--ray {address}: cannot connect to the Ray cluster ({exc})") from None
        return True
    # Exactly the pool's CPUs: Ray prestarts one idle worker process per CPU at init, and each
    # becomes an actor; a larger count only starts processes that compete for the cores.
    ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    return True


def translate_with_ray(source, out_dir, *, model=None, engine=None, beam=None, cache=None,
                       cache_ttl=None, no_cache=False, address=None, workers=1, threads=1,
                       progress=True, force=False, settings=None, terms=None) -> BatchSummary:
    """Translate a folder or corpus .jsonl on Ray: ``workers`` actors on ``threads`` CPUs each.
    ``cache`` is a path or URL every actor opens (a Redis URL for a cluster, a shared file
    otherwise); byte-identical outputs to the local batch with the same model and settings.
    ``settings`` (mt.settings.Settings): the other engine options, handed to every actor; ``terms``
    (mt.terms.TermRules, ``--glossary``) too."""
    if workers < 1 or threads < 1:
        raise ConfigError("--workers and --threads must be at least 1")
    ray = _import_ray()
    started = time.perf_counter()
    summary = BatchSummary()
    source, out_dir = Path(source), Path(out_dir)
    check_dirs(source, out_dir)
    positions: list[int] = []
    items = list_work(source, out_dir, summary, positions, force)
    if items:
        shut_down = _start(ray, address, workers, threads)
        try:
            _run(ray, items, summary, positions, progress, workers=workers, threads=threads,
                 worker_args=dict(out_dir=str(out_dir.resolve()), model=model, engine=engine, beam=beam,
                                  cache=cache, cache_ttl=cache_ttl, no_cache=no_cache, threads=threads,
                                  force=force, settings=settings, terms=terms))
        finally:
            if shut_down:
                ray.shutdown()
    summary.seconds = time.perf_counter() - started
    return summary


def _run(ray, items: list[dict], summary: BatchSummary, positions: list[int], progress: bool, *, workers, threads,
         worker_args) -> None:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours counts sentences; Ray's would count blocks
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # "execution finished" notices
    dataset = ray.data.from_items(items, override_num_blocks=min(len(items), 200)).map_batches(
        ArticleWorker, fn_constructor_kwargs=worker_args, batch_size=1, batch_format="pyarrow",
        num_cpus=threads, compute=ray.data.ActorPoolStrategy(size=workers))
    failed = [((position, 0), name, reason) for position, (name, reason) in zip(positions, summary.failed)]
    with SentenceProgress(sum(item["size"] for item in items), progress) as bar:
        for row in dataset.iter_rows():
            if row["failed"]:
                failed.append(((row["index"], 1), row["failed"], row["error"]))
                bar.article_dropped(row["size"])
            elif row["skipped"] or row["claimed"]:  # done or taken by another run since the listing
                summary.skipped += row["skipped"]
                summary.claimed += row["claimed"]
                bar.article_dropped(row["size"])
            else:
                summary.translated += 1
                summary.sentences += row["sentences"]
                summary.cache_hits += row["cache_hits"]
                bar.article_done(row["size"], row["sentences"])
    summary.failed[:] = [(name, error) for _, name, error in sorted(failed, key=lambda f: f[0])]  # listing order
