"""DeepL API v2, the subset a Vietnamese→English server can honour: ``/v2/translate``,
``/v2/languages``, ``/v2/usage`` here; glossaries in :mod:`mt.web.deepl_glossaries`, documents
in :mod:`mt.web.deepl_documents` (all on one blueprint, :mod:`mt.web.deepl_base`).

Why a second API: CAT tools, subtitle editors and e-book translators speak DeepL's, through its
official clients (``deepl`` for Python, ``deepl-node``); they work against this server with
``server_url`` set. Texts go through the same pipeline as /api/translate (cache, memory, terms);
``tag_handling`` through the HTML document path (mt.io.html), markup kept.
"""

from __future__ import annotations

import re
import secrets

from flask import current_app, request

from ..io.blocks import EmptyDocument
from ..io.documents import translate_file
from ..pipeline import translate_documents
from . import deepl_documents, deepl_glossaries  # noqa: F401 - their routes are on the same blueprint
from .deepl_base import (COMMON_ERRORS, TAGS, TARGETS, UNLIMITED, bp, character_limit, check_quota, count_characters,
                         source_language, target_language, term_rules_for, used_characters)
from .deepl_schemas import (DeepLError, DeepLLanguages, DeepLTranslateForm, DeepLTranslateRequest,
                            DeepLTranslateResponse, DeepLUsage, listed)
from .errors import ApiError
from .language import detect
from .openapi import FORM_TYPES, JSON, operation
from .security import check_size, limited

__all__ = ["bp"]

MARKUP_RE = re.compile(r"<[^>]*>")
IGNORE_MARK = ' translate="no" data-mt-ignore-tag=""'
START_TAG_RE = re.compile(r"<([A-Za-z_][\w.:-]*)(?=[\s/>])")  # a start tag's name (DeepL's ignore_tags)
TRANSLATE_ERRORS = COMMON_ERRORS + ("unsupported_language", "text_too_long", "quota_exceeded",
                                    "invalid_input", "model_unavailable", "server_busy")


@bp.post("/v2/translate")
@limited
@operation(
    summary="DeepL-compatible translation", tags=TAGS, secured=True,
    description=(
        "DeepL API v2's `POST /v2/translate`, as JSON or a form (`text` repeated). `source_lang` VI or absent "
        "(detected per text: a text that is not Vietnamese comes back as it is, `detected_source_language` EN); "
        "`target_lang` EN, EN-US or EN-GB. `tag_handling` html or xml keeps the markup (the HTML document path). "
        "`glossary_id` (or up to five `glossary_ids`) applies a glossary of /v2/glossaries. Errors are DeepL's "
        "`{\"message\"}` (400, 403, 404, 413, 429, 456); the code is in `X-Error-Code`."),
    body={JSON: DeepLTranslateRequest, **{content_type: DeepLTranslateForm for content_type in FORM_TYPES}},
    example={"text": ["Xin chào thế giới."], "source_lang": "VI", "target_lang": "EN-US"},
    response=DeepLTranslateResponse, errors=(*TRANSLATE_ERRORS, "glossary_not_found"), error_model=DeepLError,
)
def translate(body: DeepLTranslateRequest):
    target_language(body.target_lang)
    source = source_language(body.source_lang)
    texts = listed(body.text)
    rules = term_rules_for(body.glossary_id, body.glossary_ids)
    characters = sum(len(text) for text in texts)
    check_size(characters)
    check_quota(characters)
    markup = body.tag_handling is not None
    if source is None:
        detected = [detect(MARKUP_RE.sub(" ", text) if markup else text).language.upper() for text in texts]
    else:
        detected = ["VI"] * len(texts)
    wanted = [n for n, text in enumerate(texts) if text.strip() and detected[n] == "VI"]
    answers = list(texts)
    translations = (marked_up([texts[n] for n in wanted], rules, tag_names(body.ignore_tags)) if markup
                    else plain([texts[n] for n in wanted], rules))
    for n, translation in zip(wanted, translations):
        answers[n] = translation
    count_characters(characters)
    return {"translations": [{"detected_source_language": language, "text": text, "billed_characters": len(original)}
                             for language, text, original in zip(detected, answers, texts)]}


def plain(texts: list[str], rules) -> list[str]:
    """Texts through one pipeline call (their distinct sentences share one model call)."""
    if not texts:
        return []
    translator = current_app.extensions["mt"]
    engine = translator.ensure_loaded()
    documents = translate_documents(texts, engine, translator.cache, links=bool(rules.glossary), quality=False,
                                    terms=rules)
    return [document.translation for document in documents]


def marked_up(texts: list[str], rules, ignored: list[str]) -> list[str]:
    """Each text as an HTML fragment through the document path: only the words change, every tag
    is kept in place (XML as well: see the README). A text that is only markup is answered as it is.
    ``ignored`` tags (DeepL's ignore_tags) are kept untranslated: the HTML reader leaves an element
    marked ``translate="no"`` alone, so their start tags carry that mark while translating."""
    translator = current_app.extensions["mt"]
    engine = translator.ensure_loaded()
    # one pattern for any start tag and a set of the names: a regex of thousands of alternatives
    # took seconds to compile, once per distinct list
    wanted = {name.lower() for name in ignored}
    start_tags = START_TAG_RE if ignored else None
    answers = []
    for text in texts:
        if start_tags is not None:
            text = text.replace(IGNORE_MARK, "")  # the mark is ours alone
            text = start_tags.sub(lambda match: match.group(0) + (IGNORE_MARK if match.group(1).lower() in wanted
                                                                   else ""), text)
        text, sections, token = shield_cdata(text)
        try:
            result = translate_file(text.encode("utf-8"), "text.html", engine, translator.cache,
                                    max_chars=current_app.config["MT_MAX_CHARS"], terms=rules)
            answer = result.data.decode("utf-8")
        except EmptyDocument:
            answer = text
        if sections:
            answer = re.sub(f"<!--{token}(\\d+)-->", lambda match: sections[int(match.group(1))], answer)
        answers.append(answer.replace(IGNORE_MARK, "") if start_tags is not None else answer)
    return answers


def shield_cdata(text: str) -> tuple[str, list[str], str]:
    """XML's CDATA sections as placeholder comments while translating: the HTML reader keeps a
    comment in its place but would read a CDATA section's content as words. (text, sections, token)."""
    token = f"mt-cdata-{secrets.token_hex(6)}-"
    sections: list[str] = []
    out, at = [], 0
    while (start := text.find("<![CDATA[", at)) >= 0 and (end := text.find("]]>", start + 9)) >= 0:
        out += [text[at:start], f"<!--{token}{len(sections)}-->"]
        sections.append(text[start:end + 3])
        at = end + 3
    return "".join(out) + text[at:], sections, token


def tag_names(tags) -> list[str]:
    """DeepL's tag lists: a list, or names separated by commas; only names (letters, digits, - _ : .)."""
    names = tags if isinstance(tags, list) else [tags or ""]
    found = [name.strip() for item in names for name in item.split(",")]
    return [name for name in found if re.fullmatch(r"[A-Za-z_][\w.:-]*", name)]


# -- languages and usage ------------------------------------------------------------------------
LANGUAGE_TYPE = [{"name": "type", "in": "query", "required": False,
                  "schema": {"type": "string", "enum": ["source", "target", ""]},
                  "description": "source (default) or target; also read from a form body"}]


@bp.route("/v2/languages", methods=["GET", "POST"])
@operation(summary="DeepL-compatible language list", tags=TAGS, secured=True,
           description="Source languages: VI. Target languages: EN, EN-GB, EN-US (none supports formality).",
           parameters=LANGUAGE_TYPE,
           response=DeepLLanguages, errors=("invalid_field", "invalid_api_key"), error_model=DeepLError)
def languages():
    kind = request.args.get("type") or request.form.get("type") or "source"  # Python's client: GET, form body
    if kind not in ("source", "target"):
        raise ApiError("invalid_field", "Value for 'type' not supported.")
    if kind == "source":
        return [{"language": "VI", "name": "Vietnamese"}]
    return [{"language": code, "name": name, "supports_formality": False} for code, name in TARGETS.items()]


@bp.route("/v2/usage", methods=["GET", "POST"])
@operation(summary="DeepL-compatible usage", tags=TAGS, secured=True, response=DeepLUsage,
           description=("Characters translated this calendar month (UTC) by every worker and replica (the count "
                        "lives beside the cache), against --deepl-character-limit (reported as 1,000,000,000,000 "
                        "when unlimited). Beyond the limit, translations answer 456."),
           errors=("invalid_api_key",), error_model=DeepLError)
def usage():
    return {"character_count": used_characters(), "character_limit": character_limit() or UNLIMITED}
