"""What a recording may keep: every text passed through the :class:`Redactor` (API-key shapes
and ``--redact`` patterns), response headers from an allow-list, never a credential header, and
the upstream's URL without its user, password or query."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: API-key shapes: ``sk-`` and a hyphenated prefix or none (``sk-proj-…``, ``sk-ant-api03-…``).
DEFAULT_REDACT = r"sk-[A-Za-z0-9][A-Za-z0-9_\-]{6,}"
REDACTED = "[REDACTED]"
#: Response headers a recording keeps (lower case; ``*`` a prefix): the content type, the rate
#: limits, the retry hints and the request id. ``--keep-header`` adds to them.
KEPT_HEADERS = (
    "content-type",
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-*",
    "anthropic-ratelimit-*",
    "ratelimit-*",
    "x-request-id",
    "request-id",
)
#: Never written, whatever --keep-header says.
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "cookie", "set-cookie", "proxy-authorization"}
)
#: Headers mockllm writes itself or that frame the body (a scenario may not set them).
_OWN_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "x-mockllm-scenario", "cache-control", "date", "server"}
)


class Redactor:
    """Replaces what the patterns match (the default catches API keys) in every recorded text."""

    def __init__(self, patterns: Iterable[str] = (), *, default: bool = True) -> None:
        sources = [*([DEFAULT_REDACT] if default else []), *patterns]
        self.pattern = re.compile("|".join(f"(?:{p})" for p in sources)) if sources else None
        self.bytes_pattern = re.compile(self.pattern.pattern.encode()) if self.pattern is not None else None

    def text(self, text: str) -> str:
        return self.pattern.sub(REDACTED, text) if self.pattern is not None else text

    def data(self, data: bytes) -> bytes:
        return self.bytes_pattern.sub(REDACTED.encode(), data) if self.bytes_pattern is not None else data

    def value(self, value: Any) -> Any:
        """Every string in a JSON value redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        return value

    def pieces(self, pieces: Sequence[str]) -> list[str]:
        """``pieces`` (tokens, or reads) redacted as the text they make together: a match across
        pieces is replaced in the first, and the others lose their part of it (maybe all)."""
        if self.pattern is None:
            return list(pieces)
        joined = "".join(pieces)
        spans = [m.span() for m in self.pattern.finditer(joined)]
        if not spans:
            return list(pieces)
        out, pos = [], 0
        for piece in pieces:
            start, end = pos, pos + len(piece)
            text = []
            for index in range(start, end):
                span = next((s for s in spans if s[0] <= index < s[1]), None)
                if span is None:
                    text.append(joined[index])
                elif index == span[0]:
                    text.append(REDACTED)
            out.append("".join(text))
            pos = end
        return out

    def reads(self, reads: Sequence[tuple[float, bytes]]) -> list[tuple[float, bytes]]:
        """Reads redacted as the bytes they make together (their count and times kept)."""
        texts = self.pieces([data.decode("latin-1") for _, data in reads])  # one char per byte
        return [(time, text.encode("latin-1")) for (time, _), text in zip(reads, texts, strict=True)]


def public_url(url: str) -> str:
    """``url`` without credentials: no user or password, no query (Gemini puts keys there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def kept_header(name: str, keep: Sequence[str]) -> bool:
    lower = name.lower()
    if lower in SECRET_HEADERS or lower in _OWN_HEADERS:
        return False
    for pattern in (*KEPT_HEADERS, *(k.lower() for k in keep)):
        if lower == pattern or (pattern.endswith("*") and lower.startswith(pattern[:-1])):
            return True
    return False
