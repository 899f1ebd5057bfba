"""Put a sentence's terms into its English through the word links, and keep the links consistent.

For each term (see :mod:`mt.terms.find`), in this order:

1. a Vietnamese-form number the model copied (``250.000``) is rewritten in English form wherever
   it stands (how "replaced"; extra copies are rewritten too: none may stay);
2. an English that already holds the term's English (whole words, any case) keeps it ("kept");
   an occurrence inside the English words linked to the term is preferred;
3. else the English words linked to the term's Vietnamese words are replaced by it (the first
   contiguous run, if it is short: at most the term's own words + 2, and for a number only its
   number-like words; other linked words stay: a term never deletes the model's other words),
   or, with none usable, it is inserted after the
   English of the nearest linked Vietnamese word before it (else before that of the nearest
   after it), or with no links at all at the proportional position, at a word boundary
   ("inserted").

Edits are made on character spans of the old English, applied once; the new English words are
split again and each keeps the link of the old word (or the term) it came from. Each term ends
as one linked unit: its Vietnamese words merged into one word, every English word of it linked
to that word, and no other English word linked to it. Everything is linear in the sentence
(dictionaries and sorted sweeps; no word × term loops).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from ..document import SentencePair
from ..text.normalize import Normalized
from ..text.words import split_words
from .find import MINUS, SYLLABLE_RE, Found, english_number

__all__ = ["enforce"]

_FINAL = frozenset(".!?…")
_ARTICLES = frozenset(("the", "a", "an"))


@dataclass
class _Term:
    found: Found
    span: tuple[int, int]  # segment-local, in the source as written
    words: tuple[int, int] | None  # first and last source word it covers
    how: str = ""
    old: tuple[int, int] | None = None  # kept: where it is in the old English
    target: tuple[int, int] | None = None  # in the new English
    src: int | None = None  # its (merged) source word in the new word list


class _English:
    """The old English: its words, their links, and an index of its syllables for finding text."""

    def __init__(self, text: str, spans: list[tuple[int, int]], alignment: list[list[int]]):
        self.text = text
        self.spans = spans
        self.starts = [a for a, _ in spans]
        self.link = {e: v for v, e in alignment if 0 <= e < len(spans)}
        self.wordy = [any(char.isalnum() for char in text[a:b]) for a, b in spans]  # punctuation is never replaced
        self.at: dict[str, list[int]] = {}
        for match in SYLLABLE_RE.finditer(text):
            self.at.setdefault(match.group().casefold(), []).append(match.start())

    def find(self, key: str, number: bool = False) -> list[tuple[int, int]]:
        """Non-overlapping whole-word occurrences of ``key`` (any case), in order; a ``number``
        may touch letters (``100.000đ`` holds the number ``100.000``), not other digits."""
        first = SYLLABLE_RE.search(key)
        if first is None:
            return []
        offset, size, wanted, text = first.start(), len(key), key.casefold(), self.text
        found: list[tuple[int, int]] = []
        for position in self.at.get(first.group().casefold(), ()):
            start = position - offset
            end = start + size
            if start < 0 or end > len(text) or (found and start < found[-1][1]):
                continue
            if text[start:end].casefold() == wanted and _bounded(text, start, end, number):
                found.append((start, end))
        return found

    def words_of(self, start: int, end: int) -> tuple[int, int]:
        """First and last word overlapping ``[start, end)``."""
        first = max(0, bisect.bisect_right(self.starts, start) - 1)
        if first < len(self.spans) and self.spans[first][1] <= start:
            first += 1
        last = max(first, bisect.bisect_left(self.starts, end) - 1)
        return first, last


def _bounded(text: str, start: int, end: int, number: bool = False) -> bool:
    """Whole words: no letter or digit just outside (``number``: no digit), nor a digit group
    (``1,250,000`` holds no ``250,000``)."""
    word = str.isdigit if number else str.isalnum
    if start > 0 and (word(text[start - 1]) or text[start - 1] == "_"
                      or (text[start - 1] in ".,:" and start > 1 and text[start - 2].isdigit()
                          and text[start].isdigit())):
        return False
    if end < len(text) and (word(text[end]) or text[end] == "_"
                            or (text[end] in ".,:" and end + 1 < len(text) and text[end + 1].isdigit()
                                and text[end - 1].isdigit())):
        return False
    return True


def _word_range(starts: list[int], ends: list[int], a: int, b: int) -> tuple[int, int] | None:
    first = bisect.bisect_right(ends, a)
    last = bisect.bisect_left(starts, b) - 1
    return (first, last) if first <= last else None


def enforce(pair: SentencePair, mapped: Normalized, found: list[Found], linked: bool) -> None:
    """Apply ``found`` (terms in ``mapped.text``, sorted, disjoint) to ``pair``, in place.
    ``linked``: the pair carries word lists (fill them in again); else only the text changes."""
    source_words = split_words(pair.source)
    w_starts, w_ends = [a for a, _ in source_words], [b for _, b in source_words]
    terms = []
    for item in found:
        a, b = mapped.original_span(item.start, item.end)
        terms.append(_Term(item, (a, b), _word_range(w_starts, w_ends, a, b)))
    english = _English(pair.translation, split_words(pair.translation), pair.alignment if linked else [])
    links_of: dict[int, list[int]] = {}
    for e, v in sorted(english.link.items()):
        links_of.setdefault(v, []).append(e)  # each source word's English words, in order
    plan = _Plan(english)
    _fix_number_forms(terms, english, plan, links_of)
    _keep(terms, english, plan, links_of)
    _place(terms, english, plan, links_of, len(source_words), len(mapped.text))
    new_text, segments = plan.apply()
    old_segments = [(s, e, n) for s, e, n, ref in segments if ref == "old"]
    keys = [s for s, _, _ in old_segments]
    for term in terms:
        if term.how == "kept":
            term.target = (_new_position(old_segments, keys, term.old[0], True),
                           _new_position(old_segments, keys, term.old[1], False))
    for s, e, n, ref in segments:
        if isinstance(ref, _Term):
            ref.target = (n, n + e - s)
    done = [term for term in terms if term.target is not None]
    if linked:
        _relink(pair, source_words, done, english, new_text, segments)
    pair.translation = new_text
    pair.terms = [{"source": pair.source[a:b], "span": [pair.start + a, pair.start + b],
                   "english": new_text[term.target[0]:term.target[1]], "target_span": list(term.target),
                   "how": term.how, "kind": term.found.kind}
                  for term in done for a, b in (term.span,)]


class _Plan:
    """Character edits of the old English, and which of its words each term holds."""

    def __init__(self, english: _English):
        self.english = english
        self.edits: list[tuple[int, int, int, str, object]] = []  # start, end, order, text, term
        self.owner: list[object] = [None] * len(english.spans)  # word -> the term (or True) holding it
        self.run: dict[int, tuple[int, int]] = {}  # held word -> its run

    def hold(self, first: int, last: int, who: object) -> None:
        for word in range(first, last + 1):
            self.owner[word] = who
            self.run[word] = (first, last)

    def free(self, first: int, last: int) -> bool:
        return all(self.owner[word] is None for word in range(first, last + 1))

    def edit(self, start: int, end: int, text: str, term: object) -> None:
        self.edits.append((start, end, len(self.edits), text, term))

    def apply(self) -> tuple[str, list[tuple[int, int, int, object]]]:
        """The new English and its segments: (old start, old end, new start, "old" | term | None)."""
        old = self.english.text
        pieces, segments, pos, size = [], [], 0, 0
        for start, end, _, text, term in sorted(self.edits):
            if start < pos:
                continue  # cannot happen by construction; never corrupt the text
            if start > pos:
                segments.append((pos, start, size, "old"))
                pieces.append(old[pos:start])
                size += start - pos
            lead = len(text) - len(text.lstrip(" "))
            body = text.strip(" ")
            if lead:
                segments.append((start, start, size, None))
            if body:
                segments.append((0, len(body), size + lead, term))
            pieces.append(text)
            size += len(text)
            pos = end
        if pos < len(old) or not segments:
            segments.append((pos, len(old), size, "old"))
            pieces.append(old[pos:])
        return "".join(pieces), segments


def _new_position(segments: list[tuple[int, int, int]], keys: list[int], old: int, is_start: bool) -> int:
    """Where an old offset stands in the new English (inside an unedited stretch)."""
    k = bisect.bisect_right(keys, old) - 1
    if not is_start:
        while k > 0 and segments[k][0] == old and segments[k - 1][1] == old:
            k -= 1
    s, _, n = segments[max(k, 0)]
    return n + old - s


def _assign(terms: list[_Term], occurrences: list[tuple[int, int]], english: _English, plan: _Plan,
            links_of: dict) -> list[tuple[_Term, tuple[int, int]]]:
    """Give each term an occurrence: one among its linked English words first, else the first
    one left (one pass over the occurrences and the terms' links)."""
    free = [occ for occ in occurrences if plan.free(*english.words_of(*occ))]
    occ_of_word: dict[int, int] = {}
    for k, occ in enumerate(free):
        first, last = english.words_of(*occ)
        for word in range(first, last + 1):
            occ_of_word.setdefault(word, k)
    used = [False] * len(free)
    pairs, next_free = [], 0
    for term in terms:
        chosen = None
        if term.words is not None:
            for v in range(term.words[0], term.words[1] + 1):
                for e in links_of.get(v, ()):
                    k = occ_of_word.get(e)
                    if k is not None and not used[k]:
                        chosen = k
                        break
                if chosen is not None:
                    break
        if chosen is None:
            while next_free < len(free) and used[next_free]:
                next_free += 1
            if next_free == len(free):
                continue
            chosen = next_free
        used[chosen] = True
        plan.hold(*english.words_of(*free[chosen]), term)
        pairs.append((term, free[chosen]))
    return pairs


def _fix_number_forms(terms, english: _English, plan: _Plan, links_of: dict) -> None:
    """Rewrite every copy of a Vietnamese-form number in English form (step 1)."""
    by_form: dict[str, list[_Term]] = {}
    for term in terms:  # 250.000 -> 250,000, 12,5% -> 12.5%, and -5 -> -5 where the model dropped the sign
        if term.found.kind == "number" and term.found.english.removesuffix("%") != term.found.vietnamese:
            by_form.setdefault(term.found.vietnamese, []).append(term)
    text = english.text
    for form, group in by_form.items():
        occurrences = english.find(form, number=True)
        if any(term.found.english[:1] in MINUS for term in group):  # a copy already signed: kept (step 2)
            occurrences = [(s, e) for s, e in occurrences if not (s and text[s - 1] in MINUS)]
        for term, (s, e) in _assign(group, occurrences, english, plan, links_of):
            term.how = "replaced"
            if term.found.english.endswith("%") and text.startswith("%", e):
                e += 1  # 12,5% -> 12.5%, not 12.5%%
                plan.hold(*english.words_of(s, e), term)
            plan.edit(s, e, term.found.english, term)
        for s, e in occurrences:
            first, last = english.words_of(s, e)
            if plan.free(first, last):  # a copy beyond the terms' count: rewritten all the same
                plan.hold(first, last, True)
                plan.edit(s, e, english_number(form), None)


def _keep(terms, english: _English, plan: _Plan, links_of: dict) -> None:
    """Terms whose English is already there (step 2); longer Englishes first."""
    by_english: dict[str, list[_Term]] = {}
    for term in terms:
        if not term.how:
            by_english.setdefault(term.found.english.casefold(), []).append(term)
    for key in sorted(by_english, key=lambda key: -len(key.split())):
        group = by_english[key]
        occurrences = english.find(group[0].found.english, group[0].found.kind == "number")
        for term, occ in _assign(group, occurrences, english, plan, links_of):
            term.how, term.old = "kept", occ


def _place(terms, english: _English, plan: _Plan, links_of: dict, n_source: int, n_normalized: int) -> None:
    """Replace the linked English of the remaining terms, or insert them (step 3)."""
    spans, n = english.spans, len(english.spans)
    before: list[int | None] = []  # nearest source word at or before v with a link
    last = None
    for v in range(n_source):
        if links_of.get(v):
            last = v
        before.append(last)
    after: list[int | None] = [None] * n_source
    nxt = None
    for v in range(n_source - 1, -1, -1):
        if links_of.get(v):
            nxt = v
        after[v] = nxt
    for term in terms:
        if term.how or term.words is None:
            continue
        linked = sorted(e for v in range(term.words[0], term.words[1] + 1) for e in links_of.get(v, ())
                        if plan.owner[e] is None and english.wordy[e])
        run = _replaceable(term, linked, english)
        if run:
            _replace(term, run, english, plan)
    inserted_at_start = 0
    for term in terms:  # after every replacement: an insertion never lands inside a replaced run
        if term.how:
            continue
        wanted = term.found.english
        k = _insertion_word(term, english, links_of, before, after, n_normalized)
        if k < n and plan.owner[k] is not None and plan.run[k][0] < k:
            k = plan.run[k][1] + 1  # never inside a held run
        if k == n and n and english.text[spans[-1][0]:spans[-1][1]][:1] in _FINAL and plan.owner[n - 1] is None:
            k = n - 1  # before the final full stop
        if k == 0 or n == 0:
            position = spans[0][0] if n else len(english.text)
            text = wanted + " " if n else (" " + wanted if inserted_at_start or english.text else wanted)
            inserted_at_start += 1
        else:
            position, text = spans[k - 1][1], " " + wanted
            if k < n and spans[k][0] == position and english.wordy[k]:
                text += " "  # ";ana": the next word is attached to the previous one
        plan.edit(position, position, text, term)
        term.how = "inserted"


_NUMBER_WORDS = frozenset(("zero one two three four five six seven eight nine ten eleven twelve twenty thirty forty "
                           "fifty sixty seventy eighty ninety hundred thousand million billion trillion point percent").split())


def _replaceable(term: _Term, linked: list[int], english: _English) -> list[int]:
    """The linked English words the term may replace: the first contiguous run of them, only
    number-like words for a number, and none when the run is long (attention spread over the
    sentence, not a rendering of the term: replacing it would delete the model's words)."""
    if term.found.kind == "number":
        linked = [e for e in linked if _number_like(english.text[english.spans[e][0]:english.spans[e][1]])]
    if not linked:
        return []
    run = [linked[0]]
    for e in linked[1:]:
        if e != run[-1] + 1:
            break
        run.append(e)
    return run if len(run) <= len(term.found.english.split()) + 2 else []


def _number_like(word: str) -> bool:
    return any(char.isdigit() for char in word) or word.lower() in _NUMBER_WORDS


def _replace(term: _Term, run: list[int], english: _English, plan: _Plan) -> None:
    """The term's English in place of one contiguous run of linked words."""
    spans = english.spans
    first, last = run[0], run[-1]
    if first < last and english.text[spans[first][0]:spans[first][1]].lower() in _ARTICLES:
        first += 1  # "the missile" -> "the rocket": an article linked to the noun stays
    text = term.found.english
    if first == 0 and term.found.kind == "glossary" and english.text[spans[0][0]].isupper():
        text = text[:1].upper() + text[1:]  # it starts the sentence
    plan.edit(spans[first][0], spans[last][1], text, term)
    plan.hold(first, last, term)
    term.how = "replaced"


def _insertion_word(term: _Term, english: _English, links_of: dict, before: list, after: list,
                    n_normalized: int) -> int:
    """The English word to insert before: after the English of the nearest linked source word
    before the term, else before that of the nearest after it, else proportionally."""
    if term.words is not None and english.link:
        first, last = term.words
        v = before[first - 1] if first > 0 else None
        if v is not None:
            return links_of[v][-1] + 1
        v = after[last + 1] if last + 1 < len(after) else None
        if v is not None:
            return links_of[v][0]
    share = term.found.start / max(1, n_normalized)
    return bisect.bisect_left(english.starts, round(share * len(english.text)))


def _relink(pair: SentencePair, source_words, terms: list[_Term], english: _English, new_text: str,
            segments) -> None:
    """New word lists and links: each term one unit on both sides (see the module doc)."""
    groups: list[list] = []  # [first, last, terms]
    for term in sorted((t for t in terms if t.words is not None), key=lambda t: t.words[0]):
        first, last = term.words
        if groups and first <= groups[-1][1]:
            groups[-1][1] = max(groups[-1][1], last)
            groups[-1][2].append(term)
        else:
            groups.append([first, last, [term]])
    new_of: list[int] = []
    src_words, src_spans = [], []
    g = 0
    v = 0
    while v < len(source_words):
        if g < len(groups) and groups[g][0] == v:
            first, last, members = groups[g]
            a, b = source_words[first][0], source_words[last][1]
            for term in members:
                term.src = len(src_words)
            new_of.extend([len(src_words)] * (last - first + 1))
            src_words.append(pair.source[a:b])
            src_spans.append([pair.start + a, pair.start + b])
            v, g = last + 1, g + 1
            continue
        a, b = source_words[v]
        new_of.append(len(src_words))
        src_words.append(pair.source[a:b])
        src_spans.append([pair.start + a, pair.start + b])
        v += 1
    term_words = {term.src for term in terms if term.src is not None}
    kept_by = {word: term for term in terms if term.how == "kept"
               for first, last in (english.words_of(*term.old),) for word in range(first, last + 1)}
    tgt_spans = split_words(new_text)
    alignment = []
    k = 0
    for index, (a, _) in enumerate(tgt_spans):
        while k + 1 < len(segments) and segments[k + 1][2] <= a:
            k += 1
        s, _, n, ref = segments[k]
        if isinstance(ref, _Term):
            if ref.src is not None:
                alignment.append([ref.src, index])
            continue
        if ref != "old":
            continue
        old_word = bisect.bisect_right(english.starts, s + a - n) - 1
        if old_word < 0:
            continue
        holder = kept_by.get(old_word)
        if holder is not None:
            if holder.src is not None:
                alignment.append([holder.src, index])
            continue
        v = english.link.get(old_word)
        if v is not None and v < len(new_of) and new_of[v] not in term_words:
            alignment.append([new_of[v], index])
    pair.src_words, pair.src_word_spans = src_words, src_spans
    pair.tgt_words = [new_text[a:b] for a, b in tgt_spans]
    pair.tgt_word_spans = [[a, b] for a, b in tgt_spans]
    pair.alignment = alignment
