"""The `mt` command: segment, translate, batch-translate a folder, align, serve, manage models and the cache.

Every translating command goes through :func:`mt.pipeline.translate_document`. Errors meant for
users (bad input, model not available offline, bad config) print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from .errors import InputError, MTError
from .settings import add_options, current, settings_from_options, use
from .io.batch_progress import printable
from .cli_memory import add_memory_parser, run_memory

EXIT_USAGE = 2


def add_model_options(parser: argparse.ArgumentParser) -> None:
    add_options(parser, ("model", "engine"))
    parser.add_argument("--beam", type=int, default=None, help="beam size (default: the model's)")


def add_term_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--glossary", metavar="FILE", default=None,
                        help="enforce these terms: Vietnamese, then English, TSV or CSV (a header line optional)")
    parser.add_argument("--no-protect", dest="protect", action="store_false",
                        help="do not keep numbers, URLs, e-mail addresses and foreign names (kept by default)")


def terms_from(args):
    """The TermRules of --glossary / --no-protect (a bad glossary file is an InputError, one line)."""
    from .terms import DEFAULT_TERMS, NO_TERMS, TermRules
    from .terms.glossary_file import read_glossary_file

    glossary = read_glossary_file(args.glossary) if getattr(args, "glossary", None) else {}
    protect = getattr(args, "protect", True)
    return TermRules(glossary=glossary, protect=protect) if glossary else DEFAULT_TERMS if protect else NO_TERMS


def add_cache_options(parser: argparse.ArgumentParser) -> None:
    add_options(parser.add_mutually_exclusive_group(), ("cache", "no_cache"))
    add_options(parser, ("cache_ttl",))


# the options of `mt` that are fields of mt.settings.Settings (variable, default and limits there)
SETTINGS_FIELDS = ("model", "engine", "cache", "no_cache", "cache_ttl", "engine_threads")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mt", description="Vietnamese→English translation and alignment")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    segment = commands.add_parser("segment", help="split an article into sentences")
    segment.add_argument("file", metavar="FILE|-")
    segment.add_argument("--jsonl", action="store_true", help="one JSON record per segment with offsets and kind")

    translate = commands.add_parser("translate", help="translate one article")
    translate.add_argument("file", metavar="FILE|-")
    add_model_options(translate)
    add_cache_options(translate)
    add_term_options(translate)
    translate.add_argument("--jsonl", action="store_true", help="one JSON record per segment")
    translate.add_argument("--xliff", action="store_true", help="XLIFF 1.2 for CAT tools: one unit per sentence, "
                           "quality and confidence as notes (mt.io.xliff)")
    translate.add_argument("-o", "--output", metavar="OUT", default=None,
                           help="write the result to OUT instead of standard output; for .md, .html, .docx, .srt "
                           "and .vtt input it is the translated document, structure kept (format from FILE's extension)")

    batch = commands.add_parser("batch", help="translate every *.txt and document (.md .html .docx .srt .vtt) under a folder, or a corpus .jsonl (resumable)")
    batch.add_argument("in_dir", metavar="IN_DIR|CORPUS.jsonl",
                       help='a folder of *.txt articles, or a .jsonl file of {"id": ..., "text": ...} lines')
    batch.add_argument("out_dir", metavar="OUT_DIR")
    add_model_options(batch)
    add_cache_options(batch)
    add_term_options(batch)
    batch.add_argument("--quiet", action="store_true", help="no progress bar")
    batch.add_argument("--force", action="store_true",
                       help="translate every article again, even those whose outputs are current (the cache is still used)")
    batch.add_argument("--ray", metavar="ADDRESS", nargs="?", const="", default=None,
                       help="run as a Ray Data job: on the cluster at ADDRESS (auto, ray://HOST:10001), or without "
                       "ADDRESS on a local Ray started for the run (needs pip install 'mt-vi-en[ray]')")
    batch.add_argument("--workers", metavar="N", type=int, default=1,
                       help="with --ray: translating actors, each loading the model once (default 1)")
    add_options(batch, ("engine_threads",), names={"engine_threads": "--threads"})

    add_eval_parser(commands)

    commands.add_parser("models", help="list the supported models, their licences and whether they are cached")

    download = commands.add_parser("download", help="fetch a model into the local Hugging Face cache (needs internet)")
    download.add_argument("model", metavar="MODEL")

    align = commands.add_parser("align", help="align a Vietnamese article with an existing English translation")
    align.add_argument("vi_file", metavar="VI_FILE")
    align.add_argument("en_file", metavar="EN_FILE")
    align.add_argument("--lines", action="store_true",
                       help="the files are already one sentence per line: align lines, don't split")
    fmt = align.add_mutually_exclusive_group()
    fmt.add_argument("--jsonl", dest="format", action="store_const", const="jsonl",
                     help='one link per line: {"vi": [indices], "en": [indices]}')
    fmt.add_argument("--tsv", dest="format", action="store_const", const="tsv",
                     help="Vietnamese<TAB>English<TAB>score per link")
    fmt.add_argument("--tmx", dest="format", action="store_const", const="tmx", help="TMX 1.4 of the linked pairs")

    # `mt serve ARGS` is handed to mt.web.server.main (see main()): the one parser of the server's
    # options, shared with `python server.py`; listed here for `mt --help`
    commands.add_parser("serve", add_help=False,
                        help="serve the translation page and the HTTP API (options: mt serve --help)")

    cache = commands.add_parser("cache", help="inspect or clear the sentence cache")
    cache.add_argument("action", choices=["stats", "clear"])
    add_options(cache, ("cache",))
    add_memory_parser(commands)  # mt memory import|export|stats (mt.cli_memory)
    return parser


def add_eval_parser(commands) -> None:
    ev = commands.add_parser("eval", help="score models on a test set: BLEU, chrF, TER (sacrebleu), speed, fidelity")
    ev.add_argument("--model", dest="models", action="append", metavar="MODEL",
                    help="model id or directory; repeat for one table row each [MT_MODEL]")
    ev.add_argument("--engine", dest="engines", action="append", metavar="ENGINE",
                    help="engine of every model, or repeated: of each --model in turn [MT_ENGINE]")
    ev.add_argument("--beam", type=int, default=None, help="beam size (default: the model's)")
    add_cache_options(ev)
    sets = ev.add_argument_group("test set (one of)")
    sets.add_argument("--src", metavar="FILE", help="source sentences, one per line (with --ref)")
    sets.add_argument("--ref", metavar="FILE", help="reference translations, one per line of --src")
    sets.add_argument("--tmx", metavar="FILE", help="a TMX: units with a vi* and an en* segment")
    sets.add_argument("--iwslt", metavar="DIR|FILE", help="IWSLT'15 XML pair: a folder (see --iwslt-split) "
                      "or one of its .vi.xml/.en.xml files")
    sets.add_argument("--iwslt-split", default="tst2013", metavar="NAME",
                      help="split of an --iwslt folder: tst2013 to report; dev2010, tst2010-2012 to tune")
    sets.add_argument("--testset", metavar="NAME", help="a sacrebleu test set, downloaded (needs internet)")
    sets.add_argument("--langpair", default="vi-en", help="language pair of --testset (default vi-en)")
    ev.add_argument("--limit", type=int, metavar="N", help="only the first N lines")
    ev.add_argument("--segment", action="store_true", help="split each line into sentences first (default: "
                    "each line is one segment)")
    ev.add_argument("--out", metavar="DIR", help="write <model>.hyp.txt per model and report.json here")


_LOADING: list = []  # e5 preload threads: joined before exit (a CTranslate2 model half-built at exit aborts)


def finish_loading() -> None:
    for thread in _LOADING:
        thread.join()
    _LOADING.clear()


def load_engine_from(args):
    from .engines.loader import load_engine

    config = args.settings
    return load_engine(config.model, engine=config.engine, device=config.device, config=config)


def settings_from(args, engine):
    if args.beam is None:
        return None
    if args.beam < 1:
        raise InputError("--beam must be at least 1")
    return dataclasses.replace(engine.settings, beam=args.beam)


def cache_from(args, *, memory: bool = True):
    """The cache of the options; ``memory=False`` (mt eval: a score is the model's): no memory lookups."""
    from .cache import open_cache

    config = args.settings
    cache = open_cache(config.cache, disabled=config.no_cache, ttl=config.cache_ttl,
                       max_entries=config.cache_max_entries)
    if config.memory == "off" or not memory:  # MT_MEMORY=off: no translation memory lookups (mt.cache.memory)
        from .cache.memory import switch_off

        switch_off(cache)
    return cache


def run_segment(args) -> int:
    from .io.formats import read_article
    from .text.segment import split_sentences

    for segment in split_sentences(read_article(args.file)):
        if args.jsonl:
            print(json.dumps(dataclasses.asdict(segment), ensure_ascii=False))
        else:
            print(segment.text)
    return 0


def run_translate(args) -> int:
    from .io.documents import is_document
    from .io.formats import read_article, to_jsonl, write_atomic
    from .pipeline import preload_quality, translate_document

    if args.jsonl and args.xliff:
        raise InputError("--jsonl and --xliff are two output formats: choose one")
    if args.file != "-" and is_document(args.file):
        return run_translate_document(args)
    text = read_article(args.file)
    terms = terms_from(args)  # a bad glossary is refused before the model loads
    if args.jsonl or args.xliff:
        _LOADING.append(preload_quality())
    engine = load_engine_from(args)
    # word links and quality scores only appear in --jsonl: plain text output skips their cost
    document = translate_document(text, engine, cache_from(args), settings=settings_from(args, engine),
                                  links=args.jsonl, quality=args.jsonl or args.xliff, terms=terms)
    output = to_jsonl(document) if args.jsonl else document.translation + "\n"
    if args.xliff:
        from .io.xliff import write_xliff

        output = write_xliff(document, "document" if args.file == "-" else os.path.basename(args.file)).decode()
    if args.output and args.output != "-":
        from pathlib import Path

        write_atomic(Path(args.output), output)
    else:
        sys.stdout.write(output)
    return 0


def run_translate_document(args) -> int:
    """HTML, Markdown, DOCX, SRT, WebVTT: the translated file (or its aligned segments with --jsonl)."""
    from .io.documents import format_for, read_file, translate_file, write_bytes_atomic
    from .io.formats import to_jsonl

    if format_for(args.file).binary and not args.jsonl and not args.xliff and not args.output:  # checked before any work
        raise InputError(f"{args.file}: a {format_for(args.file).name.upper()} file "
                         "is binary; pass -o OUT (or -o - for standard output)")
    data = read_file(args.file)
    terms = terms_from(args)
    if args.jsonl or args.xliff:
        from .pipeline import preload_quality

        _LOADING.append(preload_quality())
    engine = load_engine_from(args)
    result = translate_file(data, os.path.basename(args.file), engine, cache_from(args),
                            settings=settings_from(args, engine), quality=args.jsonl or args.xliff, terms=terms)
    output = to_jsonl(result.document).encode("utf-8") if args.jsonl else result.data
    if args.xliff:
        from .io.xliff import write_xliff

        output = write_xliff(result.document, os.path.basename(args.file))
    if args.output and args.output != "-":
        write_bytes_atomic(args.output, output)
    else:
        sys.stdout.buffer.write(output)
        sys.stdout.flush()
    return 0


def run_batch(args) -> int:
    """Exit 0: every article is done (translated now, before, or by another run holding its claim);
    1: some article failed (each named in the summary; the others were done); 2: nothing was
    tried (bad arguments or folders, model not available)."""
    from pathlib import Path

    from .io.folder_batch import check_dirs, translate_folder

    if args.workers < 1:
        raise InputError("--workers must be at least 1")
    check_dirs(Path(args.in_dir), Path(args.out_dir))  # before the model loads: a refusal is quick
    terms = terms_from(args)
    if args.ray is not None:
        from .io.ray_batch import translate_with_ray

        config = args.settings
        if args.beam is not None and args.beam < 1:
            raise InputError("--beam must be at least 1")
        summary = translate_with_ray(
            args.in_dir, args.out_dir, model=config.model, engine=config.engine, beam=args.beam,
            cache=config.cache, cache_ttl=config.cache_ttl, no_cache=config.no_cache, address=args.ray or None,
            workers=args.workers, threads=int(getattr(args, "engine_threads", None) or 1), settings=config,
            progress=not args.quiet, force=args.force, terms=terms)
        print(summary.describe(), file=sys.stderr)
        return 1 if summary.failed else 0
    if args.workers != 1:
        raise InputError("--workers needs --ray (the local batch is one worker)")
    from .pipeline import preload_quality

    _LOADING.append(preload_quality())  # every article's .jsonl has quality scores
    engine = load_engine_from(args)
    try:  # per-article faults are in the summary; this is for the folder as a whole
        summary = translate_folder(
            args.in_dir, args.out_dir, engine, cache_from(args),
            settings=settings_from(args, engine), progress=not args.quiet, force=args.force, terms=terms,
        )
    except OSError as error:
        print(f"mt: error: {printable(str(error), backslash=False)}", file=sys.stderr)
        return 1
    print(summary.describe(), file=sys.stderr)
    return 1 if summary.failed else 0


def run_eval(args) -> int:
    from .io import testsets
    from .io.evaluation import evaluate, format_report

    chosen = [name for name in ("src", "tmx", "iwslt", "testset") if getattr(args, name)]
    if len(chosen) != 1 or bool(args.src) != bool(args.ref):
        raise InputError("give one test set: --src FILE --ref FILE, --tmx FILE, --iwslt DIR or --testset NAME")
    testset = {"src": lambda: testsets.parallel_files(args.src, args.ref), "tmx": lambda: testsets.tmx_file(args.tmx),
               "iwslt": lambda: testsets.iwslt_pair(args.iwslt, args.iwslt_split),
               "testset": lambda: testsets.sacrebleu_set(args.testset, args.langpair)}[chosen[0]]().first(args.limit)
    models, engines = args.models or [args.settings.model], args.engines or [args.settings.engine]
    if len(engines) not in (1, len(models)):
        raise InputError(f"{len(engines)} --engine for {len(models)} --model: give one, or one per model")
    pairs = list(zip(models, engines if len(engines) == len(models) else engines * len(models)))
    report = evaluate(testset, pairs, cache_from(args, memory=False), config=args.settings, beam=args.beam,
                      segment=args.segment, out_dir=args.out)
    sys.stdout.write(format_report(report))
    return 0


def run_models(args) -> int:
    from .models import model_status_rows

    rows = model_status_rows()
    width = max(len(row["id"]) for row in rows)
    print(f"{'model':<{width}}  {'family':<7} {'licence':<14} {'size':<6} {'FLORES BLEU':<11} status")
    for row in rows:
        flags = ("default, " if row["default"] else "") + ("cached" if row["cached"] else "not cached")
        bleu = row["published"].get("bleu_flores")
        print(f"{row['id']:<{width}}  {row['family']:<7} {row['license']:<14} {row['size'] or '-':<6} "
              f"{'-' if bleu is None else f'{bleu:.1f}':<11} {flags}")
        if row["published"]:  # published figures are cited, not measured: say so, with the source
            scores = ", ".join(f"{k} {v:g}" for k, v in row["published"].items())
            print(f"{'':<{width}}  published, not measured here: {scores} ({row['score_source']})")
    return 0


def run_download(args) -> int:
    from .models import download, resolve_model

    path = download(resolve_model(args.model))
    print(f"{args.model}: saved in {path}")
    return 0


def run_cache(args) -> int:
    from .cache import open_cache

    cache = open_cache(args.settings.cache, max_entries=args.settings.cache_max_entries)
    if args.action == "clear":
        kinds = cache.stats().get("kinds") or {}  # counted before: clear() returns sentences only
        extra = (f" (and {kinds['links']} word-link and {kinds['quality']} quality entries)"
                 if kinds.get("links") or kinds.get("quality") else "")
        if kinds.get("confidence"):
            extra += f" ({kinds['confidence']} decoder confidences too)"
        print(f"removed {cache.clear()} cached sentences{extra} from {cache.stats().get('path')}")
    else:
        print(json.dumps(cache.stats(), indent=2, default=str))
    return 0


def run_align(args) -> int:
    from .align import align_document
    from .io.formats import alignment_jsonl, alignment_tmx, alignment_tsv, read_article

    result = align_document(read_article(args.vi_file), read_article(args.en_file), lines=args.lines)
    render = {"jsonl": alignment_jsonl, "tmx": alignment_tmx}.get(args.format, alignment_tsv)
    sys.stdout.write(render(result))
    return 0


COMMANDS = {
    "segment": run_segment,
    "translate": run_translate,
    "batch": run_batch,
    "eval": run_eval,
    "models": run_models,
    "download": run_download,
    "cache": run_cache,
    "align": run_align,
    "memory": run_memory,
}


def _debug() -> bool:
    """MT_DEBUG: raise an internal error with its traceback."""
    try:
        return current().debug
    except MTError:
        return False


def run_serve(argv: list[str]) -> int:
    from .web.server import main as serve_main

    return serve_main(argv, prog="mt serve")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["serve"]:
        return run_serve(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        args.settings = use(settings_from_options(args, SETTINGS_FIELDS))  # ConfigError naming the variable
        return COMMANDS[args.command](args)
    except MTError as error:  # bad input (mt.errors.InputError and kin): one line, exit 2
        print(f"mt: error: {printable(str(error), backslash=False)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mt translate ... | head`
        return 0
    except OSError as error:  # a disk, a mount or a permission: the user's to fix, said in one line
        print(f"mt: error: {printable(str(error), backslash=False)}", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - a bug of ours: one line, the traceback only on request
        if _debug():
            raise
        print(f"mt: internal error: {type(error).__name__}: {error} (set MT_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1
    finally:
        finish_loading()


if __name__ == "__main__":
    sys.exit(main())
