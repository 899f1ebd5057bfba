"""Paths to the real data in ../shared/data (see its README for sources and licences)."""

import html
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SEED = SHARED / "seed" / "000_10fae895d14971dd.txt"
IWSLT = SHARED / "iwslt15"


def iwslt_talks(split: str = "dev2010", lang: str = "vi") -> list[list[str]]:
    """The talks of one IWSLT'15 TED file (CC BY-NC-ND 3.0), each a list of its <seg> lines."""
    xml = (IWSLT / f"IWSLT15.TED.{split}.en-vi.{lang}.xml").read_text(encoding="utf-8")
    talks = []
    for doc in re.findall(r"<doc\b.*?</doc>", xml, flags=re.S):
        segs = re.findall(r"<seg[^>]*>(.*?)</seg>", doc, flags=re.S)
        talks.append([html.unescape(re.sub(r"\s+", " ", s)).strip() for s in segs])
    return talks
