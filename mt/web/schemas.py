"""Request and response bodies of the HTTP API, declared once as pydantic models.

Request models validate what clients send (:func:`parse`: a 400 ``invalid_field`` naming the field);
response models describe what the server answers. Both feed the generated OpenAPI document and
/docs (:mod:`mt.web.openapi`); the tests validate real responses against the response models,
which forbid unknown fields so that a field added without its declaration fails.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from dataclasses import fields as dataclass_fields
from typing import get_type_hints

from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError,
    WithJsonSchema, create_model,
)
from pydantic_core import PydanticCustomError

from ..document import SentencePair
from .errors import ApiError
from .glossary_fields import FormGlossary, FormGlossaryId, FormProtect, Glossary, GlossaryId, Protect

MIN_BEAM, MAX_BEAM = 1, 8
BEAM_MESSAGE = f"beam must be an integer from {MIN_BEAM} to {MAX_BEAM}"


# C0/C1 control characters other than the whitespace ones (tab, line feed, vertical tab, form feed,
# carriage return, NEL): NUL, ESC and the like are never text, so they are refused, not passed on
CONTROLS = r"\x00-\x08\x0e-\x1f\x7f\x80-\x84\x86-\x9f"
CONTROL_RE = re.compile(f"[{CONTROLS}]")
# the same two rules for the OpenAPI document (ECMA-262 patterns): no control character; and at
# least one character that is not whitespace, where the server answers 400 empty_text
TEXT_PATTERN = f"^[^{CONTROLS}]*$"
NONBLANK_PATTERN = rf"^[^{CONTROLS}]*[^\s{CONTROLS}][^{CONTROLS}]*$"
# marks in the schemas that mt.web.openapi fills from the app's configuration
BATCH_MARK, MODEL_MARK = "x-batch-limit", "x-served-models"


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


def whole_number(value: Any) -> Any:
    """JSON Schema's integer includes 3.0: take it as 3 (3.5 and "3" stay refused)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# -- field types ---------------------------------------------------------------------------------
def text_schema(pattern: str, **extra) -> Field:
    # no maxLength: over --max-chars is 413 text_too_long, for the whole request (declared with each operation)
    return Field(json_schema_extra={"pattern": pattern, **extra})


Text = Annotated[StrictStr, BeforeValidator(valid_unicode), text_schema(TEXT_PATTERN)]
NonBlank = Annotated[StrictStr, BeforeValidator(valid_unicode), text_schema(NONBLANK_PATTERN)]
FormText = Annotated[str, BeforeValidator(valid_unicode), text_schema(TEXT_PATTERN)]
FormKey = Annotated[str, BeforeValidator(valid_unicode), Field(
    description="Only when the server requires API keys", json_schema_extra={"pattern": TEXT_PATTERN})]
ModelId = Annotated[StrictStr | None, BeforeValidator(blank_is_none),
                    Field(description="A model id from GET /api/models (default, or empty: the served model)",
                          json_schema_extra={MODEL_MARK: True})]
Beam = Annotated[Annotated[StrictInt, Field(ge=MIN_BEAM, le=MAX_BEAM)] | None, BeforeValidator(whole_number),
                 Field(description="Beam size (default: the model's)")]
FormBeam = Annotated[Annotated[int, Field(ge=MIN_BEAM, le=MAX_BEAM)] | None, BeforeValidator(blank_is_none),
                     Field(description="Beam size (default, or empty: the model's)")]
ApiKey = Annotated[StrictStr | None, BeforeValidator(blank_is_none),
                   Field(description="Only when the server requires API keys (or send a header)")]
# An uploaded file (werkzeug's FileStorage); declared as a text file named article.txt so that
# generated requests are ones the server can read (mt.web.openapi writes the part's encoding)
def is_upload(value: Any) -> Any:
    if not hasattr(value, "read"):
        raise PydanticCustomError("upload", "must be a file (a multipart part with a filename)")
    return value


Upload = Annotated[Any, AfterValidator(is_upload), WithJsonSchema({"type": "string", "contentMediaType": "application/octet-stream",
                                        "pattern": NONBLANK_PATTERN, "x-upload": True})]


def without_nulls(schema: dict[str, Any]) -> None:
    """A form has no null: an optional field is left out (or sent empty), never "null"."""
    for prop in schema.get("properties", {}).values():
        options = [option for option in prop.pop("anyOf", []) if option.get("type") != "null"]
        if len(options) == 1:
            prop.update(options[0])
        elif options:
            prop["anyOf"] = options
        if isinstance(prop.get("type"), list) and "null" in prop["type"]:  # e.g. LibreTranslate's choices
            kinds = [kind for kind in prop["type"] if kind != "null"]
            prop["type"] = kinds[0] if len(kinds) == 1 else kinds
            if "enum" in prop:
                prop["enum"] = [value for value in prop["enum"] if value is not None]
        if prop.get("default", 0) is None:
            del prop["default"]


def sentence_model(name: str, groups: tuple[str, ...] | None = None, doc: str | None = None,
                   **extra: Any) -> type["ResponseModel"]:
    """A response model of :class:`mt.document.SentencePair`'s fields (those of ``groups``, with
    ``index``), every one required, described as the dataclass describes it; plus ``extra`` fields."""
    hints = get_type_hints(SentencePair, include_extras=True)
    chosen = [item for item in dataclass_fields(SentencePair)
              if groups is None or item.name == "index" or item.metadata["group"] in groups]
    definitions: dict[str, Any] = {
        item.name: (hints[item.name], Field(description=item.metadata["doc"])) for item in chosen}
    definitions.update(extra)
    return create_model(name, __base__=ResponseModel, __doc__=doc, **definitions)


class RequestModel(BaseModel):
    """A request body: unknown fields are ignored; ``messages`` words the 400 for a field."""

    model_config = ConfigDict(extra="ignore")
    messages: ClassVar[dict[str, str]] = {}
    missing: ClassVar[dict[str, str]] = {}


class FormModel(RequestModel):
    """A form body (form-encoded or multipart): every value is text, none is null."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=without_nulls)


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
ARTICLE = "The Vietnamese article (at least one character that is not whitespace: else 400 empty_text)"
MODEL_MESSAGE = "model must be a string (a model id from GET /api/models)"


class TranslateRequest(RequestModel):
    """POST /api/translate (and /download/{format} as JSON)."""

    text: NonBlank = Field(description=ARTICLE)
    model: ModelId = None
    beam: Beam = None
    api_key: ApiKey = None
    glossary: Glossary = None
    glossary_id: GlossaryId = None
    protect: Protect = True

    messages: ClassVar[dict[str, str]] = {
        "text": "text must be a string", "model": MODEL_MESSAGE, "beam": BEAM_MESSAGE,
        "api_key": "api_key must be a string", "protect": "protect must be true or false"}


class DownloadRequest(TranslateRequest):
    """POST /download/{format} as JSON: as /api/translate, but a missing text is 400 empty_text, as
    the page's form answers it (the schema still says text is required)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=lambda schema: schema.update(required=["text"]))
    text: NonBlank = Field("", description=ARTICLE)


class PageForm(FormModel):
    """The page's form (POST / and /download/{format}) form-encoded: the text."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=lambda schema: (
        without_nulls(schema), schema.update(required=["text"])))
    text: Annotated[str, BeforeValidator(valid_unicode), text_schema(NONBLANK_PATTERN)] = Field("", description=ARTICLE)
    model: ModelId = None
    beam: FormBeam = None
    api_key: FormKey = ""
    glossary: FormGlossary = None
    glossary_id: FormGlossaryId = None
    protect: FormProtect = True

    messages: ClassVar[dict[str, str]] = {"model": MODEL_MESSAGE, "beam": BEAM_MESSAGE}


def text_or_file(schema: dict[str, Any]) -> None:
    """Blank text is 400 empty_text unless a file is sent."""
    without_nulls(schema)
    schema.pop("required", None)
    schema["properties"]["text"]["pattern"] = TEXT_PATTERN
    schema["anyOf"] = [{"required": ["text"], "properties": {"text": {"pattern": NONBLANK_PATTERN}}},
                       {"required": ["file"]}]


class PageUpload(PageForm):
    """The page's form as multipart: the text, or a file instead."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=lambda schema: text_or_file(schema))
    file: Upload = Field(None, description="A UTF-8 .txt file (replaces text) or a document (.html, .md, .docx, "
                                           ".srt, .vtt: the aligned view of its blocks)")


class AlignRequest(RequestModel):
    """POST /api/align."""

    vi: Text = Field(description="The Vietnamese article (empty: every English unit is left alone)")
    en: Text = Field(description="Its English translation (empty: every Vietnamese unit is left alone)")
    lines: StrictBool = Field(False, description="Both sides are one sentence per line: align lines, don't split")
    api_key: ApiKey = None

    messages: ClassVar[dict[str, str]] = {
        "vi": "vi must be a string", "en": "en must be a string", "lines": "lines must be true or false",
        "api_key": "api_key must be a string"}


# -- responses -----------------------------------------------------------------------------------
class ErrorBody(ResponseModel):
    code: str = Field(description="Machine-readable; the table below lists every code")
    message: str = Field(description="For people: what went wrong and what to do")


class Error(ResponseModel):
    """Every error of our API (not LibreTranslate's /translate)."""

    error: ErrorBody


Segment = sentence_model("Segment", doc="One segment of the article beside its translation, word links and score")


class Timings(ResponseModel):
    """Where the time went, in milliseconds (and sentence counts)."""

    segment_ms: float = Field(description="Segmenting and normalising")
    memory_ms: float | None = Field(None, description="Looking the sentences up in the translation memory")
    cache_ms: float = Field(description="Reading the sentence cache")
    model_ms: float = Field(description="Translating the cache misses")
    model_sentences: int = Field(description="Sentences sent to the model (cache misses)")
    links_ms: float | None = Field(None, description="Word links, cache included")
    links_model_ms: float | None = Field(None, description="The model's teacher-forced pass for word links")
    links_sentences: int | None = Field(None, description="Sentences whose word links were computed (not cached)")
    terms_ms: float | None = Field(None, description="Enforcing glossary terms and protected spans")
    quality_ms: float | None = Field(None, description="Quality scores, cache included")
    store_ms: float | None = Field(None, description="Writing fresh translations to the cache")
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


class ModelRow(ResponseModel):
    id: str
    family: str | None = None
    license: str | None = None
    default: bool = False
    cached: bool = Field(False, description="Present in the local Hugging Face cache")
    tone: str | None = Field(None, description="Tone-mark placement the model expects: new (hoà) or old (hòa)")
    revision: str | None = Field(None, description="Pinned Hugging Face revision (empty: the latest)")
    comment: str | None = Field(None, description="What models.txt says about it")
    size: str | None = Field(None, description="Parameters or weights size, as models.txt gives it")
    published: dict[str, float] = Field(default_factory=dict, description="Published scores cited in models.txt "
                                        "(bleu_flores, chrf_flores, bleu_tst2013, ...): not measured by this server")
    score_source: str | None = Field(None, description="Where those scores are published (URL)")
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
    batching: BatchingStats | None = Field(None, description="null when the server runs without batching; absent "
                                           "without a valid API key when the server has keys")


class Unavailable(ResponseModel):
    status: Literal["unavailable"]
    model: str | None
    error: ErrorBody
