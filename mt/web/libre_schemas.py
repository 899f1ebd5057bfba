"""LibreTranslate's request and answer shapes (its field names, messages and error shape)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, ConfigDict, Field, RootModel, StrictInt, StrictStr
from pydantic_core import PydanticCustomError

from ..cache.memory_base import MAX_CHARS as MEMORY_CHARS  # per text in the translation memory
from ..engines.base import MAX_ALTERNATIVES  # our --alternatives-limit: the engines' n-best cap
from .schemas import (BATCH_MARK, BEAM_MESSAGE, MODEL_MESSAGE, ApiKey, Beam, DetectedLanguage, FormBeam, FormKey,
                      ModelId, NonBlank, RequestModel, ResponseModel, Text, blank_is_none, whole_number, without_nulls)

ALTERNATIVES_MESSAGE = f"Invalid request: alternatives parameter must be an integer from 0 to {MAX_ALTERNATIVES}"
ALTERNATIVES_DOC = ("How many other translations to answer in `alternatives` (0: none, no field). A text of "
                    "several sentences: alternative k takes each sentence's k-th other hypothesis (its best "
                    "where it has fewer), the way Argos Translate builds LibreTranslate's; at most 7 when the "
                    f"translation is among the {MAX_ALTERNATIVES} best; `html`: always an empty list")
Alternatives = Annotated[Annotated[StrictInt, Field(ge=0, le=MAX_ALTERNATIVES)] | None, BeforeValidator(whole_number),
                         Field(description=ALTERNATIVES_DOC)]
FormAlternatives = Annotated[Annotated[int, Field(ge=0, le=MAX_ALTERNATIVES)] | None, BeforeValidator(blank_is_none),
                             Field(description=ALTERNATIVES_DOC)]


def missing_q(value: Any) -> Any:
    if value is None or value == "" or value == []:
        raise PydanticCustomError("missing", "missing q parameter")
    return value


def or_default(default: str):
    """None or empty: the default; anything else is checked (an object is not a string)."""
    return lambda value: default if value is None or value == "" else value


LIBRE_Q_MESSAGE = "Invalid request: q must be a string or a list of strings"


def choice(default: str, values: list[str], description: str) -> Any:
    """A LibreTranslate option: empty means the default; other values answer 400 (declared as an enum)."""
    return Field(default, description=description + " (empty or null: the default)",
                 json_schema_extra={"enum": [*values, "", None], "type": ["string", "null"]})


class LibreRequest(RequestModel):
    """POST /translate, LibreTranslate's fields (JSON, form-encoded or multipart)."""

    q: Annotated[Annotated[Text, Field(min_length=1)] | Annotated[list[Text], Field(min_length=1)],
                 BeforeValidator(missing_q), Field(json_schema_extra={BATCH_MARK: True})] = Field(
        description="The text, or a list of texts (answered with a list)")
    source: Annotated[StrictStr, BeforeValidator(or_default("auto"))] = choice(
        "auto", ["vi", "auto"], "vi, or auto (then detectedLanguage is returned)")
    target: Annotated[StrictStr, BeforeValidator(or_default("en"))] = choice("en", ["en"], "Must be en")
    format: Annotated[StrictStr, BeforeValidator(or_default("text"))] = choice(
        "text", ["text", "html"], "text, or html (markup kept, only the text translated)")
    alternatives: Alternatives = 0
    model: ModelId = None
    beam: Beam = None
    api_key: ApiKey = None

    messages: ClassVar[dict[str, str]] = {
        "q": LIBRE_Q_MESSAGE,
        "source": "Invalid request: source must be a string",
        "target": "Invalid request: target must be a string",
        "format": "Invalid request: format must be a string",
        "alternatives": ALTERNATIVES_MESSAGE,
        "model": MODEL_MESSAGE,
        "beam": BEAM_MESSAGE,
        "api_key": "Invalid request: api_key must be a string",
    }
    missing: ClassVar[dict[str, str]] = {"q": "Invalid request: missing q parameter"}


def form_q(schema: dict[str, Any]) -> None:
    """In a form, a list is a repeated field: one q is a string, so a list has at least two."""
    without_nulls(schema)
    for option in schema["properties"]["q"].get("anyOf", []):
        if option.get("type") == "array":
            option["minItems"] = 2


class LibreForm(LibreRequest):
    """LibreRequest sent as a form: beam arrives as text; q repeated for a list."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=form_q)
    beam: FormBeam = None
    alternatives: FormAlternatives = 0
    api_key: FormKey = ""


class LibreError(ResponseModel):
    """LibreTranslate's error shape; the code is in the X-Error-Code header."""

    error: str


class LibreResponse(ResponseModel):
    translatedText: str | list[str]
    detectedLanguage: DetectedLanguage | list[DetectedLanguage] | None = Field(
        None, description="Only when source is auto (a list for a list q)")
    alternatives: list[str] | list[list[str]] | None = Field(
        None, description="Only when alternatives > 0: other translations, best first (a list per text for a list q)")


# -- the rest of LibreTranslate's API (mt.web.libre_extra) ------------------------------------------
def required_text(name: str, blank_is_missing: bool = False):
    """A LibreTranslate text field: missing, null or empty (or blank) is its "missing NAME parameter"."""
    def check(value: Any) -> Any:
        if value is None or value == "" or (blank_is_missing and isinstance(value, str) and not value.strip()):
            raise PydanticCustomError("missing", f"missing {name} parameter")
        return value
    return BeforeValidator(check)


class LibreDetectRequest(RequestModel):
    """POST /detect: the text whose language is wanted."""

    q: Annotated[Text, required_text("q"), Field(min_length=1)] = Field(description="The text")
    api_key: ApiKey = None

    messages: ClassVar[dict[str, str]] = {"q": "Invalid request: q must be a string",
                                          "api_key": "Invalid request: api_key must be a string"}
    missing: ClassVar[dict[str, str]] = {"q": "Invalid request: missing q parameter"}


class LibreDetectForm(LibreDetectRequest):
    model_config = ConfigDict(extra="ignore", json_schema_extra=without_nulls)
    api_key: FormKey = ""


class LibreDetection(ResponseModel):
    confidence: float = Field(description="0-100: how sure the detector is")
    language: str = Field(description="vi, or en for text that is not Vietnamese")


class LibreDetections(RootModel[list[LibreDetection]]):
    """The candidate languages, most likely first (this server knows vi and en)."""


class LibreLanguage(ResponseModel):
    code: str
    name: str
    targets: list[str] = Field(description="The languages this one translates into")


class LibreLanguages(RootModel[list[LibreLanguage]]):
    """The languages of this server: Vietnamese (into English) and English (a target only)."""


class LibreNamedLanguage(ResponseModel):
    code: str
    name: str


class LibreDefaultLanguages(ResponseModel):
    source: LibreNamedLanguage
    target: LibreNamedLanguage


class LibreFrontendSettings(ResponseModel):
    """GET /frontend/settings: what a LibreTranslate front end needs to know of this server."""

    charLimit: int = Field(description="Most characters per request (--max-chars)")
    frontendTimeout: int = Field(description="Milliseconds a front end waits after typing before it translates")
    apiKeys: bool = Field(description="The server has API keys (--api-keys)")
    keyRequired: bool = Field(description="A key is required on translating endpoints")
    suggestions: bool = Field(description="POST /suggest is on (--suggestions)")
    filesTranslation: bool = Field(description="POST /translate_file works")
    supportedFilesFormat: list[str] = Field(description="File extensions /translate_file reads")
    language: LibreDefaultLanguages


class LibreSuggestRequest(RequestModel):
    """POST /suggest: a better translation ``s`` of ``q``."""

    q: Annotated[NonBlank, required_text("q", True), Field(max_length=MEMORY_CHARS)] = Field(
        description="The Vietnamese text (a sentence, or sentences matched one to one with those of s)")
    s: Annotated[NonBlank, required_text("s", True), Field(max_length=MEMORY_CHARS)] = Field(
        description="Its better English")
    source: Annotated[StrictStr, required_text("source")] = Field(
        description="vi", json_schema_extra={"enum": ["vi"]})
    target: Annotated[StrictStr, required_text("target")] = Field(
        description="en", json_schema_extra={"enum": ["en"]})
    api_key: ApiKey = None

    messages: ClassVar[dict[str, str]] = {
        **{name: f"Invalid request: {name} must be a string" for name in ("source", "target", "api_key")},
        **{name: f"Invalid request: {name} must be a text of at most {MEMORY_CHARS:,} characters"
           for name in ("q", "s")}}
    missing: ClassVar[dict[str, str]] = {name: f"Invalid request: missing {name} parameter"
                                         for name in ("q", "s", "source", "target")}


class LibreSuggestForm(LibreSuggestRequest):
    model_config = ConfigDict(extra="ignore", json_schema_extra=without_nulls)
    api_key: FormKey = ""


class LibreSuggestResponse(ResponseModel):
    success: bool
