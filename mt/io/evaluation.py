"""`mt eval`: translate a test set with one or more models and score them side by side.

Why here and this way: scores are only comparable when computed the standard way, so BLEU, chrF
and TER come from sacrebleu itself (its signatures printed beside them), never re-implemented.
Each line is translated as ONE segment through the pipeline's own steps (normalisation, the
cache, the engine: :func:`mt.pipeline.fill_translations`), so a score describes what users get;
``segment=True`` splits lines into sentences first (:func:`mt.pipeline.translate_documents`).
Fidelity figures count what a model must carry over unchanged: numbers, URLs, foreign names.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from mt.document import SentencePair
from mt.io.formats import write_atomic
from mt.io.testsets import EvalSet
from mt.pipeline import check_unicode, fill_translations, translate_documents
from mt.text.normalize import is_word_segmented, normalize
from mt.text.tones import _is_syllable

__all__ = ["ModelRun", "translate_lines", "fidelity", "scores", "evaluate", "format_report", "slug"]

NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
LINK = re.compile(r"(?:https?://|www\.)[^\s<>\"'“”]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
TRAILING = ".,;:!?)]}'\"”’"
TOKEN_CHUNK = 512


@dataclass
class ModelRun:
    """One model's pass over a test set: its hypotheses and what the run cost."""

    label: str
    model: str
    engine: str
    hypotheses: list[str]
    seconds: float
    cached: int
    target_tokens: int
    token_unit: str
    metrics: dict = field(default_factory=dict)
    fidelity: dict = field(default_factory=dict)


def slug(label: str) -> str:
    """A file name from a row label: ``opus-mt-vi-en (ctranslate2)`` → ``opus-mt-vi-en-ctranslate2``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.") or "model"


def _line_pairs(lines: list[str], tone: str) -> list[SentencePair]:
    """One pair per line, normalised as the pipeline normalises a segment (word-segmented input
    decided once for the whole set, as the pipeline decides it once per article)."""
    word_segmented = is_word_segmented("\n".join(lines))
    pairs = []
    for index, line in enumerate(lines):
        check_unicode(line, f"line {index + 1}")
        pairs.append(SentencePair(index=index, paragraph=index, kind="sentence", start=0, end=len(line),
                                  source=line, normalized=normalize(line, tone=tone, word_segmented=word_segmented).text,
                                  translation="", cached=False))
    return pairs


def translate_lines(lines: list[str], engine, cache, settings=None, *, segment: bool = False) -> tuple[list[str], int, float]:
    """Hypotheses (one per line, never a line break inside), lines served wholly by the cache, seconds."""
    started = time.perf_counter()
    if segment:
        documents = translate_documents(lines, engine, cache, settings=settings, links=False, quality=False)
        hypotheses = [document.translation for document in documents]
        cached = sum(1 for document in documents
                     if document.sentences and all(pair.cached or not pair.normalized.strip()
                                                   for pair in document.sentences)
                     and any(pair.cached for pair in document.sentences))
    else:
        pairs = _line_pairs(lines, engine.spec.tone)
        fill_translations(pairs, engine, cache, settings)
        hypotheses = [pair.translation for pair in pairs]
        cached = sum(1 for pair in pairs if pair.cached)
    seconds = time.perf_counter() - started
    return [" ".join(text.split()) for text in hypotheses], cached, seconds


def count_target_tokens(engine, hypotheses: list[str]) -> tuple[int, str]:
    """Target tokens of the hypotheses by the model's own target tokenizer (what the decoder
    produced, near enough), else whitespace words; the unit says which."""
    tokenizer = getattr(engine, "tokenizer", None)
    if tokenizer is not None:
        try:
            total = 0
            for start in range(0, len(hypotheses), TOKEN_CHUNK):
                chunk = hypotheses[start : start + TOKEN_CHUNK]
                total += sum(len(ids) for ids in tokenizer(text_target=chunk, add_special_tokens=False)["input_ids"])
            return total, "target tokens (the model's tokenizer)"
        except Exception:  # noqa: BLE001 - a tokenizer without text_target: fall back to words
            pass
    return sum(len(text.split()) for text in hypotheses), "whitespace words"


def scores(hypotheses: list[str], references: list[list[str]]) -> dict:
    """BLEU, chrF and TER by sacrebleu with its default settings, each with its signature."""
    from sacrebleu.metrics import BLEU, CHRF, TER

    out = {}
    for name, metric in (("BLEU", BLEU()), ("chrF", CHRF()), ("TER", TER())):
        result = metric.corpus_score(hypotheses, references)
        out[name] = {"score": result.score, "signature": str(metric.get_signature())}
    return out


def number_values(token: str) -> set[str]:
    """The values a digit group may mean: Vietnamese 1.000,5 and English 1,000.5 are both 1000.5;
    an ambiguous 1.000 is both 1000 and 1."""
    values = set()
    for thousands, decimal in ((".", ","), (",", ".")):
        parts = token.split(decimal)
        if len(parts) > 2:
            continue
        try:
            value = Decimal(parts[0].replace(thousands, "") + ("." + parts[1] if len(parts) == 2 else ""))
        except InvalidOperation:
            continue
        values.add(format(value.normalize(), "f"))
    return values


def _links(text: str) -> list[str]:
    return [link.rstrip(TRAILING) for link in LINK.findall(text)]


def _foreign_words(text: str) -> list[str]:
    """Latin-script words of two letters or more that do not parse as one Vietnamese syllable."""
    return [word for word in WORD.findall(LINK.sub(" ", text))
            if len(word) > 1 and all(not ch.isalpha() or unicodedata.name(ch, "").startswith("LATIN") for ch in word)
            and not _is_syllable(word)]


def fidelity(sources: list[str], hypotheses: list[str]) -> dict:
    """For numbers, URLs/e-mails and foreign words of the sources: how many, how many found in
    their own line's hypothesis, and the share (None when the set has none)."""
    counts = {"numbers": [0, 0], "links": [0, 0], "foreign_words": [0, 0]}
    for source, hypothesis in zip(sources, hypotheses):
        hyp_values = set().union(*(number_values(t) for t in NUMBER.findall(LINK.sub(" ", hypothesis))))
        for token in NUMBER.findall(LINK.sub(" ", source)):
            counts["numbers"][0] += 1
            counts["numbers"][1] += bool(number_values(token) & hyp_values)
        folded = hypothesis.casefold()
        for link in _links(source):
            counts["links"][0] += 1
            counts["links"][1] += link.casefold() in folded
        hyp_words = {word.casefold() for word in WORD.findall(hypothesis)}
        for word in _foreign_words(source):
            counts["foreign_words"][0] += 1
            counts["foreign_words"][1] += word.casefold() in hyp_words
    return {name: {"total": total, "found": found, "share": found / total if total else None}
            for name, (total, found) in counts.items()}


def evaluate(testset: EvalSet, models: list[tuple[str | None, str | None]], cache, *, config=None,
             beam: int | None = None, segment: bool = False, out_dir: str | Path | None = None) -> dict:
    """Each ``(model, engine)`` loaded in turn (one in memory at a time), translating the set and
    scored; the report (also ``out_dir/report.json`` beside ``<label>.hyp.txt`` files)."""
    from mt.engines.loader import load_engine
    from mt.errors import InputError

    runs: list[ModelRun] = []
    labels: set[str] = set()
    for model, engine_name in models:
        engine = load_engine(model, engine=engine_name, config=config)
        settings = None
        if beam is not None:
            if beam < 1:
                raise InputError("--beam must be at least 1")
            settings = engine.settings.replace(beam=beam)
        name = Path(engine.spec.id).name if engine.spec.path is not None else engine.spec.id  # a folder: its name
        base = label = f"{name} ({engine.name})"
        while label in labels:  # the same model and engine twice (e.g. two --beam runs): #2, #3
            label = f"{base} #{len([x for x in labels if x.startswith(base)]) + 1}"
        labels.add(label)
        hypotheses, cached, seconds = translate_lines(testset.sources, engine, cache, settings, segment=segment)
        tokens, unit = count_target_tokens(engine, hypotheses)
        run = ModelRun(label, engine.spec.id, f"{engine.name}-{engine.precision}", hypotheses, seconds, cached,
                       tokens, unit)
        run.metrics = scores(hypotheses, testset.references)
        run.fidelity = fidelity(testset.sources, hypotheses)
        runs.append(run)
        del engine
    report = _report(testset, runs, segment)
    if out_dir is not None:
        write_outputs(Path(out_dir), report, runs)
    return report


def _report(testset: EvalSet, runs: list[ModelRun], segment: bool) -> dict:
    lines = len(testset)
    return {
        "testset": {"name": testset.name, "lines": lines, "references": len(testset.references),
                    "segmented": segment, **testset.origin},
        "models": [{
            "label": run.label, "model": run.model, "engine": run.engine,
            "hypotheses": slug(run.label) + ".hyp.txt",
            "metrics": run.metrics,
            "speed": {"seconds": round(run.seconds, 3), "sentences_per_s": lines / run.seconds if run.seconds else None,
                      "target_tokens": run.target_tokens, "token_unit": run.token_unit,
                      "target_tokens_per_s": run.target_tokens / run.seconds if run.seconds else None},
            "cached": run.cached, "cached_text": f"{run.cached} of {lines}",
            "fidelity": run.fidelity,
        } for run in runs],
    }


def write_outputs(out_dir: Path, report: dict, runs: list[ModelRun]) -> None:
    """``<label>.hyp.txt`` per model (one line per source line) and ``report.json``."""
    for run, entry in zip(runs, report["models"]):
        write_atomic(out_dir / entry["hypotheses"], "".join(text + "\n" for text in run.hypotheses))
    write_atomic(out_dir / "report.json", json.dumps(report, ensure_ascii=False, indent=2) + "\n")


def _share(item: dict) -> str:
    return "-" if item["share"] is None else f"{100 * item['share']:.0f}% ({item['found']}/{item['total']})"


def format_report(report: dict) -> str:
    """The table, one row per model, then the signatures and how speed and fidelity were counted."""
    set_info = report["testset"]
    units = {entry["speed"]["token_unit"] for entry in report["models"]}
    header = ["model", "BLEU", "chrF", "TER", "sent/s", "tok/s", "numbers", "URLs", "foreign", "cached"]
    rows = []
    for entry in report["models"]:
        metrics, speed, fid = entry["metrics"], entry["speed"], entry["fidelity"]
        rows.append([entry["label"], f"{metrics['BLEU']['score']:.2f}", f"{metrics['chrF']['score']:.2f}",
                     f"{metrics['TER']['score']:.2f}", f"{speed['sentences_per_s'] or 0:.1f}",
                     f"{speed['target_tokens_per_s'] or 0:.0f}", _share(fid["numbers"]), _share(fid["links"]),
                     _share(fid["foreign_words"]), entry["cached_text"]])
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"test set: {set_info['name']} ({set_info['lines']} lines, {set_info['references']} reference"
             f"{'s' if set_info['references'] != 1 else ''}; "
             f"{'lines split into sentences' if set_info['segmented'] else 'one segment per line'})"]
    for row in [header, *rows]:
        lines.append("  ".join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                               for i, (cell, width) in enumerate(zip(row, widths))).rstrip())
    first = report["models"][0]["metrics"] if report["models"] else {}
    for name in ("BLEU", "chrF", "TER"):
        if name in first:
            lines.append(f"{name} signature: {first[name]['signature']}")
    lines.append(f"tok/s: {' / '.join(sorted(units))} per second of translation (cache lookups included)")
    lines.append("numbers, URLs, foreign: share of the source's digit groups (1.000,5 = 1,000.5), URLs/e-mails "
                 "and non-Vietnamese Latin words found in the same line's output")
    for entry in report["models"]:
        if entry["cached"]:
            lines.append(f"{entry['label']}: cached: {entry['cached_text']} lines came from the cache "
                         "(its speed is the cache's, not the model's; --no-cache for a fresh run)")
    return "\n".join(lines) + "\n"
