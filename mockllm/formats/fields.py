"""Reading request bodies: required and optional fields with the real APIs' error wording."""

from __future__ import annotations

from typing import Any

from . import RequestError


def required(body: dict[str, Any], key: str, kind: Any, name: str) -> Any:
    if key not in body:
        raise RequestError(
            400,
            f"Missing required parameter: '{key}'.",
            param=key,
            code="missing_required_parameter",
        )
    return optional(body, key, kind, name, None)


def optional(body: dict[str, Any], key: str, kind: Any, name: str, default: Any) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RequestError(
            400,
            f"Invalid type for '{key}': expected {name}, but got {json_type(value)} instead.",
            param=key,
            code="invalid_type",
        )
    return value


def json_type(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), "null")


def message_texts(content: Any) -> list[str]:
    """The text of a message's content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError(400, "The request body must be a JSON object.", code="invalid_type")
    return body


def stream_flag(body: dict[str, Any], default: bool = False) -> bool:
    flag: bool = optional(body, "stream", bool, "a boolean", default)
    return flag
