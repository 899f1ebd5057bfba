"""``mt memory import|export|stats|search|delete``: the translation memory beside a cache, from the
command line.

Import reads TMX, two-column TSV and XLIFF (:mod:`mt.io.tm_files`); entries go into the memory of
the cache ``--cache`` names (the SQLite file's ``.memory`` beside it, or its Redis), the one
``mt translate``, ``mt batch`` and the server use. A file's bad entries are skipped and counted,
never half-imported: each batch of entries is stored whole or not at all.
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import InputError
from .settings import add_options

IMPORT_BATCH = 1_000


def add_memory_parser(commands) -> None:
    memory = commands.add_parser("memory", help="import, export or count the translation memory beside the cache")
    actions = memory.add_subparsers(dest="memory_action", required=True, metavar="ACTION")
    load = actions.add_parser("import", help="add the pairs of a TMX, two-column TSV or XLIFF file")
    load.add_argument("file", metavar="FILE.tmx|.tsv|.xliff")
    load.add_argument("--project", metavar="NAME", default=None, help="the project name of every imported entry")
    load.add_argument("--unreviewed", action="store_true",
                      help="XLIFF: import units still marked as needing review too (default: confirmed units only)")
    save = actions.add_parser("export", help="write every entry (oldest first) as TMX, TSV or XLIFF")
    save.add_argument("file", metavar="FILE.tmx|.tsv|.xliff")
    save.add_argument("--project", metavar="NAME", default=None, help="only the entries of this project")
    stats = actions.add_parser("stats", help="entries, origins, projects and bounds as JSON")
    search = actions.add_parser("search", help="the entries matching a Vietnamese sentence (exact, then fuzzy "
                                               "scores of 0.75 and more), with their ids, as JSON lines")
    search.add_argument("text", metavar="TEXT")
    search.add_argument("--limit", type=_limit, default=20, metavar="N", help="at most N entries (1-100, default 20)")
    delete = actions.add_parser("delete", help="delete entries by id (ids: mt memory search, or the API)")
    delete.add_argument("ids", nargs="+", metavar="ID")
    for parser in (load, save, stats, search, delete):
        add_options(parser, ("cache",))


def _limit(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to 100, not {value!r}")
    return int(value)


def open_memory(args):
    from .cache import open_cache
    from .cache.memory import memory_of

    config = args.settings
    if config.no_cache:
        raise InputError("the translation memory lives beside the cache: drop --no-cache / MT_NO_CACHE")
    memory = memory_of(open_cache(config.cache, max_entries=config.cache_max_entries))
    if memory is None:
        raise InputError("no translation memory for this cache")
    return memory


def run_memory(args: argparse.Namespace) -> int:
    actions = {"import": run_import, "export": run_export, "stats": run_stats, "search": run_search,
               "delete": run_delete}
    return actions[args.memory_action](args)


def run_import(args) -> int:
    from .cache.memory_base import checked, memory_key
    from .io.documents import read_file
    from .io.tm_files import file_format, read_memory_file

    file_format(args.file)  # an unknown extension fails before the file is read
    found = read_memory_file(read_file(args.file), args.file, unreviewed=args.unreviewed, project=args.project)
    memory = open_memory(args)
    good = []
    for number, entry in enumerate(found.entries, 1):
        try:
            entry = checked(entry, number, memory.max_chars)
        except InputError as error:
            found.skip(str(error).split(": ", 1)[-1])
            continue
        if memory_key(entry.source):
            good.append(entry)
        else:
            found.skip("with no Vietnamese text once normalised")
    for start in range(0, len(good), IMPORT_BATCH):
        memory.add(good[start:start + IMPORT_BATCH])
    print(f"imported {len(good):,} {'entry' if len(good) == 1 else 'entries'} from {args.file} into {memory.location}")
    for why, count in found.skipped.items():
        print(f"skipped {count:,} {'unit' if count == 1 else 'units'} {why}", file=sys.stderr)
    return 0 if good or not found.skipped else 1


def run_export(args) -> int:
    from .io.documents import write_bytes_atomic
    from .io.tm_files import file_format, write_memory_file

    file_format(args.file)
    memory = open_memory(args)
    entries = [entry for entry in memory.entries() if args.project is None or entry.project == args.project]
    write_bytes_atomic(args.file, write_memory_file(entries, args.file))
    print(f"exported {len(entries):,} entries from {memory.location} to {args.file}")
    return 0


def run_stats(args) -> int:
    print(json.dumps(open_memory(args).stats(), indent=2, ensure_ascii=False))
    return 0


def run_search(args) -> int:
    from .pipeline import check_unicode

    check_unicode(args.text, "the text")
    for hit in open_memory(args).search(args.text, args.limit):
        print(json.dumps(hit, ensure_ascii=False))
    return 0


def run_delete(args) -> int:
    """Exit 1 when an id was not found (the others are deleted all the same)."""
    memory = open_memory(args)
    missing = [entry_id for entry_id in dict.fromkeys(args.ids) if not memory.delete(entry_id)]
    deleted = len(dict.fromkeys(args.ids)) - len(missing)
    print(f"deleted {deleted:,} {'entry' if deleted == 1 else 'entries'} from {memory.location}")
    for entry_id in missing:
        print(f"no entry with id {entry_id!r}", file=sys.stderr)
    return 1 if missing else 0
