"""The real data in ../shared/data (see its README for sources and licences), read in place.

One reader of the IWSLT'15 TED XML files (CC BY-NC-ND 3.0) for tests and benchmarks:
``xml.etree`` parses them, so entities and whitespace are handled by the XML rules rather than
by regexes. Tests and benchmarks import it as ``testkit.shared_data``.
"""

from __future__ import annotations

import functools
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The project's data folder next to the checkout (CI and the dev machines have it; its README says
# where each set comes from); TESTKIT_SHARED_DATA points elsewhere, e.g. at nothing to try a bare clone.
SHARED = Path(os.environ.get("TESTKIT_SHARED_DATA") or ROOT.parent / "shared" / "data")
SEED_DIR = SHARED / "seed"
SEED = SEED_DIR / "000_10fae895d14971dd.txt"
IWSLT = SHARED / "iwslt15"


def needs_shared_data(*parts: str):
    """pytest mark: skip, naming what is missing, unless ``SHARED/parts`` exists (a clone without
    ../shared/data runs everything else; with the data, as in CI, it never skips)."""
    import pytest

    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"needs {path}: the project's shared data (IWSLT'15, "
                              "UD Vietnamese, seed article), not in the repository; see its README")


@dataclass(frozen=True)
class Talk:
    """One ``<doc>`` of an IWSLT file: its talk id and its ``<seg>`` lines by segment id."""

    docid: str
    segments: dict[int, str]

    @property
    def lines(self) -> list[str]:
        """The segment texts in file order (empty ones included: lines pair by position)."""
        return list(self.segments.values())


def iwslt_path(split: str, lang: str) -> Path:
    return IWSLT / f"IWSLT15.TED.{split}.en-vi.{lang}.xml"


@functools.lru_cache(maxsize=32)
def iwslt_documents(split: str = "dev2010", lang: str = "vi") -> tuple[Talk, ...]:
    """Every talk of one IWSLT'15 file; FileNotFoundError when the data is missing."""
    root = ET.parse(iwslt_path(split, lang)).getroot()
    talks = []
    for doc in root.iter("doc"):
        segments = {int(seg.get("id")): " ".join((seg.text or "").split()) for seg in doc.iter("seg")}
        talks.append(Talk(doc.get("docid", ""), segments))
    return tuple(talks)


def iwslt_talks(split: str = "dev2010", lang: str = "vi") -> list[list[str]]:
    """The talks of one IWSLT'15 file, each a list of its ``<seg>`` lines (whitespace collapsed)."""
    return [talk.lines for talk in iwslt_documents(split, lang)]


def iwslt_segments(split: str = "dev2010", lang: str = "vi") -> list[str]:
    """All non-empty ``<seg>`` lines of an IWSLT'15 file, in order."""
    return [line for talk in iwslt_documents(split, lang) for line in talk.lines if line]
