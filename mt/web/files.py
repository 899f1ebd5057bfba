"""Documents over HTTP: ``POST /api/translate_file`` (the translated file, or the aligned blocks as
JSON with ``?aligned=1``), LibreTranslate's ``POST /translate_file`` and ``GET /download_file/<name>``.

Translated files for LibreTranslate clients are kept in memory under an unguessable name
(``secrets.token_urlsafe``) for ``FILE_TTL_SECONDS``, at most ``MAX_STORED_BYTES`` in all (the
oldest go first). Every format goes through :func:`mt.io.documents.translate_file`.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import ClassVar
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request, url_for
from pydantic import Field
from werkzeug.utils import secure_filename

from ..errors import InputError, ModelUnavailable
from ..io.blocks import FileTooLarge, UnsupportedFormat
from ..io.documents import SUPPORTED_EXTENSIONS, translate_file
from . import schemas
from .errors import ApiError, json_response
from .openapi import Answer, operation
from .security import limited, needs_api_key

bp = Blueprint("files", __name__)

FILE_TTL_SECONDS = 30 * 60
MAX_STORED_BYTES = 256 * 1024 * 1024
MULTIPART = "multipart/form-data"
FILE_FIELD = Field(description=f"The document: {', '.join(SUPPORTED_EXTENSIONS)} (format from the file name's "
                               "extension, else its content type)",
                   json_schema_extra={"format": "binary", "type": "string"})
FILE_ERRORS = ("invalid_field", "unsupported_media_type", "unsupported_format", "invalid_input", "text_too_long",
               "unknown_model", "model_not_loaded", "model_unavailable")


class FileForm(schemas.RequestModel):
    """POST /api/translate_file: multipart with the file."""

    file: bytes = FILE_FIELD
    model: schemas.ModelId = None
    beam: schemas.FormBeam = None
    api_key: schemas.ApiKey = None
    messages: ClassVar[dict[str, str]] = {"beam": schemas.BEAM_MESSAGE}


class LibreFileForm(schemas.RequestModel):
    """POST /translate_file (LibreTranslate): multipart with ``file``, ``source``, ``target``."""

    file: bytes = FILE_FIELD
    source: str = Field("auto", description="vi or auto")
    target: str = Field("en", description="en")
    api_key: schemas.ApiKey = None


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


class FileStore:
    """Translated files waiting for their download; names unguessable, entries expire."""

    def __init__(self, ttl: float = FILE_TTL_SECONDS, max_bytes: int = MAX_STORED_BYTES):
        self.ttl, self.max_bytes = ttl, max_bytes
        self._files: dict[str, tuple[float, str, str, bytes]] = {}
        self._lock = threading.Lock()

    def _purge(self, now: float) -> None:
        for key in [key for key, entry in self._files.items() if entry[0] <= now]:
            del self._files[key]
        while self._files and sum(len(entry[3]) for entry in self._files.values()) > self.max_bytes:
            del self._files[min(self._files, key=lambda key: self._files[key][0])]

    def put(self, filename: str, media_type: str, data: bytes) -> str:
        name = f"{secrets.token_urlsafe(24)}.{secure_filename(filename) or 'document'}"
        with self._lock:
            now = time.time()
            self._files[name] = (now + self.ttl, filename, media_type, data)
            self._purge(now)
        return name

    def get(self, name: str) -> tuple[str, str, bytes] | None:
        with self._lock:
            self._purge(time.time())
            entry = self._files.get(name)
        return entry[1:] if entry else None


def store() -> FileStore:
    return current_app.extensions.setdefault("mt_files", FileStore())


def uploaded() -> tuple[bytes, str, str | None]:
    if request.mimetype != MULTIPART:
        raise ApiError("unsupported_media_type", f"send the document as {MULTIPART} with a `file` field "
                                                 f"(got {request.mimetype or 'none'})")
    upload = request.files.get("file")
    if upload is None:
        raise ApiError("invalid_field", "file is required (a multipart field named `file`)")
    return upload.read(), upload.filename or "document", upload.mimetype


def translated(data: bytes, filename: str, content_type: str | None, model=None, beam=None):
    translator = current_app.extensions["mt"]
    try:
        translator.check_model(model)
        engine = translator.ensure_loaded()
        return translate_file(data, filename, engine, translator.cache, settings=translator.settings_for(engine, beam),
                              content_type=content_type, max_chars=current_app.config["MT_MAX_CHARS"])
    except UnsupportedFormat as error:
        raise ApiError("unsupported_format", str(error)) from None
    except FileTooLarge as error:
        raise ApiError("text_too_long", f"{error} (--max-chars / MT_MAX_CHARS)") from None
    except InputError as error:
        raise ApiError("invalid_input", str(error)) from None
    except ModelUnavailable as error:
        raise ApiError("model_unavailable", translator.unavailable_message(str(error))) from None


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
    body={MULTIPART: FileForm},
    parameters=[{"name": "aligned", "in": "query", "required": False, "schema": {"type": "boolean"},
                 "description": "1: answer the aligned blocks as JSON instead of the file"}],
    answers={200: Answer("The translated file, or (aligned=1) the aligned blocks", AlignedFile,
                         content_types=("application/octet-stream", "application/json"))},
    errors=FILE_ERRORS,
)
def translate_file_view():
    data, filename, content_type = uploaded()
    form = schemas.parse(FileForm, {**request.form.to_dict(), "file": data})
    result = translated(data, filename, content_type, form.model, form.beam)
    if request.args.get("aligned", "").lower() in ("1", "true", "yes"):
        document = result.document
        return json_response({"model": document.model, "format": result.format.name, "name": result.name,
                              "blocks": result.aligned(), "translation": document.translation,
                              "timings": document.timings})
    return attachment(result.data, result.name, result.format.media_type)


@bp.post("/translate_file")
@limited
@needs_api_key
@operation(
    summary="LibreTranslate-compatible document translation", tags=("LibreTranslate",),
    description=("Multipart `file`, `source` (`vi` or `auto`), `target` (`en`). Answers the URL of the translated "
                 "file, downloadable from GET /download_file/{name} for 30 minutes."),
    body={MULTIPART: LibreFileForm},
    answers={200: Answer("Where to download the translated file", LibreFileResponse)},
    errors=FILE_ERRORS + ("unsupported_language",),
    error_model=schemas.LibreError,
)
def libre_translate_file():
    data, filename, content_type = uploaded()
    form = schemas.parse(LibreFileForm, {**request.form.to_dict(), "file": data})
    if form.source not in ("vi", "auto") or form.target != "en":
        raise ApiError("unsupported_language",
                       f"{form.source}→{form.target} is not supported (this server translates vi to en)")
    result = translated(data, filename, content_type)
    name = store().put(result.name, result.format.media_type, result.data)
    return json_response({"translatedFileUrl": url_for("files.download_file", name=name, _external=True)})


@bp.get("/download_file/<name>")
@operation(summary="Download a file translated by POST /translate_file", tags=("LibreTranslate",),
           answers={200: Answer("The translated file", None, content_types=("application/octet-stream",))},
           errors=("not_found",))
def download_file(name: str):
    found = store().get(name)
    if found is None:
        raise ApiError("not_found", "no such file: translated files expire after 30 minutes")
    filename, media_type, data = found
    return attachment(data, filename, media_type)
