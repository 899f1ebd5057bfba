"""What LibreTranslate's ``/translate`` does beyond plain text: ``format: "html"`` and ``alternatives``.

HTML goes through our document path (:mod:`mt.io.html`): only the text of each block is translated,
every tag, attribute and comment is kept, so a fragment comes back as the same fragment in English.
All fragments of one ``q`` list are translated in ONE pipeline call (one cache lookup, one batched
model call), as plain texts are.

Alternatives are built the way Argos Translate (LibreTranslate's engine) builds them: alternative k
of a text takes the k-th other hypothesis of each of its sentences (the sentence's best where it has
fewer), joined like the translation itself; duplicates and copies of the translation are dropped.
Every sentence's hypotheses come from ONE batched n-best call of the service (beam search, distinct,
best first).
"""

from __future__ import annotations

import dataclasses

from ..engines.base import MAX_ALTERNATIVES
from ..io.blocks import Block, translate_blocks
from ..io.html import read_html, write_html
from ..pipeline import join_translation, translate_documents


def visible_text(fragment: str) -> str:
    """The text a reader sees in an HTML fragment (what language detection should look at)."""
    blocks, _ = read_html(fragment.encode("utf-8"), "q.html")
    return "\n\n".join(block.text for block in blocks)


def translate_html(fragments: list[str], translator, model=None, beam=None) -> list[str]:
    """Each HTML fragment in English, markup kept; all fragments' blocks in one pipeline call."""
    translator.check_model(model)
    engine = translator.ensure_loaded()
    read = [read_html(fragment.encode("utf-8"), "q.html") for fragment in fragments]
    owner: dict[int, int] = {}
    blocks: list[Block] = []
    for n, (found, _) in enumerate(read):
        for block in found:
            owner[id(block)] = n
            blocks.append(block)
    if not any(block.text.strip() for block in blocks):
        return list(fragments)
    _, translated = translate_blocks(blocks, engine, translator.cache, settings=translator.settings_for(engine, beam))
    mine: list[list] = [[] for _ in fragments]
    for item in translated:
        mine[owner[id(item.block)]].append(item)
    return [write_html(state, items).decode("utf-8") if items else fragment
            for fragment, (_, state), items in zip(fragments, read, mine)]


def translate_with_alternatives(texts: list[str], n: int, translator, model=None, beam=None
                                ) -> tuple[list[str], list[list[str]]]:
    """The translation of each text and up to ``n`` whole-text alternatives (see the module's docstring)."""
    translator.check_model(model)
    engine = translator.ensure_loaded()
    documents = translate_documents(texts, engine, translator.cache, settings=translator.settings_for(engine, beam),
                                    links=False, quality=False)
    best: dict[str, str] = {}  # each distinct sentence -> its translation in the answer
    for document in documents:
        for pair in document.sentences:
            if pair.kind != "byline" and pair.translation.strip():
                best.setdefault(pair.source, pair.translation)
    sentences = list(best)
    wanted = min(n + 1, MAX_ALTERNATIVES)  # the translation is usually among them: 8 asked, 7 others at most
    hypotheses = translator.alternatives_many(sentences, wanted, model, beam) if sentences else []
    # sentence -> its other hypotheses, best first (one batched model call for all of them)
    others = {sentence: [text for text in found if text != best[sentence]][:n]
              for sentence, found in zip(sentences, hypotheses)}
    answers = []
    for document in documents:
        found: list[str] = []
        for k in range(n):
            pairs = [dataclasses.replace(pair, translation=others[pair.source][k])
                     if len(others.get(pair.source, ())) > k else pair for pair in document.sentences]
            text = join_translation(document.text, pairs)
            if text != document.translation and text not in found:
                found.append(text)
        answers.append(found)
    return [document.translation for document in documents], answers
