"""What /docs shows: the generated OpenAPI document flattened into operations and schema tables."""

from __future__ import annotations

import json

from markupsafe import Markup, escape


def resolve_ref(spec: dict, node: dict) -> tuple[str | None, dict]:
    ref = node.get("$ref")
    if not ref:
        return None, node
    name = ref.rsplit("/", 1)[-1]
    return name, spec["components"]["schemas"][name]


def schema_type(schema: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " | ".join(schema_type(option) for option in schema[key])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " | ".join(kind)
    if kind == "array":
        return f"array of {schema_type(schema.get('items', {}))}"
    if "enum" in schema:
        return f"{kind}: " + ", ".join(str(value) for value in schema["enum"])
    return kind


def inline_code(value: str) -> Markup:
    """Escape, then show `backticked` spans as <code> (for the spec's own descriptions)."""
    parts = str(escape(value)).split("`")
    return Markup("".join(f"<code>{part}</code>" if index % 2 else part for index, part in enumerate(parts)))


def schema_rows(schema: dict, prefix: str = "") -> list[dict]:
    """Fields of a schema, nested objects flattened as ``outer.inner``."""
    rows = []
    for field, value in schema.get("properties", {}).items():
        name = prefix + field
        rows.append({"name": name, "type": schema_type(value), "description": value.get("description", "")})
        if value.get("type") == "object" and "properties" in value:
            rows.extend(schema_rows(value, name + "."))
        elif value.get("type") == "array" and "properties" in value.get("items", {}):
            rows.extend(schema_rows(value["items"], name + "[]."))
    return rows


def docs_schemas(spec: dict) -> list[dict]:
    return [{"name": name, "rows": schema_rows(schema)} for name, schema in spec["components"]["schemas"].items()]


def docs_view_model(spec: dict) -> list[dict]:
    """Flatten the spec into what docs.html shows: one entry per operation."""
    operations = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            bodies = []
            for content_type, media in op.get("requestBody", {}).get("content", {}).items():
                name, schema = resolve_ref(spec, media.get("schema", {}))
                required = set(schema.get("required", []))
                fields = [
                    {"name": field, "type": schema_type(value), "required": field in required,
                     "description": value.get("description", "")}
                    for field, value in schema.get("properties", {}).items()
                ]
                example = media.get("example")
                bodies.append({
                    "content_type": content_type, "schema": name, "fields": fields,
                    "example": json.dumps(example, ensure_ascii=False, indent=2) if example is not None else None,
                })
            responses = []
            for status, response in op.get("responses", {}).items():
                schema_name = None
                example = None
                for media in response.get("content", {}).values():
                    if "schema" in media:
                        schema_name = schema_type(media["schema"])
                    if "example" in media:
                        example = json.dumps(media["example"], ensure_ascii=False, indent=2)
                responses.append({"status": status, "description": response.get("description", ""),
                                  "schema": schema_name, "example": example,
                                  "types": list(response.get("content", {}))})
            operations.append({
                "id": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", "").strip("-"),
                "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                "description": op.get("description", ""), "tags": op.get("tags", []),
                "secured": bool(op.get("security")),
                "parameters": [{"name": p["name"], "in": p["in"], "type": schema_type(p.get("schema", {}))}
                               for p in op.get("parameters", [])],
                "bodies": bodies, "responses": responses,
            })
    return operations
