"""Test sets for `mt eval`: source lines beside their reference translations.

Four readers, one result (:class:`EvalSet`): two line-aligned files, a TMX, an IWSLT'15 XML pair,
and sacrebleu's downloadable sets by name. Each line stays one segment: the readers never split
or join lines, so a hypothesis file has exactly one line per source line, as sacrebleu expects.
XML goes through lxml with entities and the network off (a TMX from elsewhere is untrusted input).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

from mt.errors import InputError
from mt.io.formats import decode_article, read_bytes

__all__ = ["EvalSet", "parallel_files", "tmx_file", "iwslt_pair", "sacrebleu_set", "IWSLT_TEST_SPLIT"]

# IWSLT'15 en-vi: tst2013 is the test set published scores use; dev2010 and tst2010-2012 are for tuning
IWSLT_TEST_SPLIT = "tst2013"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class EvalSet:
    """``sources[i]`` is translated into one hypothesis line, scored against ``references[k][i]``
    for every reference stream ``k`` (sacrebleu's layout: most sets have one stream)."""

    name: str
    sources: list[str]
    references: list[list[str]]
    origin: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sources)

    def first(self, limit: int | None) -> "EvalSet":
        """The first ``limit`` lines (a quick look at a large set)."""
        if limit is None or limit >= len(self):
            return self
        if limit < 1:
            raise InputError("--limit must be at least 1")
        return replace(self, sources=self.sources[:limit], references=[r[:limit] for r in self.references],
                       origin={**self.origin, "limit": limit})


def read_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 file: a final newline ends the last line, it does not start another."""
    text = decode_article(read_bytes(path), str(path))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parallel_files(src: str | Path, ref: str | Path) -> EvalSet:
    """One source sentence per line in ``src``, its reference on the same line of ``ref``."""
    sources, references = read_lines(src), read_lines(ref)
    if len(sources) != len(references):
        raise InputError(f"{src} has {len(sources)} lines but {ref} has {len(references)}: "
                         "a test set needs one reference line per source line")
    if not sources:
        raise InputError(f"{src}: no lines to translate")
    return EvalSet(Path(src).name, sources, [references], {"src": str(src), "ref": str(ref)})


def _xml_root(path: str | Path):
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        return etree.fromstring(read_bytes(path), parser)
    except etree.XMLSyntaxError as error:
        raise InputError(f"{path}: not well-formed XML ({error.msg}, line {error.lineno})") from None


def _seg_text(seg) -> str:
    """A TMX ``<seg>``'s text: inline markup codes (bpt, ept, ph, it) dropped, the text around them kept."""
    parts = [seg.text or ""]
    for child in seg:
        if child.tag == "hi":  # highlighted text is text
            parts.append("".join(child.itertext()))
        parts.append(child.tail or "")
    return " ".join("".join(parts).split())


def tmx_file(path: str | Path, src_lang: str = "vi", tgt_lang: str = "en") -> EvalSet:
    """Every ``<tu>`` with a ``<tuv>`` in each language (``xml:lang`` vi, vi-VN, ... and en, en-US, ...)."""
    root = _xml_root(path)
    sources, references, skipped = [], [], 0
    for unit in root.iter("tu"):
        texts: dict[str, str] = {}
        for variant in unit.iter("tuv"):
            lang = (variant.get(XML_LANG) or variant.get("lang") or "").lower()
            seg = variant.find("seg")
            for wanted in (src_lang, tgt_lang):
                if seg is not None and (lang == wanted or lang.startswith(wanted + "-")) and wanted not in texts:
                    texts[wanted] = _seg_text(seg)
        if texts.get(src_lang) and texts.get(tgt_lang):
            sources.append(texts[src_lang])
            references.append(texts[tgt_lang])
        else:
            skipped += 1
    if not sources:
        raise InputError(f"{path}: no translation unit has both a {src_lang} and an {tgt_lang} segment")
    return EvalSet(Path(path).name, sources, [references], {"tmx": str(path), "units_skipped": skipped})


def _iwslt_files(path: str | Path, split: str) -> tuple[Path, Path]:
    """A folder of IWSLT'15 files (the ``split`` pair in it), or one file of a pair (the other beside it)."""
    path = Path(path)
    if path.is_dir():
        vi = path / f"IWSLT15.TED.{split}.en-vi.vi.xml"
        return vi, path / f"IWSLT15.TED.{split}.en-vi.en.xml"
    name = path.name
    if name.endswith(".vi.xml"):
        return path, path.with_name(name[: -len(".vi.xml")] + ".en.xml")
    if name.endswith(".en.xml"):
        return path.with_name(name[: -len(".en.xml")] + ".vi.xml"), path
    raise InputError(f"{path}: not an IWSLT folder or a *.vi.xml / *.en.xml file")


def _iwslt_segments(path: Path) -> dict[tuple[str, str], str]:
    """``(docid, seg id)`` → the segment's text, whitespace collapsed (as the test suite reads it)."""
    out: dict[tuple[str, str], str] = {}
    for doc in _xml_root(path).iter("doc"):
        docid = doc.get("docid", "")
        for seg in doc.iter("seg"):
            out[(docid, seg.get("id", ""))] = " ".join((seg.text or "").split())
    return out


def iwslt_pair(path: str | Path, split: str = IWSLT_TEST_SPLIT) -> EvalSet:
    """The Vietnamese ``<seg>`` lines of one IWSLT'15 split and their English, paired by talk and
    segment id; pairs with an empty side are left out (the published scores do the same)."""
    vi_path, en_path = _iwslt_files(path, split)
    vi, en = _iwslt_segments(vi_path), _iwslt_segments(en_path)
    sources, references = [], []
    for key, text in vi.items():
        if text and en.get(key):
            sources.append(text)
            references.append(en[key])
    if not sources:
        raise InputError(f"{vi_path} and {en_path}: no segment pairs (different talks?)")
    return EvalSet(f"iwslt15-{split}" if Path(path).is_dir() else vi_path.name.replace(".vi.xml", ""),
                   sources, [references], {"vi": str(vi_path), "en": str(en_path),
                                           "unpaired": len(vi) - len(sources)})


def sacrebleu_set(name: str, langpair: str = "vi-en") -> EvalSet:
    """A test set sacrebleu knows by name, downloaded into its folder ($SACREBLEU) on first use;
    offline, or a set sacrebleu lacks, is one InputError line."""
    import sacrebleu
    from sacrebleu.dataset import DATASETS

    if name not in DATASETS:
        with_pair = sorted(key for key, data in DATASETS.items() if langpair in data.langpairs)
        raise InputError(f"sacrebleu {sacrebleu.__version__} has no test set {name!r}; its sets for {langpair}: "
                         f"{', '.join(with_pair) or 'none'} (for FLORES-200 vie_Latn-eng_Latn, save its devtest "
                         "lines and pass --src/--ref)")
    dataset = DATASETS[name]
    if langpair not in dataset.langpairs:
        raise InputError(f"sacrebleu test set {name!r} has no {langpair} pair (it has: "
                         f"{', '.join(sorted(dataset.langpairs)[:20])})")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # sacrebleu's urlopen has no deadline of its own
    try:
        source = dataset.get_source_file(langpair)
        refs = dataset.get_reference_files(langpair)
    except (OSError, SystemExit, ValueError) as error:  # URLError is an OSError; a bad MD5 calls sys.exit
        raise InputError(f"could not get sacrebleu test set {name!r} ({langpair}): "
                         f"{type(error).__name__}: {error} (offline? pass --src/--ref)") from None
    finally:
        socket.setdefaulttimeout(previous)
    sources = read_lines(source)
    references = [read_lines(ref) for ref in refs]
    if any(len(ref) != len(sources) for ref in references):
        raise InputError(f"sacrebleu test set {name!r}: references and source differ in length")
    return EvalSet(f"{name}:{langpair}", sources, references, {"sacrebleu": name, "langpair": langpair})
