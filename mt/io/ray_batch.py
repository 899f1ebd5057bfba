"""`mt batch --ray`: the local batch's per-article step as a Ray Data job.

The driver collects the articles still to do (as the local batch does: done ones skipped,
unreadable ones named), the list becomes a dataset, and ``map_batches`` runs it through a
pool of actors that each load the engine and open the cache once; the actors write the
outputs themselves (atomically, with :func:`mt.io.folder_batch.translate_article`), so OUT must
be on a file system every node sees. Only counts travel back, feeding the driver's progress bar.
"""

from __future__ import annotations

import logging
import os
import time

from mt.errors import ConfigError, MTError

from .folder_batch import Article, BatchSummary, collect_articles, count_sentences, make_progress, translate_article

__all__ = ["translate_with_ray", "ArticleWorker", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'mt-vi-en[ray]'"


class ArticleWorker:
    """One Ray actor: engine and cache loaded once, then article batches → written outputs."""

    def __init__(self, *, model, engine, beam, cache, cache_ttl, no_cache, threads):
        os.environ["MT_THREADS"] = str(threads)  # read by both engines and the e5 runtime
        import dataclasses

        from mt.cache import open_cache
        from mt.engines.loader import load_engine

        self.engine = load_engine(model, engine=engine)
        self.settings = None if beam is None else dataclasses.replace(self.engine.settings, beam=beam)
        self.cache = open_cache(cache, disabled=no_cache, ttl=cache_ttl)

    def __call__(self, batch) -> dict:
        rows = {"index": [], "name": [], "sentences": [], "cache_hits": [], "error": []}
        columns = (batch.column(name).to_pylist() for name in ("index", "name", "text", "stem", "source"))
        for index, name, text, stem, source in zip(*columns):
            try:
                sentences, hits = translate_article(Article(str(name), str(text), str(stem), source or None),
                                                    self.engine, self.cache, self.settings)
                error = ""
            except MTError as exc:
                sentences, hits, error = 0, 0, str(exc) or type(exc).__name__
            for column, value in zip(rows, (int(index), str(name), sentences, hits, error)):
                rows[column].append(value)
        return rows


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
    quiet = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    if ray.is_initialized():
        return False
    if address:
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"--ray {address}: cannot connect to the Ray cluster ({exc})") from None
        return True
    ray.init(num_cpus=max(os.cpu_count() or 1, workers * threads), **quiet)
    return True


def translate_with_ray(source, out_dir, *, model=None, engine=None, beam=None, cache=None,
                       cache_ttl=None, no_cache=False, address=None, workers=1, threads=1,
                       progress=True) -> BatchSummary:
    """Translate a folder or corpus .jsonl on Ray: ``workers`` actors on ``threads`` CPUs each.
    ``cache`` is a path or URL every actor opens (a Redis URL for a cluster, a shared file
    otherwise); byte-identical outputs to the local batch with the same model and settings."""
    if workers < 1 or threads < 1:
        raise ConfigError("--workers and --threads must be at least 1")
    ray = _import_ray()
    started = time.perf_counter()
    summary = BatchSummary()
    articles = collect_articles(source, out_dir, summary)
    if articles:
        shut_down = _start(ray, address, workers, threads)
        try:
            _run(ray, articles, summary, progress, workers=workers, threads=threads,
                 worker_args=dict(model=model, engine=engine, beam=beam, cache=cache, cache_ttl=cache_ttl,
                                  no_cache=no_cache, threads=threads))
        finally:
            if shut_down:
                ray.shutdown()
    summary.seconds = time.perf_counter() - started
    return summary


def _run(ray, articles: list[Article], summary: BatchSummary, progress: bool, *, workers, threads,
         worker_args) -> None:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours counts sentences; Ray's would count blocks
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # "execution finished" notices
    items = [{"index": i, "name": a.name, "text": a.text, "stem": a.stem, "source": a.source or ""}
             for i, a in enumerate(articles)]
    dataset = ray.data.from_items(items, override_num_blocks=min(len(items), 200)).map_batches(
        ArticleWorker, fn_constructor_kwargs=worker_args, batch_size=1, batch_format="pyarrow",
        num_cpus=threads, compute=ray.data.ActorPoolStrategy(size=workers))
    failed = []
    with make_progress(count_sentences(articles), progress) as bar:
        for row in dataset.iter_rows():
            if row["error"]:
                failed.append((row["index"], row["name"], row["error"]))
                continue
            summary.translated += 1
            summary.sentences += row["sentences"]
            summary.cache_hits += row["cache_hits"]
            bar.update(row["sentences"])
    summary.failed += [(name, error) for _, name, error in sorted(failed)]
