"""The HTML page (a form and the aligned view), its downloads, and /docs rendered from the spec."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from pathlib import PurePath
from urllib.parse import quote

from flask import Blueprint, Response, current_app, render_template, request, url_for

from .. import __version__
from ..errors import ModelUnavailable, MTError
from ..io.documents import is_document
from ..io.formats import decode_article, english_text, to_jsonl, to_tmx, to_tsv
from ..io.xliff import MEDIA_TYPE as XLIFF_TYPE, write_xliff
from ..document import Document
from . import schemas
from .api import TRANSLATE_ERRORS, checked_text
from .docs import docs_schemas, docs_view_model
from .errors import ApiError, api_error
from .files import keep, translated
from .glossary_api import body_terms
from .openapi import FORM_TYPES, JSON, Answer, operation, read_body
from .security import check_api_key, check_size, is_form, limited, needs_api_key, public_model_name
from .service import WHAT_TO_DO, with_advice

bp = Blueprint("pages", __name__)

DOWNLOADS: dict[str, tuple[Callable[[Document], str | bytes], str, str]] = {
    "tmx": (to_tmx, "application/x-tmx+xml; charset=utf-8", "translation.tmx"),
    "tsv": (to_tsv, "text/tab-separated-values", "translation.tsv"),
    "jsonl": (to_jsonl, "application/jsonl; charset=utf-8", "translation.jsonl"),
    "txt": (english_text, "text/plain", "translation.txt"),
    "xliff": (write_xliff, XLIFF_TYPE, "translation.xlf"),  # its <file original> is the input's name
}
HTML = ("text/html",)
PAGE_BODIES = {FORM_TYPES[0]: schemas.PageForm, FORM_TYPES[1]: schemas.PageUpload}


def service():
    return current_app.extensions["mt"]


def page_context(**extra) -> dict:
    translator = service()
    context = {
        "service": translator,
        "ready": translator.ready,
        "model_error": translator.error,
        "what_to_do": (WHAT_TO_DO.format(model=translator.model_id or "MODEL")
                       if translator.error and with_advice(translator.error, None) != translator.error.strip()
                       else ""),
        "model_options": model_options(),
        "max_chars": current_app.config["MT_MAX_CHARS"],
        "needs_key": bool(current_app.config["MT_API_KEYS"]),
        "beams": list(range(schemas.MIN_BEAM, schemas.MAX_BEAM + 1)),
        "formats": list(DOWNLOADS),
        "version": __version__,
        "text": "",
        "selected_model": translator.model_id,
        "beam": None,
        "api_key": "",
        "error": None,
        "document": None,
        "source_name": "",
        "public_model_name": public_model_name,
        "uploaded": False,
    }
    context.update(extra)
    return context


def model_options() -> list[dict]:
    translator = service()
    served = translator.model_id
    options = [{"id": served, "label": public_model_name(served) + ("" if translator.ready else " (not loaded)"),
                "disabled": False}] if served else []
    for spec in translator.registry():
        if spec.id != served and spec.id not in translator.served_names():
            options.append({"id": spec.id, "label": f"{public_model_name(spec.id)} (not loaded on this server)",
                            "disabled": True})
    return options


def ensure_started() -> None:
    """The page shows the model's state: try the (once-only) load if nobody has yet."""
    try:
        service().ensure_loaded()
    except ModelUnavailable:
        pass


@bp.get("/")
@operation(summary="The translation page (HTML form)", tags=("Page",), answers={200: Answer("HTML", content_types=HTML)})
def index():
    ensure_started()
    return render_template("index.html", **page_context())


@bp.post("/")
@limited
@operation(
    summary="Submit the form: the aligned view (HTML)", tags=("Page",), secured=True,
    description="Errors are the page again, with the message (HTML, with the error's status).",
    body=PAGE_BODIES, parse=False,
    answers={200: Answer("HTML with the aligned rows", content_types=HTML)},
    errors=TRANSLATE_ERRORS, error_types=(JSON, *HTML),
)
def index_post():
    form, api_key = None, request.form.get("api_key", "") if is_form() else ""
    source_name = ""
    try:
        form = read_body(PAGE_BODIES)
        check_api_key()
        upload = getattr(form, "file", None)
        if upload is not None and upload.filename and is_document(upload.filename):
            return document_page(form, api_key)  # html, docx, srt...: mt.web.files
        if upload is not None and upload.filename:  # a .txt file replaces the text
            source_name = upload.filename
            form = schemas.parse(schemas.PageForm, {**form.model_dump(exclude={"file"}),
                                                    "text": decode_article(form.file.read(), form.file.filename)})
        text = schemas.newline_normalised(form.text)
        check_size(len(text))
        if not text.strip():
            raise ApiError("empty_text", "Paste a Vietnamese article or choose a .txt file first.")
        document = service().translate(text, form.model, form.beam, terms=body_terms(form))
    except MTError as error:
        error = api_error(error)
        return page_error(error.status, error.message, form, api_key, error.headers)
    except ApiError as error:
        return page_error(error.status, error.message, form, api_key, error.headers)
    summary = {
        "segments": len(document.sentences),
        "cache_hits": document.cache_hits,
        "memory_hits": sum(1 for pair in document.sentences if pair.origin == "memory"),
        "translated": sum(1 for pair in document.sentences if pair.kind != "byline"),
        "paragraphs": len(document.paragraphs()),
    }
    return render_template("index.html", **page_context(
        text=text, document=document, summary=summary, selected_model=form.model or service().model_id,
        beam=form.beam, api_key=api_key, source_name=source_name))


def page_error(status: int, message: str, form: schemas.PageForm | None, api_key: str,
               headers: dict | None = None) -> Response:
    html = render_template("index.html", **page_context(
        text=form.text if form else request.form.get("text", "") if is_form() else "",
        error={"status": status, "message": message},
        selected_model=(form.model if form else None) or service().model_id,
        beam=form.beam if form else None, api_key=api_key))
    return Response(html, status=status, mimetype="text/html", headers=headers or {})


@bp.post("/download/<format>")
@limited
@needs_api_key
@operation(
    summary="Translate and download as a file", tags=("Page",),
    description=(
        "Same fields as the page (form-encoded) or as POST /api/translate (JSON). The answer is an attachment "
        "named after the input (the page's uploaded file, else the text's first words, e.g. `ha-noi-la-thu-do`): "
        "`NAME.tmx` (TMX 1.4), `NAME.tsv` (Vietnamese<TAB>English), `NAME.jsonl` (one segment per line), "
        "`NAME.en.txt` (the English text) or `NAME.xlf` (XLIFF 1.2 for CAT tools: one unit per sentence, model "
        "output needing review, memory hits translated). Rows edited on the page come from the translation memory; "
        "repeating a translation is served from the sentence cache."),
    parameters=[{"name": "format", "in": "path", "required": True,
                 "schema": {"type": "string", "enum": list(DOWNLOADS)}}],
    body={FORM_TYPES[0]: schemas.PageForm, FORM_TYPES[1]: schemas.PageForm, JSON: schemas.DownloadRequest},
    answers={200: Answer("The file (Content-Disposition: attachment)", content_types=(
        "application/x-tmx+xml", "text/tab-separated-values", "application/jsonl", "text/plain", XLIFF_TYPE))},
    errors=TRANSLATE_ERRORS + ("not_found",),
)
def download(format: str, body: schemas.DownloadRequest | schemas.PageForm):  # noqa: A002 - the path's name
    if format not in DOWNLOADS:
        raise ApiError("not_found", f"unknown download format {format!r}; use one of {', '.join(DOWNLOADS)}")
    text = body.text if isinstance(body, schemas.DownloadRequest) else schemas.newline_normalised(body.text)
    document = service().translate(checked_text(text), body.model, body.beam, terms=body_terms(body))
    render, mimetype, filename = DOWNLOADS[format]
    source_name = request.form.get("name", "") if is_form() else ""
    name = download_name(source_name, text, filename.rsplit(".", 1)[-1])
    content = write_xliff(document, source_name or name) if render is write_xliff else render(document)
    return Response(
        content, content_type=mimetype if "charset" in mimetype else f"{mimetype}; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename=\"{ascii_name(name)}\"; filename*=UTF-8''{quote(name)}"},
    )


def download_name(source_name: str, text: str, ext: str) -> str:
    """A download named after what was translated: the uploaded file's stem (report.docx ->
    report.tmx, report.en.txt), else the text's first words (hang-sputnik-nguon-tin.tmx)."""
    stem = re.sub(r"[^\w.-]+", "-", PurePath(source_name.replace("\\", "/")).stem).strip("-._")[:60]
    stem = stem or slug(text) or "translation"
    return f"{stem}.en.txt" if ext == "txt" else f"{stem}.{ext}"


def slug(text: str, words: int = 5) -> str:
    folded = unicodedata.normalize("NFKD", text[:400].replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    return "-".join(re.findall(r"[a-z0-9]+", plain.replace("_", " "))[:words])[:48].strip("-")


def ascii_name(name: str) -> str:
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in ".-_") else "_" for ch in name)


@bp.get("/docs")
@operation(summary="This description as a readable HTML page", tags=("Operations",),
           answers={200: Answer("HTML", content_types=HTML)})
def docs():
    spec = current_app.extensions["mt_openapi"]
    if "mt_docs" not in current_app.extensions:
        current_app.extensions["mt_docs"] = {"operations": docs_view_model(spec), "schemas": docs_schemas(spec)}
    return render_template("docs.html", spec=spec, **current_app.extensions["mt_docs"])


def document_page(form: schemas.PageUpload, api_key: str) -> str:
    """The page's answer to an uploaded document: the aligned view of its blocks (each block a
    paragraph) and a link to download the translated file."""
    result = translated(form.file, form.model, form.beam, quality=True, terms=body_terms(form))
    document = result.document
    name = keep(result)
    summary = {"segments": len(document.sentences), "cache_hits": document.cache_hits,
               "memory_hits": sum(1 for pair in document.sentences if pair.origin == "memory"),
               "translated": sum(1 for pair in document.sentences if pair.kind != "byline"),
               "paragraphs": len(result.blocks)}
    return render_template("index.html", **page_context(
        text=document.text, document=document, summary=summary, selected_model=form.model or
        current_app.extensions["mt"].model_id, beam=form.beam, api_key=api_key,
        translated_file={"url": url_for("files.download_file", name=name), "name": result.name},
        source_name=form.file.filename or "", uploaded=True))
