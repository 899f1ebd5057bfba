"""Request and response bodies of the HTTP API, declared once as pydantic models.

Request models validate what clients send (:func:`parse`: a 400 ``invalid_field`` naming the field);
response models describe what the server answers. Both feed the generated OpenAPI document and
/docs (:mod:`mt.web.openapi`); the tests validate real responses against the response models,
which forbid unknown fields so that a field added without its declaration fails.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError,
)
from pydantic_core import PydanticCustomError

from .errors import ApiError

MIN_BEAM, MAX_BEAM = 1, 8
BEAM_MESSAGE = f"beam must be an integer from {MIN_BEAM} to {MAX_BEAM}"


# C0/C1 control characters other than the whitespace ones (tab, line feed, vertical tab, form feed,
# carriage return, NEL): NUL, ESC and the like are never text, so they are refused, not passed on
CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\x80-\x84\x86-\x9f]")


def valid_unicode(value: Any) -> Any:
    """Refuse lone surrogates (JSON's "\\ud800": no tokenizer can take them, so they never reach the
    model) and control characters such as NUL (the message names the first one)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise PydanticCustomError(
                "invalid_unicode", "is not valid Unicode: a lone surrogate at character {position}",
                {"position": error.start}) from None
        control = CONTROL_RE.search(value)
        if control:
            raise PydanticCustomError(
                "invalid_unicode", "contains a control character ({code}) at character {position}; only tab, "
                "line breaks and form feed are allowed", {"code": f"U+{ord(control.group()):04X}",
                                                          "position": control.start()})
    return value


def newline_normalised(text: str) -> str:
    """Browsers send textarea lines as CRLF; forms are read as LF text (the JSON API keeps its input as is)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def blank_is_none(value: Any) -> Any:
    return None if value == "" else value


def stripped_or_none(value: Any) -> Any:
    return (value.strip() or None) if isinstance(value, str) else value


def string_or_none(value: Any) -> Any:
    return value if isinstance(value, str) and value else None


# -- field types ---------------------------------------------------------------------------------
Text = Annotated[StrictStr, BeforeValidator(valid_unicode)]
FormText = Annotated[str, BeforeValidator(valid_unicode)]
ModelId = Annotated[StrictStr | None, BeforeValidator(stripped_or_none),
                    Field(description="A model id from GET /api/models (default: the served model)")]
Beam = Annotated[Annotated[StrictInt, Field(ge=MIN_BEAM, le=MAX_BEAM)] | None,
                 Field(description="Beam size (default: the model's)")]
FormBeam = Annotated[Annotated[int, Field(ge=MIN_BEAM, le=MAX_BEAM)] | None, BeforeValidator(blank_is_none),
                     Field(description="Beam size (default: the model's)")]
ApiKey = Annotated[str | None, BeforeValidator(string_or_none),
                   Field(description="Only when the server requires API keys (or send a header)")]


class RequestModel(BaseModel):
    """A request body: unknown fields are ignored; ``messages`` words the 400 for a field."""

    model_config = ConfigDict(extra="ignore")
    messages: ClassVar[dict[str, str]] = {}
    missing: ClassVar[dict[str, str]] = {}


class ResponseModel(BaseModel):
    """A response body: no field may appear that is not declared here."""

    model_config = ConfigDict(extra="forbid")


Model = TypeVar("Model", bound=RequestModel)


def parse(model: type[Model], data: Any) -> Model:
    """``data`` validated as ``model``, or an ``invalid_field`` ApiError about the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        errors = error.errors()
        first = next((item for item in errors if item["type"] == "invalid_unicode"), errors[0])
        loc = first["loc"]
        name = str(loc[0]) if loc else "body"
        field = name + "".join(f"[{part}]" for part in loc[1:] if isinstance(part, int))
        if first["type"] == "missing":
            message = model.missing.get(name, f"{name} is required")
        elif first["type"] == "invalid_unicode":
            message = f"{field} {first['msg']}"
        else:
            message = model.messages.get(name) or f"{field}: {first['msg']}"
        raise ApiError("invalid_field", message) from None


# -- requests ------------------------------------------------------------------------------------
class TranslateRequest(RequestModel):
    """POST /api/translate (and /download/{format} as JSON)."""

    text: Text = Field(description="The Vietnamese article")
    model: ModelId = None
    beam: Beam = None
    api_key: ApiKey = None

    messages: ClassVar[dict[str, str]] = {
        "text": "text must be a string",
        "model": "model must be a string (a model id from GET /api/models)",
        "beam": BEAM_MESSAGE,
    }


class DownloadRequest(TranslateRequest):
    """POST /download/{format} as JSON: as /api/translate, with text defaulting to empty (then 400 empty_text)."""

    text: Text = Field("", description="The Vietnamese article")


class PageForm(RequestModel):
    """The page's form (POST / and /download/{format}), form-encoded or multipart."""

    text: FormText = Field("", description="The Vietnamese article")
    file: bytes | None = Field(None, description="A UTF-8 .txt file (replaces text)",
                               json_schema_extra={"format": "binary", "type": "string"})
    model: ModelId = None
    beam: FormBeam = None
    api_key: ApiKey = None

    messages: ClassVar[dict[str, str]] = {"model": TranslateRequest.messages["model"], "beam": BEAM_MESSAGE}


class AlignRequest(RequestModel):
    """POST /api/align."""

    vi: Text = Field(description="The Vietnamese article")
    en: Text = Field(description="Its English translation")
    lines: StrictBool = Field(False, description="Both sides are one sentence per line: align lines, don't split")
    api_key: ApiKey = None

    messages: ClassVar[dict[str, str]] = {
        "vi": "vi must be a string", "en": "en must be a string", "lines": "lines must be true or false"}


def missing_q(value: Any) -> Any:
    if value is None or value == "" or value == []:
        raise PydanticCustomError("missing", "missing q parameter")
    return value


def or_default(default: str):
    return lambda value: value or default


LIBRE_Q_MESSAGE = "Invalid request: q must be a string or a list of strings"


class LibreRequest(RequestModel):
    """POST /translate, LibreTranslate's fields (JSON, form-encoded or multipart)."""

    q: Annotated[Text | list[Text], BeforeValidator(missing_q)] = Field(
        description="The text, or a list of texts (answered with a list)")
    source: Annotated[StrictStr, BeforeValidator(or_default("auto"))] = Field(
        "auto", description="vi, or auto (then detectedLanguage is returned)", json_schema_extra={"enum": ["vi", "auto"]})
    target: Annotated[StrictStr, BeforeValidator(or_default("en"))] = Field(
        "en", description="Must be en", json_schema_extra={"enum": ["en"]})
    format: Annotated[StrictStr, BeforeValidator(or_default("text"))] = Field(
        "text", description="Must be text (html is not supported)", json_schema_extra={"enum": ["text"]})
    model: ModelId = None
    beam: Beam = None
    api_key: ApiKey = None

    messages: ClassVar[dict[str, str]] = {
        "q": LIBRE_Q_MESSAGE,
        "source": "Invalid request: source must be a string",
        "target": "Invalid request: target must be a string",
        "format": "Invalid request: format must be a string",
        "model": TranslateRequest.messages["model"],
        "beam": BEAM_MESSAGE,
    }
    missing: ClassVar[dict[str, str]] = {"q": "Invalid request: missing q parameter"}


class LibreForm(LibreRequest):
    """LibreRequest sent as a form: beam arrives as text."""

    beam: FormBeam = None


# -- responses -----------------------------------------------------------------------------------
class ErrorBody(ResponseModel):
    code: str = Field(description="Machine-readable; the table below lists every code")
    message: str = Field(description="For people: what went wrong and what to do")


class Error(ResponseModel):
    """Every error of our API (not LibreTranslate's /translate)."""

    error: ErrorBody


class LibreError(ResponseModel):
    """LibreTranslate's error shape; the code is in the X-Error-Code header."""

    error: str


class Segment(ResponseModel):
    index: int
    paragraph: int = Field(description="Paragraph number, from 0")
    kind: Literal["sentence", "title", "byline"]
    start: int = Field(description="Offset of the segment in the submitted text")
    end: int = Field(description="End offset (exclusive)")
    source: str = Field(description="text[start:end], as the user wrote it")
    normalized: str = Field(description="What the model saw")
    translation: str
    cached: bool = Field(description="Served from the sentence cache")
    src_words: list[str] = Field(description="Vietnamese words as written (tên_lửa is one word in word-segmented "
                                 "input); punctuation marks are words too")
    src_word_spans: list[list[int]] = Field(description="[start, end) of each Vietnamese word in the submitted text")
    tgt_words: list[str] = Field(description="English words of the translation")
    tgt_word_spans: list[list[int]] = Field(description="[start, end) of each English word in translation")
    alignment: list[list[int]] = Field(description="Word links from the model's attention: [Vietnamese word index, "
                                       "English word index] pairs; each English word has at most one. Empty for "
                                       "bylines")
    quality: float | None = Field(description="How much closer the translation is to its source than to unrelated "
                                  "Vietnamese text (multilingual-e5-small cosines; human translations score about "
                                  "0.07-0.2, unrelated sentences about 0); null when not scored (bylines)")
    similarity: float | None = Field(description="Plain cosine similarity of the source and translation embeddings; "
                                     "null when not scored")
    flagged: bool = Field(description="Low confidence: quality below the calibrated threshold, or the translation "
                          "looks more Vietnamese than English")


class Timings(ResponseModel):
    """Where the time went, in milliseconds (and sentence counts)."""

    segment_ms: float = Field(description="Segmenting and normalising")
    cache_ms: float = Field(description="Reading the sentence cache")
    model_ms: float = Field(description="Translating the cache misses")
    model_sentences: int = Field(description="Sentences sent to the model (cache misses)")
    links_ms: float | None = Field(None, description="Word links, cache included")
    links_model_ms: float | None = Field(None, description="The model's teacher-forced pass for word links")
    links_sentences: int | None = Field(None, description="Sentences whose word links were computed (not cached)")
    quality_ms: float | None = Field(None, description="Quality scores, cache included")
    total_ms: float = Field(description="The whole request")


class TranslateResponse(ResponseModel):
    model: str
    sentences: list[Segment]
    translation: str = Field(description="The full English text, paragraphs kept")
    timings: Timings
    detected_language: "DetectedLanguage" = Field(description=(
        "The language of the submitted text: vi, or en when it does not read as Vietnamese (it is still "
        "translated as Vietnamese: check this before trusting the translation); confidence 0-100"))


class AlignUnit(ResponseModel):
    start: int = Field(description="Offset in the submitted text of its side")
    end: int
    text: str = Field(description="The unit as the aligner saw it")


class AlignLink(ResponseModel):
    vi: list[int] = Field(description="Consecutive indices into vi_sentences (empty: an English unit left alone)")
    en: list[int] = Field(description="Consecutive indices into en_sentences (empty: a Vietnamese unit left alone)")
    score: float = Field(description="Cosine similarity of the linked groups (0 for 1-0 / 0-1)")


class AlignResponse(ResponseModel):
    vi_sentences: list[AlignUnit]
    en_sentences: list[AlignUnit]
    links: list[AlignLink]


class DetectedLanguage(ResponseModel):
    confidence: float = Field(description="0-100")
    language: Literal["vi", "en"] = Field(description="vi, or en for text that is not Vietnamese")


TranslateResponse.model_rebuild()


class LibreResponse(ResponseModel):
    translatedText: str | list[str]
    detectedLanguage: DetectedLanguage | list[DetectedLanguage] | None = Field(
        None, description="Only when source is auto (a list for a list q)")


class ModelRow(ResponseModel):
    id: str
    family: str | None = None
    license: str | None = None
    default: bool = False
    cached: bool = Field(False, description="Present in the local Hugging Face cache")
    tone: str | None = Field(None, description="Tone-mark placement the model expects: new (hoà) or old (hòa)")
    revision: str | None = Field(None, description="Pinned Hugging Face revision (empty: the latest)")
    comment: str | None = Field(None, description="What models.txt says about it")
    served: bool = Field(description="This server serves it")
    loaded: bool = Field(description="Served and loaded")


class Models(ResponseModel):
    served: str | None = Field(description="The model this server serves")
    ready: bool
    error: str | None = Field(description="Why the model is not loaded")
    models: list[ModelRow]


class Health(ResponseModel):
    status: Literal["ok"]


class BatchingStats(ResponseModel):
    """The request batcher's counts since start (mt.engines.request_queue.BatchingEngine.stats); a counter may be
    added there without a release of the API, so unknown counters are allowed here."""

    model_config = ConfigDict(extra="allow")
    requests: int = Field(description="Translation requests")
    batches: int = Field(description="Model calls")
    sentences: int = Field(description="Sentences asked for")
    engine_sentences: int = Field(description="Sentences sent to the model, after deduplication")
    deduplicated: int
    errors: int
    max_batch: int
    busy_seconds: float
    attention_requests: int = Field(description="Word-link requests")
    attention_batches: int = Field(description="Word-link model calls")
    mean_batch: float
    queued_requests: int
    queued_sentences: int
    max_sentences: int
    max_wait_ms: float
    running: bool


class Ready(ResponseModel):
    status: Literal["ready"]
    model: str | None
    batching: BatchingStats | None = Field(description="null when the server runs without batching")


class Unavailable(ResponseModel):
    status: Literal["unavailable"]
    model: str | None
    error: ErrorBody
