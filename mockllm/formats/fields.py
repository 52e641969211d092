"""Reading request bodies: required and optional fields with the real APIs' error wording."""

from __future__ import annotations

import json
from typing import Any

from . import RequestError

#: Deeper JSON is refused with a 400 (real request bodies, tool schemas included, stay far below;
#: Python's own parser and encoder recurse, so an unbounded depth would be a 500).
MAX_DEPTH = 128


def read_body(raw: bytes) -> Any:
    """The JSON value of a request body, or a :class:`RequestError` in OpenAI's wording for
    anything the real APIs refuse: not JSON, not UTF-8, a lone UTF-16 surrogate (which no
    response could echo back as UTF-8), an integer of more digits than Python converts, or
    nesting past :data:`MAX_DEPTH`."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise _too_deep() from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, and the 4,300-digit int limit
        raise RequestError(
            400,
            "We could not parse the JSON body of your request. The API expects a JSON payload, "
            "but what was sent was not valid JSON.",
            code="invalid_json",
        ) from None
    _check_value(body)
    return body


def _check_value(body: Any) -> None:
    """Walk ``body`` without recursion: its depth, and strings that are not valid Unicode."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise _too_deep()
            items: Any = value
            if isinstance(value, dict):
                for key in value:
                    _check_text(key)
                items = value.values()
            stack.extend((item, depth + 1) for item in items if isinstance(item, str | dict | list))


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError(
            400,
            f"The request body contains a lone UTF-16 surrogate ({text[exc.start]!r}), which is "
            "not valid Unicode.",
            code="invalid_json",
        ) from None


def _too_deep() -> RequestError:
    return RequestError(
        400,
        f"The JSON body of your request is nested more than {MAX_DEPTH} levels deep.",
        code="invalid_json",
    )


def required(body: dict[str, Any], key: str, kind: Any, name: str) -> Any:
    if key not in body:
        raise RequestError(
            400,
            f"Missing required parameter: '{key}'.",
            param=key,
            code="missing_required_parameter",
        )
    if body[key] is None:
        raise _invalid_type(key, name, None)
    return optional(body, key, kind, name, None)


def optional(body: dict[str, Any], key: str, kind: Any, name: str, default: Any) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _invalid_type(key, name, value)
    return value


def _invalid_type(key: str, name: str, value: Any) -> RequestError:
    return RequestError(
        400,
        f"Invalid type for '{key}': expected {name}, but got {json_type(value)} instead.",
        param=key,
        code="invalid_type",
    )


def json_type(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), "null")


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError(400, "The request body must be a JSON object.", code="invalid_type")
    return body


def stream_flag(body: dict[str, Any], default: bool = False) -> bool:
    flag: bool = optional(body, "stream", bool, "a boolean", default)
    return flag
