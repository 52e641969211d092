"""A scenario's HTTP answer checked at load: header names that are HTTP tokens, values (and
``wire.content_type``) without control characters, no framing headers, at most
:data:`MAX_HEADER_BYTES` of them; a ``body`` that is JSON the server can send. Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import show

#: The scenario's own headers, ``Name: value`` lines all told: clients stop reading a response
#: head at 8–16 KiB (aiohttp's client, h11), and mockllm adds its own.
MAX_HEADER_BYTES = 8192

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_FRAMING_HEADERS = {"content-length", "transfer-encoding"}


def headers_ok(data: Mapping[str, Any], report: Callable[..., None]) -> bool:
    """Headers the server can send and a client can read (RFC 9110 field names and values)."""
    ok = True
    size = 0
    for name, value in data.get("headers", {}).items():
        text, value_text = str(name), str(value)
        size += len(text) + len(value_text.encode("utf-8")) + 4  # ": " and CRLF
        if not _TOKEN.match(text):
            message = f"{show(text)} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"
            report(("headers", name), message, at_key=True)
            ok = False
        elif text.lower() in _FRAMING_HEADERS:
            message = f"mockllm frames the body itself (wire.framing): a {text} header would contradict it"
            report(("headers", name), message, at_key=True)
            ok = False
        if _CONTROL.search(value_text):
            report(("headers", name), control_message(value_text))
            ok = False
    content_type = data.get("wire", {}).get("content_type", "")
    if _CONTROL.search(content_type):
        report(("wire", "content_type"), control_message(content_type))
        ok = False
    if size > MAX_HEADER_BYTES:
        message = f"{size:,} bytes of headers: at most {MAX_HEADER_BYTES:,} (clients read no more)"
        report(("headers",), message)
        ok = False
    return ok


def control_message(value: str) -> str:
    match = _CONTROL.search(value)
    assert match is not None
    code = f"U+{ord(match.group()):04X}"
    return f"{show(value)} cannot be sent as a header: it contains a control character ({code})"


def body_ok(data: Mapping[str, Any], report: Callable[..., None]) -> bool:
    body = data.get("body")
    if body is not None and data.get("status") == 204:
        report(("body",), "a 204 No Content answer has no body (status: 200 sends one)")
        return False
    if body is None or isinstance(body, str):
        return True
    problem = json_problem(body)
    if problem is not None:
        report(("body",), f"cannot be sent as JSON: {problem}")
    return problem is None


def json_problem(value: Any) -> str | None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
