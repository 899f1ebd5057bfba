"""DeepL API v2's documents: upload (``POST /v2/document``), status (``POST /v2/document/{id}``)
and result (``POST /v2/document/{id}/result``), for the formats mt.io.documents translates.

Why a job and not one synchronous answer: DeepL's clients give every request a short read timeout
(5 s in deepl-node, 10 s in Python) and then send it again, so the upload answers after at most
:data:`UPLOAD_WAIT` seconds; a longer translation goes on in a thread of the worker that took it.
The job (status, key, billed characters) lives in the shared mt.cache.usage store and the
translated file in the shared file store (mt.cache.files), so any worker or replica answers the
status and the result. A job whose worker died says so after :data:`JOB_DEADLINE` seconds.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
import unicodedata

from flask import current_app, request

from ..errors import MTError
from ..io.documents import format_for, translate_file, translated_name
from .deepl_base import (COMMON_ERRORS, TAGS, bp, check_quota, count_characters, source_language, target_language,
                         term_rules_for, usage_store)
from .deepl_schemas import (DeepLDocumentForm, DeepLDocumentHandle, DeepLDocumentKey, DeepLDocumentKeyForm,
                            DeepLDocumentStatus, DeepLError)
from .errors import ApiError, api_error, from_store
from .files import DOCUMENT_TYPES, attachment
from .openapi import FORM_TYPES, JSON, MULTIPART, Answer, operation
from .security import limited

log = logging.getLogger(__name__)

UPLOAD_WAIT = 3.0  # seconds the upload waits for the translation (under deepl-node's 5 s timeout)
JOB_DEADLINE = 15 * 60  # a job still "translating" after this has lost its worker
MAX_JOBS = 2  # documents translating at once in one worker process; more answer 429 (clients retry)
_slots = threading.BoundedSemaphore(MAX_JOBS)
KEY_BODY = {JSON: DeepLDocumentKey, **{content_type: DeepLDocumentKeyForm for content_type in FORM_TYPES}}


def ascii_name(name: str) -> str:
    """The stored file's name in ASCII (the store keeps it in the download's name)."""
    folded = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    return folded.encode("ascii", "ignore").decode("ascii") or "document"


def named(name: str, data: bytes) -> str:
    """A name with the extension of what ``data`` is, when the client sent none (deepl's Python client
    names a file object without a name "file"): DOCX, HTML and WebVTT are told by their first bytes."""
    if "." in name.rsplit("/", 1)[-1]:
        return name
    head = data[:512].lstrip().lower()
    if data.startswith(b"PK\x03\x04") and b"word/" in data[:65536]:
        return name + ".docx"
    if head.startswith((b"<!doctype html", b"<html")):
        return name + ".html"
    if head.startswith(b"webvtt"):
        return name + ".vtt"
    return name


@bp.post("/v2/document")
@limited
@operation(
    summary="DeepL-compatible document upload", tags=TAGS, secured=True,
    description=("Multipart `file` (.txt, .md, .html, .xhtml, .docx, .srt, .vtt), `target_lang` EN/EN-US/EN-GB, "
                 "optional `source_lang` VI, `glossary_id`, `output_format` (the file's own only). Answers "
                 "`document_id` and `document_key` once the translation is done or after 3 seconds, whichever "
                 "comes first; poll POST /v2/document/{document_id} with the key, then fetch the result."),
    body={MULTIPART: DeepLDocumentForm}, response=DeepLDocumentHandle,
    errors=(*COMMON_ERRORS, "unsupported_language", "unsupported_format", "quota_exceeded", "rate_limited",
            "glossary_not_found", "server_busy"),
    error_model=DeepLError,
)
def upload(body: DeepLDocumentForm):
    target_language(body.target_lang)
    source_language(body.source_lang)
    data = body.file.read()
    name = named(body.filename or body.file.filename or "document", data)
    fmt = format_for(name, body.file.mimetype)
    wanted = (body.output_format or "").lower()
    refusal = None
    if wanted and "." + wanted not in fmt.extensions:  # as DeepL reports a failed conversion: in the status
        refusal = (f"output_format {wanted} is not supported: this server answers a document in its own format "
                   f"({fmt.name})")
    rules = term_rules_for(body.glossary_id)
    check_quota(1)
    if refusal is None and not _slots.acquire(blocking=False):
        raise ApiError("rate_limited", "Too many documents translating at once; retry in a few seconds.",
                       headers={"Retry-After": "5"})
    document_id, key = secrets.token_hex(16), secrets.token_hex(32)
    if refusal is not None:
        usage_store().put_job(document_id, {"status": "error", "key": key, "error_message": refusal})
        return {"document_id": document_id, "document_key": key}
    store = usage_store()
    try:
        store.put_job(document_id, {"status": "translating", "key": key, "started": time.time()})
    except Exception as error:  # noqa: BLE001 - the shared store failing is the server's trouble
        _slots.release()
        log.warning("storing a DeepL document job failed: %s", error)
        raise ApiError("server_busy", "the document could not be queued; retry later",
                       headers={"Retry-After": "30"}) from None
    translator = current_app.extensions["mt"]
    job = Job(document_id, key, store, current_app.extensions["mt_files"], request.remote_addr or "")
    work = dict(data=data, name=name, content_type=body.file.mimetype, translator=translator,
                max_chars=current_app.config["MT_MAX_CHARS"], terms=rules)
    thread = threading.Thread(target=job.run, kwargs=work, name=f"deepl-document-{document_id[:8]}", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # no thread to be had: the slot goes back, the client retries
        _slots.release()
        raise ApiError("server_busy", "the document could not be started; retry later",
                       headers={"Retry-After": "30"}) from None
    job.finished.wait(UPLOAD_WAIT)
    return {"document_id": document_id, "document_key": key}


class Job:
    """One document's translation, outside the request: its outcome goes to the shared stores."""

    def __init__(self, document_id: str, key: str, store, files, owner: str):
        self.document_id, self.key, self.store, self.files, self.owner = document_id, key, store, files, owner
        self.finished = threading.Event()

    def run(self, *, data: bytes, name: str, content_type, translator, max_chars: int, terms) -> None:
        record = {"key": self.key, "status": "error", "error_message": "the translation failed; the server log "
                                                                        "has the details"}
        try:
            engine = translator.ensure_loaded()
            result = translate_file(data, name, engine, translator.cache, content_type=content_type,
                                    max_chars=max_chars, terms=terms)
            billed = len(result.document.text)
            stored = self.files.put(ascii_name(translated_name(name)), result.format.media_type, result.data,
                                    owner=self.owner)
            count_characters(billed, self.store)
            record = {"key": self.key, "status": "done", "result": stored, "billed_characters": billed}
        except MTError as error:
            record["error_message"] = api_error(error).message
        except Exception:  # noqa: BLE001 - a failed job is an error status, never a dead thread
            log.exception("DeepL document %s failed", self.document_id)
        finally:
            _slots.release()
            try:
                self.store.put_job(self.document_id, record)
            except Exception as error:  # noqa: BLE001
                log.warning("storing DeepL document %s's status failed: %s", self.document_id, error)
            self.finished.set()


def job_of(document_id: str, key: str) -> dict:
    """The job's record: 404 for an unknown id (or one past its 30 minutes), 403 for a wrong key."""
    record = from_store("document", usage_store().get_job, document_id)
    if record is None:
        raise ApiError("not_found", "Document not found: unknown document_id (documents are kept 30 minutes).")
    if not hmac.compare_digest(str(record.get("key", "")).encode(), key.encode()):
        raise ApiError("forbidden", "The document_key does not match this document.")
    if record["status"] == "translating" and time.time() - record.get("started", 0) > JOB_DEADLINE:
        record = {"status": "error", "error_message": "the translation did not finish (its worker stopped); "
                                                      "upload the document again"}
    return record


@bp.post("/v2/document/<document_id>")
@operation(summary="DeepL-compatible document status", tags=TAGS, secured=True, body=KEY_BODY,
           response=DeepLDocumentStatus, errors=(*COMMON_ERRORS, "not_found", "forbidden", "server_busy"),
           error_model=DeepLError)
def status(document_id: str, body: DeepLDocumentKey):
    record = job_of(document_id, body.document_key)
    answer: dict = {"document_id": document_id, "status": record["status"]}
    if record["status"] == "done":
        answer["billed_characters"] = record.get("billed_characters", 0)
    elif record["status"] == "translating":
        answer["seconds_remaining"] = 5
    else:
        answer["error_message"] = record.get("error_message") or "the translation failed"
    return answer


@bp.post("/v2/document/<document_id>/result")
@operation(summary="DeepL-compatible document download", tags=TAGS, secured=True, body=KEY_BODY,
           answers={200: Answer("The translated document, in its own format", None, content_types=DOCUMENT_TYPES)},
           errors=(*COMMON_ERRORS, "not_found", "forbidden", "invalid_input", "server_busy"),
           error_model=DeepLError)
def result(document_id: str, body: DeepLDocumentKey):
    record = job_of(document_id, body.document_key)
    if record["status"] == "translating":
        raise ApiError("server_busy", "Document not ready: still translating.", headers={"Retry-After": "5"})
    if record["status"] != "done":
        raise ApiError("invalid_input", f"Document translation failed: {record.get('error_message')}")
    found = from_store("file", current_app.extensions["mt_files"].get, record["result"])
    if found is None:
        raise ApiError("not_found", "Document not found: translated documents are kept 30 minutes.")
    return attachment(found.data, found.filename, found.media_type)

