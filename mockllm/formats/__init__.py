"""Wire formats, registered by name: one module per API.

A wire format owns everything that differs between APIs and nothing else: how its request is read,
how a stream's events become bytes (:class:`StreamEncoder`), the non-streaming body, and its error
shape. The timeline and the faults never change when a format is added.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..conversation import Conversation
from ..events import Event
from ..scenario import Scenario, ToolCall


class StreamEncoder(Protocol):
    """Turns the neutral events of one stream into bytes. Pure: no I/O, no clock."""

    def encode(self, event: Event) -> bytes: ...

    @property
    def last_id(self) -> int:
        """The ``id:`` of the last event framed (0 without event ids)."""
        ...

    def continue_after(self, last_id: int) -> None:
        """Number the next event ``last_id + 1`` (a resumed EventSource stream)."""
        ...


class RequestError(Exception):
    """A request the API would refuse; rendered in the format's own error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type


@dataclass(frozen=True)
class Route:
    """Where a request came in, beyond its body: the values of the route's ``{placeholders}``
    (a model or deployment named in the path), the query string (first value of each) and the
    path itself (one format's routes may differ only in a verb, e.g. Gemini's ``:generateContent``
    and ``:streamGenerateContent``)."""

    params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    path: str = ""


#: The route of a request that came in on a path without placeholders or query.
NO_ROUTE = Route()


@dataclass(frozen=True)
class ApiRequest:
    """What a format read from a request body: the :class:`~mockllm.conversation.Conversation`
    that matching and the call log read, and what only the format's encoder needs."""

    model: str
    stream: bool
    prompt_tokens: int
    options: dict[str, Any] = field(default_factory=dict)
    conversation: Conversation = field(default_factory=lambda: Conversation(""))

    @classmethod
    def of(cls, conversation: Conversation, **options: Any) -> ApiRequest:
        """The request a parser read as ``conversation``, its tokens counted by the one rule."""
        return cls(
            model=conversation.model,
            stream=conversation.stream,
            prompt_tokens=conversation.prompt_tokens,
            options=options,
            conversation=conversation,
        )


@dataclass(frozen=True)
class StreamContext:
    """Per-response values that stay the same across a stream (id, creation time, model)."""

    id: str
    created: int
    model: str


@dataclass(frozen=True)
class WholeReply:
    """What a non-streaming response says: the text and tool calls sent before the end."""

    text: str
    finish_reason: str
    completion_tokens: int
    tool_calls: tuple[ToolCall, ...] = ()
    #: (category, severity) when a content filter stopped the reply
    filtered: tuple[str, str] | None = None
    #: Seconds from the request to the reply, as the timeline scheduled them.
    duration: float = 0.0


class WireFormat:
    """One API's wire format. Subclasses set the attributes and implement the methods that raise
    here; the others have the defaults most APIs share."""

    name: str
    #: What the API is called in docs (the OpenAPI document's summaries).
    title: str = ""
    #: The path the format answers on as the docs show it, e.g. ``/v1/chat/completions`` or
    #: ``/v1beta/models/{model}:streamGenerateContent``.
    path: str
    #: Every route (aiohttp pattern, ``{name}`` a path segment) the format's completion handler
    #: answers ``POST`` on; by default just :attr:`path`.
    routes: tuple[str, ...] = ()
    #: The paths whose errors (even a 404, 405 or 413 aiohttp raises before any handler) and API
    #: key check are this API's: the longest prefix that matches a path wins (:func:`format_for`).
    prefixes: tuple[str, ...] = ()
    #: Content-Type of a stream in this format.
    content_type: str
    #: Response ids are this prefix and a serial number, e.g. ``chatcmpl-mockllm-1``.
    id_prefix: str
    #: Whose wording and rate-limit headers the quotas and the context window use
    #: (:mod:`mockllm.quotas`): ``openai``, ``anthropic`` or ``gemini``.
    style: str = "openai"
    #: Endpoints beside the completion one that answer from the body alone, no scenario
    #: (e.g. a token count): route pattern → function of (body, route) to the JSON response,
    #: which may raise :class:`RequestError`.
    utilities: Mapping[str, Callable[[Any, Route], dict[str, Any]]] = {}

    def all_routes(self) -> tuple[str, ...]:
        return self.routes or (self.path,)

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        raise NotImplementedError

    def stream_encoder(
        self, scenario: Scenario, request: ApiRequest, context: StreamContext
    ) -> StreamEncoder:
        raise NotImplementedError

    def stream_content_type(self, request: ApiRequest) -> str:
        """The Content-Type of a stream answering ``request`` (one format may have two framings)."""
        return self.content_type

    def response_body(self, request: ApiRequest, context: StreamContext, reply: WholeReply) -> dict[str, Any]:
        raise NotImplementedError

    def error_body(
        self, status: int, message: str, *, type: str, param: str | None, code: str | int | None
    ) -> dict[str, Any]:
        raise NotImplementedError

    def default_error(self, status: int) -> tuple[str, str, str | None]:
        """(message, type, code) of this API's own error for an HTTP status."""
        raise NotImplementedError

    def stream_headers(self, request: ApiRequest) -> dict[str, str]:
        """Headers a stream answering ``request`` carries (before the scenario's own, which win)."""
        return {}

    def error_headers(self, status: int, type: str) -> dict[str, str]:
        """Headers an error response carries beside its body (Bedrock's ``x-amzn-ErrorType``)."""
        return {}

    def with_retry_delay(self, body: dict[str, Any], seconds: float) -> dict[str, Any]:
        """A 429 ``body`` saying the client may retry in ``seconds`` (the ``Retry-After``), for
        APIs that say it in the body too (Google's ``RetryInfo``); by default ``body`` as is."""
        return body

    def offered_keys(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Iterable[str]:
        """The API keys a request carries as this API's clients send them, for ``--api-key``:
        ``Authorization: Bearer KEY`` or ``x-api-key: KEY``."""
        scheme, _, bearer = headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            yield bearer.strip()
        yield headers.get("x-api-key", "")


FORMATS: dict[str, WireFormat] = {}


def register(fmt: WireFormat) -> WireFormat:
    FORMATS[fmt.name] = fmt
    _owners.clear()
    return fmt


def format_for(path: str) -> WireFormat:
    """The wire format that owns ``path``: the one served there, else the one with the longest
    of its :attr:`WireFormat.prefixes` matching it, else OpenAI chat (the shape most clients
    understand)."""
    owner = _owners.get(path)
    if owner is None:
        served = serving(path)
        if served is not None:
            owner = served[0]
        else:
            matching = [(len(p), fmt) for fmt in FORMATS.values() for p in fmt.prefixes if path.startswith(p)]
            owner = max(matching, key=lambda m: m[0])[1] if matching else FORMATS["openai-chat"]
        if len(_owners) < 1024:  # paths come from clients: keep only so many
            _owners[path] = owner
    return owner


def serving(path: str) -> tuple[WireFormat, Route] | None:
    """The format whose completion handler answers on ``path`` and the route values read from it,
    matched as aiohttp's router matches (``{name}``: one path segment)."""
    for fmt in FORMATS.values():
        for pattern in fmt.all_routes():
            found = _route_regex(pattern).fullmatch(path)
            if found:
                return fmt, Route(found.groupdict(), path=path)
    return None


def _route_regex(pattern: str) -> re.Pattern[str]:
    if pattern not in _regexes:
        parts = re.split(r"\{(\w+)\}", pattern)  # literal, name, literal, name, ...
        regex = "".join(
            f"(?P<{part}>[^{{}}/]+)" if i % 2 else re.escape(part) for i, part in enumerate(parts)
        )
        _regexes[pattern] = re.compile(regex)
    return _regexes[pattern]


_regexes: dict[str, re.Pattern[str]] = {}


_owners: dict[str, WireFormat] = {}


def tool_call_id(prefix: str, index: int) -> str:
    """The id of a tool call whose scenario gives none, in a format's own style."""
    return f"{prefix}_mockllm_{index}"


# Each module registers itself (in import order, which the linter keeps alphabetical).
from . import anthropic as _anthropic  # noqa: E402
from . import azure as _azure  # noqa: E402
from . import bedrock as _bedrock  # noqa: E402
from . import embeddings as _embeddings  # noqa: E402
from . import gemini as _gemini  # noqa: E402
from . import ollama as _ollama  # noqa: E402
from . import openai_chat as _openai_chat  # noqa: E402
from . import openai_completions as _openai_completions  # noqa: E402
from . import openai_responses as _openai_responses  # noqa: E402

__all__ = [
    "FORMATS",
    "NO_ROUTE",
    "ApiRequest",
    "RequestError",
    "Route",
    "StreamContext",
    "StreamEncoder",
    "WholeReply",
    "WireFormat",
    "format_for",
    "register",
    "serving",
    "tool_call_id",
]
del (
    _anthropic,
    _azure,
    _bedrock,
    _embeddings,
    _gemini,
    _ollama,
    _openai_chat,
    _openai_completions,
    _openai_responses,
)
