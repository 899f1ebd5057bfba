"""The OpenAPI 3.1 document, generated from the app's routes and the schema classes.

Each view declares its operation with :func:`operation` (summary, request and response models,
the error codes it can answer); :func:`build_spec` walks ``app.url_map``, so a route without a
declaration is a start-up error and the document lists exactly the routes the app serves. Schemas
come from pydantic's ``model_json_schema``; error codes and their statuses from
:data:`mt.web.errors.ERROR_CODES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from . import schemas
from .errors import ERROR_CODES

REF = "#/components/schemas/{model}"
JSON = "application/json"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
TAGS = [
    {"name": "API", "description": "Aligned translation as JSON"},
    {"name": "LibreTranslate", "description": "Drop-in replacement for LibreTranslate's /translate"},
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
    parameters: list[dict] = field(default_factory=list)
    secured: bool = False  # checks the API key itself (views wrapped in needs_api_key are secured anyway)


def operation(**declaration):
    """Attach the OpenAPI declaration to a view (keep it the innermost decorator)."""

    def attach(view):
        view.openapi = Operation(**declaration)
        return view

    return attach


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


def component_schemas(operations: list[Operation]) -> dict[str, dict]:
    keys, top = models_json_schema(models_of(operations), ref_template=REF)
    components = dict(top.get("$defs", {}))
    code = components["ErrorBody"]["properties"]["code"]
    code["enum"] = sorted(ERROR_CODES)
    code["description"] = "; ".join(f"`{name}` ({status}): {meaning}" for name, (status, meaning)
                                    in sorted(ERROR_CODES.items(), key=lambda item: (item[1][0], item[0])))
    return components


def ref(model: type[BaseModel]) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def error_answers(op: Operation, codes: list[str]) -> dict[str, dict]:
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(ERROR_CODES[code][0], []).append(code)
    return {
        str(status): {
            "description": "; ".join(f"`{code}`: {ERROR_CODES[code][1]}" for code in found),
            "content": {JSON: {"schema": ref(op.error_model)}},
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
            media: dict[str, Any] = {"schema": ref(answer.model)} if answer.model is not None else {}
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
            if content_type == JSON and op.example is not None:
                media["example"] = op.example
            content[content_type] = media
        rendered["requestBody"] = {"required": True, "content": content}
    rendered["responses"] = responses
    return rendered


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
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            rendered = render(op, method.lower(), secured=secured, limited=limited, config=config)
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
            "schemas": component_schemas(operations),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "apiKeyField": {"type": "apiKey", "in": "query", "name": "api_key",
                                "description": "Also accepted as an api_key field of the JSON or form body"},
            },
        },
    }
