"""Whole documents: split both sides into units (sentences, or lines) and align them."""
from __future__ import annotations

from dataclasses import dataclass

from ..text.english import split_english
from .aligner import Link, align_sentences

__all__ = ["DocumentAlignment", "Unit", "align_document", "english_units", "line_units", "vietnamese_units"]


@dataclass(frozen=True)
class Unit:
    """A sentence or line of one side: offsets into the submitted text, and the text the aligner saw."""

    start: int
    end: int
    text: str

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "text": self.text}


@dataclass
class DocumentAlignment:
    vi: list[Unit]
    en: list[Unit]
    links: list[Link]

    def vi_text(self, link: Link) -> str:
        return " ".join(self.vi[i].text for i in link.vi)

    def en_text(self, link: Link) -> str:
        return " ".join(self.en[j].text for j in link.en)

    def to_dict(self) -> dict:
        return {
            "vi_sentences": [unit.to_dict() for unit in self.vi],
            "en_sentences": [unit.to_dict() for unit in self.en],
            "links": [link.to_dict() for link in self.links],
        }


def line_units(text: str) -> list[Unit]:
    """Every line is a unit, blank ones included (they come out unlinked); a final newline ends the last line."""
    units, start = [], 0
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        units.append(Unit(start, start + len(line), line.strip()))
        start += len(line) + 1
    return units


def vietnamese_units(text: str) -> list[Unit]:
    from ..text.segment import split_sentences

    return [Unit(seg.start, seg.end, seg.text) for seg in split_sentences(text)]


def english_units(text: str) -> list[Unit]:
    return [Unit(start, end, text[start:end]) for start, end in split_english(text)]


def align_document(vi_text: str, en_text: str, *, lines: bool = False) -> DocumentAlignment:
    """Align an article with an existing translation: split both sides (or take lines), then align.

    Vietnamese units are normalised (word segmentation undone, tone marks) before embedding,
    and the links' Vietnamese text is that natural form: what a parallel corpus wants.
    """
    from ..text.normalize import normalize

    vi = line_units(vi_text) if lines else vietnamese_units(vi_text)
    en = line_units(en_text) if lines else english_units(en_text)
    vi = [Unit(u.start, u.end, normalize(u.text).text) for u in vi]
    return DocumentAlignment(vi, en, align_sentences([u.text for u in vi], [u.text for u in en]))
