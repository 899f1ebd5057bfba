"""The OpenAPI 3.1 document, generated from the app's routes and the schema classes.

Each view declares its operation with :func:`operation` (summary, request and response models,
the error codes it can answer); :func:`build_spec` walks ``app.url_map``, so a route without a
declaration is a start-up error and the document lists exactly the routes the app serves. Schemas
come from pydantic's ``model_json_schema``; error codes and their statuses from
:data:`mt.web.errors.ERROR_CODES`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Flask, Response, request
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from . import schemas
from .errors import ERROR_CODES, ApiError, json_response
from .security import check_form_encoding, is_form

REF = "#/components/schemas/{model}"
JSON = "application/json"
MULTIPART = "multipart/form-data"
FORM_TYPES = ("application/x-www-form-urlencoded", MULTIPART)
EVENT_STREAM = "text/event-stream"
TAGS = [
    {"name": "API", "description": "Aligned translation as JSON"},
    {"name": "Glossaries", "description": "Stored glossaries (Vietnamese → English terms), shared by every worker and "
                                          "replica; used by /api/translate, the page, documents and DeepL's API"},
    {"name": "Memory", "description": "The translation memory: exact matches outrank the model, fuzzy ones are "
                                      "suggestions"},
    {"name": "LibreTranslate", "description": "LibreTranslate 1.9's API (its clients work unchanged)"},
    {"name": "DeepL", "description": "DeepL API v2, Vietnamese → English (its clients work with server_url)"},
    {"name": "Page", "description": "The HTML page and its downloads"},
    {"name": "Operations", "description": "Health, readiness and this description"},
]


@dataclass(frozen=True)
class Answer:
    """A non-error response: a model (JSON) or raw content types, with an optional example."""

    description: str
    model: type[BaseModel] | None = None
    content_types: tuple[str, ...] = (JSON,)
    example: Any = None


@dataclass
class Operation:
    summary: str
    tags: tuple[str, ...]
    description: str = ""
    body: dict[str, type[BaseModel]] = field(default_factory=dict)  # content type -> request model
    example: Any = None  # of the JSON request body
    answers: dict[int, Answer] = field(default_factory=dict)
    errors: tuple[str, ...] = ()  # codes from ERROR_CODES this operation can answer
    error_model: type[BaseModel] = schemas.Error
    error_types: tuple[str, ...] = (JSON,)  # the page answers its own errors as HTML
    parameters: list[dict] = field(default_factory=list)
    secured: bool = False  # checks the API key itself (views wrapped in needs_api_key are secured anyway)


def operation(*, body: type[BaseModel] | dict[str, type[BaseModel]] | None = None,
              response: type[BaseModel] | None = None, description: str = "", parse: bool = True, **declaration):
    """Declare a view's operation (keep it the innermost decorator); the one place a view's body and
    answer are named.

    ``body`` (a model for JSON, or content type -> model): the view gets it parsed as its ``body``
    argument (415 for another content type, 400 for a bad field; ``parse=False``: the view reads it
    with :func:`read_body` itself, to answer its errors its own way). ``response``: the 200 answer; a
    dict or model the view returns is serialised through it (a Response passes as it is)."""
    bodies = body if isinstance(body, dict) else {JSON: body} if body is not None else {}
    answers = dict(declaration.pop("answers", {}))
    if response is not None:
        answers.setdefault(200, Answer(description or response.__doc__ or response.__name__, response))
    op = Operation(body=bodies, answers=answers, description=description, **declaration)

    def attach(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if bodies and parse:
                kwargs["body"] = read_body(bodies)
            answer = view(*args, **kwargs)
            if response is None or isinstance(answer, Response):
                return answer
            if not isinstance(answer, response):
                answer = response.model_validate(answer)
            return json_response(answer.model_dump(mode="json", exclude_unset=True))

        wrapper.openapi = op
        return wrapper

    return attach


def read_json_object() -> dict:
    """The request body as a JSON object, or a 400 ApiError."""
    try:
        data = json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError) as error:
        raise ApiError("invalid_json", f"the body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ApiError("invalid_json", "the body must be a JSON object")
    return data


def form_fields(model: type[BaseModel]) -> dict[str, Any]:
    """A form's values by field name: a repeated field as a list, an uploaded file as werkzeug's FileStorage."""
    check_form_encoding()
    data: dict[str, Any] = {}
    for name in model.model_fields:
        upload = request.files.get(name)
        values = request.values.getlist(name)
        if upload is not None:
            data[name] = upload
        elif values:
            data[name] = values if len(values) > 1 else values[0]
    return data


def read_body(bodies: dict[str, type[BaseModel]]) -> BaseModel:
    """The request's body as the model declared for its content type."""
    if request.is_json and JSON in bodies:
        return schemas.parse(bodies[JSON], read_json_object())
    if is_form() and request.mimetype in bodies:
        return schemas.parse(bodies[request.mimetype], form_fields(bodies[request.mimetype]))
    raise ApiError("unsupported_media_type",
                   f"send the body as {' or '.join(bodies)} (got {request.mimetype or 'no Content-Type'})")


def models_of(operations: list[Operation]) -> list[tuple[type[BaseModel], str]]:
    seen: dict[type[BaseModel], str] = {}
    for op in operations:
        for model in op.body.values():
            seen.setdefault(model, "validation")
        for answer in op.answers.values():
            if answer.model is not None:
                seen.setdefault(answer.model, "serialization")
        seen.setdefault(op.error_model, "serialization")
    seen.setdefault(schemas.Error, "serialization")
    return list(seen.items())


def component_schemas(operations: list[Operation], config: dict, models: list[str]) -> dict[str, dict]:
    keys, top = models_json_schema(models_of(operations), ref_template=REF)
    components = dict(top.get("$defs", {}))
    code = components["ErrorBody"]["properties"]["code"]
    code["enum"] = sorted(ERROR_CODES)
    code["description"] = "; ".join(f"`{name}` ({status}): {meaning}" for name, (status, meaning)
                                    in sorted(ERROR_CODES.items(), key=lambda item: (item[1][0], item[0])))
    for schema in components.values():
        configured(schema, config, models)
    return components


def configured(node: Any, config: dict, models: list[str]) -> None:
    """Fill the marks of mt.web.schemas with this server's limits: characters per text, texts per
    LibreTranslate q list, the model ids it serves (anything else answers 422)."""
    if isinstance(node, list):
        for item in node:
            configured(item, config, models)
        return
    if not isinstance(node, dict):
        return
    node.pop("x-upload", None)
    if node.pop(schemas.BATCH_MARK, False):
        for option in node.get("anyOf", []):
            if option.get("type") == "array":
                option["maxItems"] = config["MT_BATCH_LIMIT"]
    if node.pop(schemas.MODEL_MARK, False) and models:
        for option in node.get("anyOf", [node]):
            if option.get("type") == "string":
                option["enum"] = [*models, ""]
    for value in node.values():
        configured(value, config, models)


def sse_schema(model: type[BaseModel]) -> dict:
    """One server-sent event as OpenAPI 3.1 describes an event stream: its ``event`` line and its
    ``data`` line, a JSON text of ``model``."""
    return {"type": "object", "required": ["event", "data"], "properties": {
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": JSON, "contentSchema": ref(model)},
        "id": {"type": "string"}, "retry": {"type": "integer", "minimum": 0}}}


def encoding_of(model: type[BaseModel]) -> dict:
    """Multipart parts that carry files: a text file named article.txt (what the schema generates)."""
    uploads = [name for name, prop in model.model_json_schema().get("properties", {}).items() if prop.get("x-upload")]
    return {name: {"contentType": "text/plain", "headers": {"Content-Disposition": {"schema": {
        "type": "string", "example": f'form-data; name="{name}"; filename="article.txt"'}}}} for name in uploads}


def ref(model: type[BaseModel]) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def error_answers(op: Operation, codes: list[str]) -> dict[str, dict]:
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(ERROR_CODES[code][0], []).append(code)
    return {
        str(status): {
            "description": "; ".join(f"`{code}`: {ERROR_CODES[code][1]}" for code in found),
            "content": {kind: {"schema": ref(op.error_model)} if kind == JSON else {} for kind in op.error_types},
            "x-error-codes": found,
        }
        for status, found in sorted(by_status.items())
    }


def render(op: Operation, method: str, *, secured: bool, limited: bool, config: dict) -> dict:
    codes = list(op.errors)
    if method != "get":
        codes.append("body_too_large")
    if secured and config["MT_API_KEYS"]:
        codes += ["api_key_required", "invalid_api_key"]
    if limited and config["MT_RATE_LIMIT"]:
        codes.append("rate_limited")
    codes.append("internal_error")
    responses: dict[str, dict] = {}
    for status, answer in sorted(op.answers.items()):
        content: dict[str, dict] = {}
        for content_type in answer.content_types:
            media: dict[str, Any] = {}
            if answer.model is not None:
                media["schema"] = sse_schema(answer.model) if content_type == EVENT_STREAM else ref(answer.model)
            if answer.example is not None:
                media["example"] = answer.example
            content[content_type] = media
        responses[str(status)] = {"description": answer.description, "content": content}
    for status, response in error_answers(op, list(dict.fromkeys(codes))).items():
        responses.setdefault(status, response)
    rendered: dict[str, Any] = {"tags": list(op.tags), "summary": op.summary}
    if op.description:
        rendered["description"] = op.description
    rendered["operationId"] = None  # filled by build_spec
    if secured:
        rendered["security"] = [{"bearer": []}, {"apiKeyHeader": []}, {"apiKeyField": []}] if config["MT_API_KEYS"] else []
    if op.parameters:
        rendered["parameters"] = op.parameters
    if op.body:
        content = {}
        for content_type, model in op.body.items():
            media = {"schema": ref(model)}
            if content_type == MULTIPART and encoding_of(model):
                media["encoding"] = encoding_of(model)
            if content_type == JSON and op.example is not None:
                media["example"] = op.example
            content[content_type] = media
        rendered["requestBody"] = {"required": True, "content": content}
    rendered["responses"] = responses
    return rendered


def served_models(app: Flask) -> list[str]:
    service = app.extensions.get("mt")
    return sorted(service.served_names()) if service is not None else []


def openapi_path(rule: str) -> str:
    """Flask's ``/download/<format>`` (or ``<string:format>``) as OpenAPI's ``/download/{format}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def build_spec(app: Flask) -> dict:
    """The OpenAPI document of every route of ``app`` except its static files."""
    config = app.config
    paths: dict[str, dict] = {}
    operations = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        op: Operation | None = getattr(view, "openapi", None)
        if op is None:
            raise RuntimeError(f"route {rule.rule} ({rule.endpoint}) has no OpenAPI declaration (mt.web.openapi.operation)")
        operations.append(op)
        secured = op.secured or getattr(view, "needs_api_key", False)
        limited = getattr(view, "rate_limited", False)
        declared = {parameter["name"] for parameter in op.parameters}
        path_parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                           for name in sorted(rule.arguments - declared)]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            rendered = render(op, method.lower(), secured=secured, limited=limited, config=config)
            if path_parameters:
                rendered["parameters"] = path_parameters + rendered.get("parameters", [])
            rendered["operationId"] = f"{rule.endpoint}_{method.lower()}".replace(".", "_")
            paths.setdefault(openapi_path(rule.rule), {})[method.lower()] = rendered
    max_chars, max_body = config["MT_MAX_CHARS"], config["MT_MAX_BODY_BYTES"]
    keys, rate_limit = bool(config["MT_API_KEYS"]), config["MT_RATE_LIMIT"]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mt-vi-en: Vietnamese→English translation and alignment",
            "version": __version__,
            "description": (
                "Translate Vietnamese articles into English sentence by sentence, keeping each sentence's "
                "offsets in the submitted text. Errors are JSON `{\"error\": {\"code\", \"message\"}}` "
                "(LibreTranslate's `{\"error\": \"message\"}` on POST /translate, code in `X-Error-Code`). "
                f"Limits: {max_chars:,} characters per request, {max_body:,} bytes per body."
                + (" API keys required on translating endpoints." if keys else "")
                + (f" Rate limit: {rate_limit} per client on translating endpoints." if rate_limit else "")
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": component_schemas(operations, config, served_models(app)),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "apiKeyField": {"type": "apiKey", "in": "query", "name": "api_key",
                                "description": "Also accepted as an api_key field of the JSON or form body"},
            },
        },
    }
