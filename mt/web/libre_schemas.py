"""LibreTranslate's request and answer shapes (its field names, messages and error shape)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, ConfigDict, Field, StrictStr
from pydantic_core import PydanticCustomError

from .schemas import (BATCH_MARK, BEAM_MESSAGE, MODEL_MESSAGE, ApiKey, Beam, DetectedLanguage, FormBeam, FormKey,
                      ModelId, RequestModel, ResponseModel, Text, without_nulls)


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
        "text", ["text"], "Must be text (html is not supported)")
    model: ModelId = None
    beam: Beam = None
    api_key: ApiKey = None

    messages: ClassVar[dict[str, str]] = {
        "q": LIBRE_Q_MESSAGE,
        "source": "Invalid request: source must be a string",
        "target": "Invalid request: target must be a string",
        "format": "Invalid request: format must be a string",
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
    api_key: FormKey = ""


class LibreError(ResponseModel):
    """LibreTranslate's error shape; the code is in the X-Error-Code header."""

    error: str



class LibreResponse(ResponseModel):
    translatedText: str | list[str]
    detectedLanguage: DetectedLanguage | list[DetectedLanguage] | None = Field(
        None, description="Only when source is auto (a list for a list q)")
