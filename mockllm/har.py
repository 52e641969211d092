"""A HAR file (HTTP Archive 1.2, what browsers' developer tools and proxies such as mitmproxy
export) → the :class:`~mockllm.recording.Exchange` of each entry, for ``mockllm import``. Pure: no
I/O.

An entry gives the whole exchange: the request (so the scenario gets its ``match``), the status,
the response headers and body, and ``timings.wait``, the time to the first byte. It has no time
per read: the body is one read at the first byte, so a HAR keeps ``first_byte`` but no gaps.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .errors import MockLLMError
from .recording import Exchange


class HarError(MockLLMError):
    """The file is not a HAR this module can read; the message says where."""


def exchanges(har: Any) -> list[Exchange]:
    """Every entry of ``har`` (a parsed HAR document), in the file's order."""
    log = har.get("log") if isinstance(har, Mapping) else None
    entries = log.get("entries") if isinstance(log, Mapping) else None
    if not isinstance(entries, list):
        raise HarError("not a HAR file: no log.entries list")
    return [_exchange(entry, f"log.entries[{index}]") for index, entry in enumerate(entries)]


def _exchange(entry: Any, where: str) -> Exchange:
    request = _object(entry, "request", where)
    response = _object(entry, "response", where)
    url = request.get("url")
    if not isinstance(url, str) or not urlsplit(url).scheme:
        raise HarError(f"{where}.request.url: not a URL")
    parts = urlsplit(url)
    body = _text(_part(response, "content", {}), f"{where}.response.content")
    status = response.get("status")
    if not isinstance(status, int) or isinstance(status, bool):
        raise HarError(f"{where}.response.status: not a number")
    post: Mapping[str, Any] = _part(request, "postData", {})
    wait = _part(entry, "timings", {}).get("wait")
    headers: list[Any] = _part(response, "headers", [])
    return Exchange(
        upstream=f"{parts.scheme}://{parts.netloc}",
        method=str(request.get("method", "POST")).upper(),
        path=parts.path or "/",
        when=str(entry.get("startedDateTime", "")),
        request_body=str(post.get("text", "")).encode(),
        status=status,
        response_headers=[
            (str(h["name"]), str(h["value"])) for h in headers if isinstance(h, Mapping) and "name" in h
        ],
        first_byte=max(wait, 0) / 1000 if isinstance(wait, int | float) else 0.0,  # -1: not known
        reads=[(0.0, body)] if body else [],
    )


def _part(parent: Mapping[str, Any], key: str, default: Any) -> Any:
    """``parent[key]`` if it is of ``default``'s type, else ``default`` (HAR's optional parts)."""
    value = parent.get(key)
    return value if isinstance(value, type(default)) else default


def _object(entry: Any, key: str, where: str) -> Mapping[str, Any]:
    value = entry.get(key) if isinstance(entry, Mapping) else None
    if not isinstance(value, Mapping):
        raise HarError(f"{where}.{key}: missing or not an object")
    return value


def _text(content: Mapping[str, Any], where: str) -> bytes:
    text = content.get("text", "")
    if not isinstance(text, str):
        raise HarError(f"{where}.text: not a string")
    if content.get("encoding") == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            raise HarError(f"{where}.text: not base64, though encoding says so") from None
    return text.encode()
