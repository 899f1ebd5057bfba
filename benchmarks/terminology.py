"""Terminology (issue #22): term adherence, protected-span retention and time cost of ``mt.terms``.

Data: IWSLT'15 TED en–vi (``../shared/data/iwslt15``, CC BY-NC-ND 3.0): line i of the ``.vi.xml``
file is the human translation of line i of the ``.en.xml`` file.

The glossary is drawn from the references of the split itself: Vietnamese syllable pairs (most
Vietnamese words are two syllables: ``khí hậu``) and English words of four letters or more that
are not stop words are counted per line pair; a pair (v, e) is an entry when it co-occurs in at
least ``--min-count`` line pairs and its Dice coefficient 2·c(v,e) / (c(v) + c(e)) is at least
``--min-dice`` (each Vietnamese and each English used once, strongest first, ``--entries`` at most).
This finds what a translator's glossary holds (``khí hậu`` → climate, ``ung thư`` → cancer) without
anyone writing it; the entries are printed.

Measured on the first ``--lines`` non-empty lines that hold an entry (translated in one
``translate_documents`` pass, word links on, quality scores off, no cache):

* term adherence: share of glossary matches (an entry's Vietnamese in a sentence) whose English
  is in the sentence's English, with the glossary and plain (the model alone);
* protected-span retention: the same for numbers (English form), URLs, e-mail addresses and
  foreign names;
* time cost: plain runs and glossary runs alternate (``--rounds`` each, the model translating every
  time: no cache); the median of each, their difference, and the terms stage's own time
  (``terms_ms``) as a share of the plain run. Goal: at most 5 %.

    python benchmarks/terminology.py                     # tiny random-weight model (the default, --tiny)
    python benchmarks/terminology.py --model opus-mt-vi-en --split tst2013
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # mt and testkit from the checkout

from testkit.shared_data import iwslt_talks  # noqa: E402
from mt.pipeline import translate_documents  # noqa: E402
from mt.terms import NO_TERMS, TermRules  # noqa: E402
from mt.terms.enforce import _English  # noqa: E402
from mt.terms.find import SYLLABLE_RE, english_number  # noqa: E402
from mt.text.normalize import normalize  # noqa: E402
from mt.text.words import split_words  # noqa: E402

STOP = frozenset("""
that this with have from they what there their about which would when were been them more will some
then than into just like your very know these those because could really other people think going
want make where here also only over said does even much many most such each thing things well back
years year time times world first little lots being little every through thank thanks right
""".split())
_EN_WORD_RE = re.compile(r"[a-z]+")


def draw_glossary(vi_lines: list[str], en_lines: list[str], entries: int, min_count: int,
                  min_dice: float) -> dict[str, str]:
    """Entries Vietnamese syllable pair → English word, by Dice over the line pairs (see module doc)."""
    count_v: Counter = Counter()
    count_e: Counter = Counter()
    count_ve: Counter = Counter()
    for vi, en in zip(vi_lines, en_lines):
        syllables = [token.casefold() for token in SYLLABLE_RE.findall(normalize(vi).text) if token.isalpha()]
        bigrams = {f"{a} {b}" for a, b in zip(syllables, syllables[1:])}
        words = {word for word in _EN_WORD_RE.findall(en.lower()) if len(word) >= 4 and word not in STOP}
        count_v.update(bigrams)
        count_e.update(words)
        count_ve.update((v, e) for v in bigrams for e in words)
    scored = []
    for (v, e), both in count_ve.items():
        if both >= min_count:
            dice = 2 * both / (count_v[v] + count_e[e])
            if dice >= min_dice:
                scored.append((dice, both, v, e))
    glossary: dict[str, str] = {}
    used = set()
    for dice, both, v, e in sorted(scored, reverse=True):
        if v not in glossary and e not in used:
            glossary[v] = e
            used.add(e)
        if len(glossary) == entries:
            break
    return glossary


def adherence(documents, rules: TermRules, tone: str) -> dict[str, list[int]]:
    """{"glossary": [met, wanted], "protected": [met, wanted]} over every sentence's terms."""
    out = {"glossary": [0, 0], "protected": [0, 0]}
    index = rules.index(tone) if rules.glossary else None
    for document in documents:
        for pair in document.sentences:
            if pair.kind == "byline" or not pair.translation:
                continue
            mapped = normalize(pair.source, tone=tone)
            items = rules.find(pair.source, mapped, index)
            if not items:
                continue
            english = _English(pair.translation, split_words(pair.translation), [])
            wanted = Counter((item.english.casefold(), item.kind == "glossary") for item in items)
            for (key, is_glossary), n in wanted.items():
                found = len(english.find(key))
                group = out["glossary" if is_glossary else "protected"]
                group[0] += min(found, n)
                group[1] += n
    return out


def share(pair: list[int]) -> str:
    met, wanted = pair
    return f"{100 * met / wanted:.1f} % ({met}/{wanted})" if wanted else "n/a (none)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="tst2013")
    parser.add_argument("--tiny", action="store_true", help="the tiny random-weight test model (the default)")
    parser.add_argument("--model", help="a real model (id or path); default: the tiny model")
    parser.add_argument("--lines", type=int, default=40, help="sentences to translate (default 40)")
    parser.add_argument("--entries", type=int, default=60, help="glossary entries at most (default 60)")
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--min-dice", type=float, default=0.7)
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each kind (default 5)")
    args = parser.parse_args()

    vi_talks, en_talks = iwslt_talks(args.split, "vi"), iwslt_talks(args.split, "en")
    pairs = [(vi, en) for vt, et in zip(vi_talks, en_talks) for vi, en in zip(vt, et) if vi and en]
    glossary = draw_glossary([vi for vi, _ in pairs], [en for _, en in pairs], args.entries, args.min_count,
                             args.min_dice)
    print(f"IWSLT'15 {args.split}: {len(pairs)} line pairs; glossary of {len(glossary)} entries from the references:")
    print("  " + ", ".join(f"{v} → {e}" for v, e in glossary.items()))

    from mt.engines.loader import load_engine

    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            engine = load_engine(args.model)
        else:
            from testkit.tiny_model import build_tiny_marian

            engine = load_engine(str(build_tiny_marian(Path(tmp) / "tiny")), engine="transformers")
        tone = engine.spec.tone
        rules = TermRules(glossary)
        index = rules.index(tone)
        chosen = [vi for vi, _ in pairs
                  if index.find(normalize(vi, tone=tone).text, lambda at: True, lambda at: True)][: args.lines]
        print(f"model: {engine.spec.id}; {len(chosen)} lines holding an entry")

        translate_documents(chosen[:4], engine, quality=False, terms=NO_TERMS)  # warm-up
        plain_times, term_times, terms_ms = [], [], []
        plain_docs = term_docs = None
        for round_ in range(args.rounds):
            for kind in ("plain", "terms") if round_ % 2 == 0 else ("terms", "plain"):  # order effects cancel
                started = time.perf_counter()
                if kind == "plain":
                    plain_docs = translate_documents(chosen, engine, quality=False, terms=NO_TERMS)
                    plain_times.append(time.perf_counter() - started)
                else:
                    term_docs = translate_documents(chosen, engine, quality=False, terms=rules)
                    term_times.append(time.perf_counter() - started)
                    terms_ms.append(term_docs[0].timings.get("terms_ms", 0.0))
            print(f"  round {round_ + 1}: plain {plain_times[-1]:.2f} s, with terms {term_times[-1]:.2f} s "
                  f"(terms stage {terms_ms[-1]:.1f} ms)", flush=True)

    plain, enforced = adherence(plain_docs, rules, tone), adherence(term_docs, rules, tone)
    print(f"term adherence:           with glossary {share(enforced['glossary'])}; plain {share(plain['glossary'])}")
    print(f"protected-span retention: with terms    {share(enforced['protected'])}; plain {share(plain['protected'])}")
    left = sum(1 for document in term_docs for pair in document.sentences for item in pair.terms
               if item["kind"] == "number" for number in (item["source"].rstrip("%"),)
               if english_number(number) != number and _English(pair.translation, [], []).find(number))
    print(f"Vietnamese-form numbers left in the English: {left}")
    hows = Counter(item["how"] for document in term_docs for pair in document.sentences for item in pair.terms)
    print("how: " + ", ".join(f"{how} {n}" for how, n in sorted(hows.items())))
    p, t, stage = statistics.median(plain_times), statistics.median(term_times), statistics.median(terms_ms)
    fastest = min(plain_times)
    print(f"time: plain median {p:.3f} s (fastest {fastest:.3f} s), with terms median {t:.3f} s (fastest "
          f"{min(term_times):.3f} s): {100 * (t - p) / p:+.1f} % median, {100 * (min(term_times) - fastest) / fastest:+.1f} % "
          f"fastest (model noise)")
    print(f"terms stage: {stage:.1f} ms a run ({1000 * stage / max(1, len(chosen)):.0f} µs a line) = "
          f"{100 * stage / 1000 / fastest:.2f} % of the fastest plain run")

if __name__ == "__main__":
    main()
