"""Documents over HTTP: ``POST /api/translate_file`` (the translated file, or the aligned blocks as
JSON with ``?aligned=1``), LibreTranslate's ``POST /translate_file`` and ``GET /download_file/<name>``.

Translated files for LibreTranslate clients and the page wait in the shared store
(:mod:`mt.cache.files`, beside the sentence cache) under an unguessable name for 30 minutes, so the
download works from any worker process or replica. Every format goes through
:func:`mt.io.documents.translate_file`.
"""

from __future__ import annotations

import logging
from typing import ClassVar
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request, url_for
from pydantic import Field

from ..cache.files import StoreFull
from ..io.documents import FORMATS, SUPPORTED_EXTENSIONS, translate_file
from ..terms import DEFAULT_TERMS, TermRules
from . import libre_schemas, schemas
from .glossary_api import body_terms
from .glossary_fields import FormGlossary, FormGlossaryId, FormProtect
from .errors import ApiError, from_store
from .openapi import MULTIPART, Answer, operation
from .security import external_url, limited, needs_api_key

bp = Blueprint("files", __name__)
log = logging.getLogger(__name__)

DOCUMENT_TYPES = tuple(dict.fromkeys(fmt.media_type for fmt in FORMATS))  # what a translated file is sent as
ALIGNED = {"": False, "0": False, "false": False, "no": False, "1": True, "true": True, "yes": True}
FILE_FIELD = Field(description=f"The document: {', '.join(SUPPORTED_EXTENSIONS)} (format from the file name's "
                               "extension, else its content type; 400 unsupported_format for another)")
FILE_ERRORS = ("invalid_field", "unsupported_media_type", "unsupported_format", "invalid_input", "text_too_long",
               "unknown_model", "model_not_loaded", "model_unavailable", "invalid_glossary", "glossary_not_found")


class FileForm(schemas.FormModel):
    """POST /api/translate_file: multipart with the file."""

    file: schemas.Upload = FILE_FIELD
    model: schemas.ModelId = None
    beam: schemas.FormBeam = None
    api_key: schemas.FormKey = ""
    glossary: FormGlossary = None
    glossary_id: FormGlossaryId = None
    protect: FormProtect = True
    messages: ClassVar[dict[str, str]] = {"beam": schemas.BEAM_MESSAGE}


class LibreFileForm(schemas.FormModel):
    """POST /translate_file (LibreTranslate): multipart with ``file``, ``source``, ``target``."""

    file: schemas.Upload = FILE_FIELD
    source: str = Field("auto", description="vi or auto", json_schema_extra={"enum": ["vi", "auto"]})
    target: str = Field("en", description="en", json_schema_extra={"enum": ["en"]})
    api_key: schemas.FormKey = ""


class AlignedBlock(schemas.ResponseModel):
    source: str
    translation: str
    sentences: list[schemas.Segment]


class AlignedFile(schemas.ResponseModel):
    model: str
    format: str = Field(description="The format read: text, markdown, html, docx, srt or vtt")
    name: str = Field(description="File name of the translated document")
    blocks: list[AlignedBlock]
    translation: str = Field(description="The English of all blocks, a blank line between blocks")
    timings: schemas.Timings


class LibreFileResponse(schemas.ResponseModel):
    translatedFileUrl: str


def store():
    """The shared store of downloads (:mod:`mt.cache.files`): any worker or replica serves them."""
    return current_app.extensions["mt_files"]


def keep(result) -> str:
    """Store a translated file for its download (the client's own quota); its unguessable name."""
    try:
        return store().put(result.name, result.format.media_type, result.data, owner=request.remote_addr or "")
    except StoreFull as error:
        raise ApiError("server_busy", str(error), headers={"Retry-After": "60"}) from None
    except Exception as error:  # noqa: BLE001 - the store (Redis, a disk) failing is the server's trouble
        log.warning("storing a translated file failed: %s", error)
        raise ApiError("server_busy", "the translated file could not be stored for download; retry later",
                       headers={"Retry-After": "30"}) from None


def translated(upload, model=None, beam=None, quality=False, terms: TermRules = DEFAULT_TERMS):
    """The uploaded document translated (mt.io.documents); its errors carry their codes. ``quality``:
    the page shows flags (the API's file answers carry none, so they skip the scoring)."""
    translator = current_app.extensions["mt"]
    translator.check_model(model)
    engine = translator.ensure_loaded()
    return translate_file(upload.read(), upload.filename or "document", engine, translator.cache,
                          settings=translator.settings_for(engine, beam), content_type=upload.mimetype,
                          max_chars=current_app.config["MT_MAX_CHARS"], quality=quality, terms=terms)


def attachment(data: bytes, filename: str, media_type: str) -> Response:
    disposition = f"attachment; filename*=UTF-8''{quote(filename)}"
    return Response(data, mimetype=media_type, headers={"Content-Disposition": disposition})


@bp.post("/api/translate_file")
@limited
@needs_api_key
@operation(
    summary="Translate a document (HTML, Markdown, DOCX, SRT, WebVTT, text), structure kept", tags=("API",),
    description=(
        "Multipart `file`; the format comes from the file name's extension (else its content type). Answers the "
        "translated file (same format, `NAME.en.EXT`), or with `?aligned=1` the aligned blocks as JSON: each "
        "block's source, English and sentences with their word links (offsets index `translation` blocks joined by "
        "a blank line). Markup, code, URLs, timings and everything but the text are kept."),
    body={MULTIPART: FileForm}, response=AlignedFile,
    parameters=[{"name": "aligned", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": list(ALIGNED)},
                 "description": "1 (or true, yes): answer the aligned blocks as JSON instead of the file"}],
    answers={200: Answer("The translated file (in its own format), or (aligned=1) the aligned blocks", AlignedFile,
                         content_types=(*DOCUMENT_TYPES, "application/json"))},
    errors=FILE_ERRORS,
)
def translate_file_view(body: FileForm):
    aligned = request.args.get("aligned", "").lower()
    if aligned not in ALIGNED:
        raise ApiError("invalid_field", "aligned must be true or false (1 or 0)")
    result = translated(body.file, body.model, body.beam, terms=body_terms(body))
    if ALIGNED[aligned]:
        document = result.document
        return AlignedFile(model=document.model, format=result.format.name, name=result.name,
                           blocks=result.aligned(), translation=document.translation, timings=document.timings)
    return attachment(result.data, result.name, result.format.media_type)


@bp.post("/translate_file")
@limited
@needs_api_key
@operation(
    summary="LibreTranslate-compatible document translation", tags=("LibreTranslate",),
    description=("Multipart `file`, `source` (`vi` or `auto`), `target` (`en`). Answers the URL of the translated "
                 "file, downloadable from GET /download_file/{name} for 30 minutes."),
    body={MULTIPART: LibreFileForm}, response=LibreFileResponse,
    errors=FILE_ERRORS + ("unsupported_language", "server_busy"),
    error_model=libre_schemas.LibreError,
)
def libre_translate_file(body: LibreFileForm):
    for code, allowed in ((body.source, ("vi", "auto")), (body.target, ("en",))):  # LibreTranslate's message
        if code not in allowed:
            raise ApiError("unsupported_language", f"{code} is not supported (this server translates vi to en)")
    name = keep(translated(body.file))
    return {"translatedFileUrl": external_url(url_for("files.download_file", name=name))}


@bp.get("/download_file/<name>")
@operation(summary="Download a file translated by POST /translate_file", tags=("LibreTranslate",),
           answers={200: Answer("The translated file, in its own format", None, content_types=DOCUMENT_TYPES)},
           errors=("not_found", "server_busy"))
def download_file(name: str):
    found = from_store("file", store().get, name)
    if found is None:
        raise ApiError("not_found", "no such file: translated files expire after 30 minutes")
    return attachment(found.data, found.filename, found.media_type)
