"""DeepL API v2's request and answer shapes: its field names, as JSON and as forms.

DeepL's clients send JSON (the Python client: ``text`` a list, booleans as JSON booleans) or forms
(deepl-node: ``text`` repeated, booleans as ``1``/``0``); both are declared. Language codes are
case-insensitive (deepl-node sends ``vi`` and ``en-US``), so the schema declares them as patterns,
and the view answers DeepL's own messages ("Value for 'target_lang' not supported.").
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, ConfigDict, Field, RootModel, StrictBool, StrictStr

from ..cache.glossaries import MAX_TERM_CHARS, NAME_PATTERN, NO_CONTROLS, TERM
from .schemas import FormModel, RequestModel, ResponseModel, Text, Upload, valid_unicode, without_nulls

TARGET_PATTERN = "^([Ee][Nn](-([Uu][Ss]|[Gg][Bb]))?)?$"  # EN, EN-US, EN-GB in any case (empty: EN)
SOURCE_PATTERN = "^([Vv][Ii])?$"  # empty: detect
GLOSSARY_SOURCE_PATTERN, GLOSSARY_TARGET_PATTERN = "^[Vv][Ii]$", "^[Ee][Nn]$"
ID_PATTERN = "^[A-Za-z0-9._-]{1,200}$"
OPTIONAL_ID_PATTERN = "^[A-Za-z0-9._-]{0,200}$"
MAX_TEXTS = 50  # DeepL's limit of texts per request

Target = Annotated[StrictStr, Field(description="EN, EN-US or EN-GB (any case; empty: EN): the English variant is "
                                                "the same translation", json_schema_extra={"pattern": TARGET_PATTERN})]
Source = Annotated[StrictStr | None, Field(description="VI (any case), or absent to detect the language",
                                           json_schema_extra={"pattern": SOURCE_PATTERN})]
GlossaryId = Annotated[StrictStr | None, Field(description="A glossary of /v2/glossaries (or /api/glossaries); empty: "
                                                           "none", json_schema_extra={"pattern": OPTIONAL_ID_PATTERN})]
Tags = Annotated[Text | Annotated[list[Text], Field(max_length=50)] | None,
                 Field(description="Tag names, comma-separated or a list (see the README for what is honoured)")]
Flag = Annotated[StrictBool | Literal["0", "1"] | None, Field(description="true/false (JSON) or 1/0")]
FormFlag = Annotated[Literal["0", "1", "true", "false"] | None, Field(description="1 or 0")]
Formality = Literal["default", "prefer_less", "prefer_more"]
# Glossary entries as the server reads them (mt.terms.glossary_file): TSV lines (a tab on the first
# line) or CSV lines (no quotes or commas in a term; DeepL's four columns with vi,en allowed)
CSV_TERM = rf' *[^\s,"{NO_CONTROLS}][^,"{NO_CONTROLS}]{{0,{MAX_TERM_CHARS - 1}}}'
CSV_LINE = rf"{CSV_TERM},{CSV_TERM}(?:, *[Vv][Ii] *, *[Ee][Nn] *)?"
TSV_LINE = rf"{TERM}\t{TERM}"
ENTRIES_PATTERN = rf"^(?:{TSV_LINE}(?:\r?\n{TSV_LINE})*|{CSV_LINE}(?:\r?\n{CSV_LINE})*)(?:\r?\n)?$"
FORMALITY_DOC = ("English has no formal register: default, prefer_less and prefer_more are accepted (and change "
                 "nothing); less and more answer 400 as DeepL does for such a language")


def listed(value: Any) -> Any:
    """One text is a list of one."""
    return [value] if isinstance(value, str) else value


class DeepLTranslateRequest(RequestModel):
    """POST /v2/translate as JSON (the Python client's way)."""

    text: Annotated[Annotated[list[Text], Field(min_length=1, max_length=MAX_TEXTS)] | Text,
                    Field(description=f"The texts (at most {MAX_TEXTS}), answered in order")]
    target_lang: Target
    source_lang: Source = None
    split_sentences: Literal["0", "1", "nonewlines"] | None = Field(
        None, description="Accepted; sentences are always split by this server's segmenter")
    preserve_formatting: Flag = None
    formality: Formality | None = Field(None, description=FORMALITY_DOC)
    glossary_id: GlossaryId = None
    glossary_ids: Annotated[list[Annotated[StrictStr, Field(pattern=ID_PATTERN)]], Field(max_length=5)] | None = None
    tag_handling: Literal["html", "xml"] | None = Field(
        None, description="Markup kept: the text goes through the HTML document path (XML too: see the README)")
    tag_handling_version: Literal["v1", "v2"] | None = None
    outline_detection: Flag = None
    non_splitting_tags: Tags = None
    splitting_tags: Tags = None
    ignore_tags: Tags = None
    context: Text | None = Field(None, description="Accepted, not used (and not billed)")
    show_billed_characters: Flag = None
    model_type: Literal["quality_optimized", "prefer_quality_optimized", "latency_optimized"] | None = None

    messages: ClassVar[dict[str, str]] = {"text": f"Parameter 'text' must be a string or a list of at most {MAX_TEXTS} "
                                                  "strings.",
                                          "target_lang": "Value for 'target_lang' not supported.",
                                          "source_lang": "Value for 'source_lang' not supported.",
                                          "formality": "'formality' is not supported for given 'target_lang': "
                                                       "English has none (default, prefer_less, prefer_more pass)"}
    missing: ClassVar[dict[str, str]] = {"text": "Parameter 'text' not specified.",
                                         "target_lang": "Value for 'target_lang' not supported."}


def form_text(schema: dict[str, Any]) -> None:
    """In a form a list is a repeated field: one text is a string, so a list has at least two."""
    without_nulls(schema)
    for option in schema["properties"]["text"].get("anyOf", []):
        if option.get("type") == "array":
            option["minItems"] = 2


class DeepLTranslateForm(DeepLTranslateRequest):
    """POST /v2/translate as a form (deepl-node's way): ``text`` repeated, flags 1/0, tags comma-separated."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=form_text)
    text: Annotated[Annotated[list[Text], Field(min_length=1, max_length=MAX_TEXTS)] | Text,
                    Field(description=f"The texts (repeat the field; at most {MAX_TEXTS})")]
    preserve_formatting: FormFlag = None
    outline_detection: FormFlag = None
    show_billed_characters: FormFlag = None
    glossary_ids: Annotated[str, Field(pattern="^[A-Za-z0-9._,-]{1,1100}$")] | None = None


class DeepLTextResult(ResponseModel):
    detected_source_language: str = Field(description="VI, or EN for a text that is not Vietnamese (answered as "
                                                      "it is)")
    text: str
    billed_characters: int = Field(description="Characters of the submitted text (counted in /v2/usage)")


class DeepLTranslateResponse(ResponseModel):
    translations: list[DeepLTextResult]


class DeepLLanguage(ResponseModel):
    language: str
    name: str
    supports_formality: bool | None = Field(None, description="Target languages only")


class DeepLLanguages(RootModel[list[DeepLLanguage]]):
    """The languages, source or target."""


class DeepLUsage(ResponseModel):
    character_count: int = Field(description="Characters translated this calendar month (UTC), by every worker")
    character_limit: int = Field(description="--deepl-character-limit (1,000,000,000,000 when unlimited)")


class DeepLGlossaryRequest(RequestModel):
    """POST /v2/glossaries."""

    name: Annotated[StrictStr, BeforeValidator(valid_unicode), Field(json_schema_extra={"pattern": NAME_PATTERN})]
    source_lang: Annotated[StrictStr, Field(json_schema_extra={"pattern": GLOSSARY_SOURCE_PATTERN})]
    target_lang: Annotated[StrictStr, Field(json_schema_extra={"pattern": GLOSSARY_TARGET_PATTERN})]
    entries: Annotated[StrictStr, BeforeValidator(valid_unicode)] = Field(
        description="One entry a line: Vietnamese<TAB>English (tsv) or Vietnamese,English (csv)",
        json_schema_extra={"pattern": ENTRIES_PATTERN})
    entries_format: Literal["tsv", "csv"] = "tsv"

    messages: ClassVar[dict[str, str]] = {"source_lang": "Value for 'source_lang' not supported.",
                                          "target_lang": "Value for 'target_lang' not supported."}


class DeepLGlossaryForm(DeepLGlossaryRequest, FormModel):
    """POST /v2/glossaries as a form (deepl-node)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=without_nulls)


class DeepLGlossaryInfo(ResponseModel):
    glossary_id: str
    name: str
    ready: bool
    source_lang: str
    target_lang: str
    creation_time: str = Field(description="ISO 8601 with milliseconds, UTC")
    entry_count: int


class DeepLGlossaryList(ResponseModel):
    glossaries: list[DeepLGlossaryInfo]


class DeepLLanguagePair(ResponseModel):
    source_lang: str
    target_lang: str


class DeepLLanguagePairs(ResponseModel):
    supported_languages: list[DeepLLanguagePair]


class DeepLDocumentForm(FormModel):
    """POST /v2/document: multipart with the file."""

    file: Upload = Field(description="The document: .txt, .md, .html, .xhtml, .docx, .srt or .vtt")
    target_lang: Target
    source_lang: Source = None
    filename: Annotated[str, Field(pattern=r"^[^\x00-\x1f/\\]{1,200}$")] | None = None
    output_format: Annotated[str, Field(pattern="^[A-Za-z0-9]{0,10}$")] | None = Field(
        None, description="Only the file's own format (another answers 400)")
    formality: Formality | None = Field(None, description=FORMALITY_DOC)
    glossary_id: GlossaryId = None

    messages: ClassVar[dict[str, str]] = DeepLTranslateRequest.messages
    missing: ClassVar[dict[str, str]] = {"file": "Parameter 'file' not specified.",
                                         "target_lang": "Value for 'target_lang' not supported."}


class DeepLDocumentHandle(ResponseModel):
    document_id: str
    document_key: str


class DeepLDocumentKey(RequestModel):
    """POST /v2/document/{document_id} (and /result): the key the upload answered."""

    document_key: Annotated[StrictStr, Field(pattern=ID_PATTERN)]
    missing: ClassVar[dict[str, str]] = {"document_key": "Parameter 'document_key' not specified."}


class DeepLDocumentKeyForm(DeepLDocumentKey, FormModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra=without_nulls)


class DeepLDocumentStatus(ResponseModel):
    document_id: str
    status: Literal["queued", "translating", "done", "error"]
    seconds_remaining: int | None = None
    billed_characters: int | None = None
    error_message: str | None = None


class DeepLError(ResponseModel):
    """DeepL's error shape; the code is in the X-Error-Code header."""

    message: str
