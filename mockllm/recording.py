"""One recorded exchange → one scenario, as readable YAML. Pure: no I/O, no clock.

An :class:`Exchange` is what the recorder saw: the request, the response's status and headers,
the reads of its body with their times, and how the body ended. :func:`scenario_of` says it in
the scenario language:

- ``match`` from the request (format, model, turn, whether it carries a tool result, the last
  user message), so a directory of recordings answers the same conversation;
- the reply as the tokens the upstream sent (one per content delta), its tool calls, finish
  reason, ``timing.first_token`` and ``timing.gaps``;
- what went wrong as faults: keep-alives as ``stall`` + ``keepalive`` at their times, a line the
  API would not send as ``malformed: {raw}``, an in-stream error as ``error_event``, an event cut
  across reads as ``split`` (or, after a pause, ``stall`` with ``mid_event``), the connection's
  end as ``disconnect``, a missing terminator as ``done: false``; an HTTP error as its ``status``,
  ``body`` and the headers that matter.

With ``exact`` (or for a format :mod:`mockllm.decoders` cannot read, or a stream the structured
form cannot say), the body is a ``transcript`` of its reads instead. Every text is passed through
the :class:`Redactor`; request headers are never written.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import decoders
from .decoders import Text
from .formats import RequestError, Route, WireFormat, serving
from .recorded_stream import DIGITS, seconds, stream_scenario, tool_call
from .redaction import REDACTED, Redactor, kept_header, public_url
from .yamlwriter import Escaped, Flow, escape, render

#: The body bytes one exchange keeps (an endless stream must not fill the recorder's memory).
MAX_RECORDED = 64 * 1024 * 1024


@dataclass
class Exchange:
    """What the recorder saw of one request. Times are seconds: ``first_byte`` from the request
    being forwarded to the response's headers, each read's time from those headers."""

    upstream: str
    method: str
    path: str
    when: str  # ISO 8601, UTC
    request_body: bytes = b""
    status: int = 0
    response_headers: Sequence[tuple[str, str]] = ()
    first_byte: float = 0.0
    reads: list[tuple[float, bytes]] = field(default_factory=list)
    #: eof (the body ended cleanly), fin (the connection closed before it did), reset,
    #: abandoned (the client left first) or stopped (the recorder was, with the exchange in flight).
    ending: str = "eof"
    #: Body bytes past :data:`MAX_RECORDED` that went to the client but not into ``reads``.
    dropped: int = 0
    kept: int = 0

    def keep(self, time: float, data: bytes) -> None:
        """Keep a read, unless the body kept is already :data:`MAX_RECORDED` bytes long."""
        if self.dropped or self.kept + len(data) > MAX_RECORDED:
            self.dropped += len(data)
        else:
            self.reads.append((time, data))
            self.kept += len(data)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.response_headers if k.lower() == name), None)


# -- the scenario ----------------------------------------------------------------------------------


def scenario_of(
    exchange: Exchange,
    name: str,
    *,
    exact: bool = False,
    redactor: Redactor | None = None,
    keep_headers: Sequence[str] = (),
) -> tuple[dict[str, Any], list[str]]:
    """The scenario of ``exchange`` and the notes for its file's header comment."""
    redactor = redactor or Redactor()
    served = serving(exchange.path)
    fmt, route = served if served is not None else (None, Route())
    notes = [
        f"Recorded by mockllm record at {exchange.when}",
        f"upstream: {public_url(exchange.upstream)}",
        f"route: {exchange.method} {exchange.path}" + (f" ({fmt.name})" if fmt else " (no mockllm format)"),
    ]
    data: dict[str, Any] = {"name": name}
    body, stream = _request(exchange.request_body)
    match = _match(fmt, route, body, redactor) if fmt is not None and exchange.request_body else None
    if match:
        data["match"] = match
    headers = _headers(exchange, keep_headers, redactor)
    if exchange.status >= 300 or exchange.status < 200:
        data.update(_status(exchange, headers, exact, redactor))
    elif fmt is None or fmt.name not in decoders.DECODERS:
        data.update(_transcript(exchange, headers, redactor))
        if not exact:
            notes.append("recorded as a transcript: mockllm reads no stream of this format back")
    elif exact and not _hidden_secret(exchange, fmt, redactor):
        data.update(_transcript(exchange, headers, redactor))
    else:
        if exact:
            notes.append("not recorded exactly: a secret ran across the stream's events (redacted here)")
        structured = _structured(exchange, fmt, stream, headers, redactor, notes)
        problem = _problem(structured) if structured is not None else "the body is not the API's"
        if problem is None:
            assert structured is not None
            data.update(structured)
        else:
            data.update(_transcript(exchange, headers, redactor))
            notes.append(f"recorded as a transcript: the structured form could not say it ({problem})")
    if exchange.dropped:
        data["incomplete"] = True
        notes.append(
            f"incomplete: the body was longer than a recording keeps ({MAX_RECORDED:,} bytes;"
            f" {exchange.dropped:,} more went to the client)"
        )
    elif cut_short(exchange):
        data["incomplete"] = True
        who = "the recorder was stopped" if exchange.ending == "stopped" else "the client left"
        notes.append(f"incomplete: {who} before the response ended; replay holds the stream open there")
    return data, notes


def _hidden_secret(exchange: Exchange, fmt: WireFormat, redactor: Redactor) -> bool:
    """Whether the text the stream carries holds a secret its bytes do not show in one piece
    (a key echoed one token per event): a transcript would keep it, event by event."""
    if exchange.status != 200:
        return False
    decoded = decoders.DECODERS[fmt.name][0](exchange.reads)
    texts: dict[int | None, list[str]] = {}
    for heard in decoded.items:
        if isinstance(heard.item, Text):
            texts.setdefault(heard.item.tool, []).append(heard.item.text)
    joined = b"".join(data for _, data in exchange.reads)
    pieces = ["".join(run) for run in texts.values()]
    return any(redactor.text(p) != p for p in pieces) and redactor.data(joined).count(
        REDACTED.encode()
    ) < sum(len(redactor.pattern.findall(p)) for p in pieces if redactor.pattern is not None)


def cut_short(exchange: Exchange) -> bool:
    """The client left before the response ended: before its end sentinel, where the format has
    one (a client that has read ``[DONE]`` may hang up before the body's own end)."""
    if exchange.ending not in ("abandoned", "stopped"):
        return False
    served = serving(exchange.path)
    if served is None or served[0].name not in decoders.DECODERS or exchange.status != 200:
        return True
    decoded = decoders.DECODERS[served[0].name][0](exchange.reads)
    return not any(isinstance(heard.item, decoders.Done) for heard in decoded.items)


def _problem(data: dict[str, Any]) -> str | None:
    """Why ``data`` would not load as a scenario (None: it does)."""
    from .loader import load_set

    problems = load_set([{"name": "check", **data}]).problems
    return str(problems[0]).split(": ", 1)[-1] if problems else None


def _request(raw: bytes) -> tuple[Any, bool]:
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        return None, False
    return body, bool(body.get("stream")) if isinstance(body, dict) else False


def _glob(text: str) -> str:
    """``text`` as an fnmatch pattern that matches only itself."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _match(fmt: WireFormat, route: Route, body: Any, redactor: Redactor) -> dict[str, Any]:
    match: dict[str, Any] = {"format": fmt.name}
    try:
        conversation = fmt.parse_request(body, route).conversation
    except (RequestError, TypeError, AttributeError, KeyError, ValueError):
        return match
    if conversation.model:
        match["model"] = _glob(redactor.text(conversation.model))
    match["turn"] = conversation.turn
    result = conversation.tool_result
    match["tool_result"] = False if result is None else _text_test(result, redactor)
    if conversation.last_user is not None:
        match["last_user"] = _text_test(conversation.last_user, redactor)
    return match


def _text_test(text: str, redactor: Redactor) -> dict[str, str]:
    """``equals`` the text, or (a secret was cut out of it) a regex that matches it whatever the
    secret was: the recording keeps matching the request without holding the secret."""
    redacted = redactor.text(text)
    if redacted == text:
        return {"equals": text}
    return {"regex": "^" + ".+".join(re.escape(part) for part in redacted.split(REDACTED)) + "$"}


def _headers(exchange: Exchange, keep: Sequence[str], redactor: Redactor) -> dict[str, str]:
    """The response headers a recording keeps, Content-Type included (callers place it)."""
    return {
        str(name): redactor.text(str(value))
        for name, value in exchange.response_headers
        if kept_header(name, keep)
    }


def _status(exchange: Exchange, headers: dict[str, str], exact: bool, redactor: Redactor) -> dict[str, Any]:
    """An HTTP error (or a 1xx/3xx): its status, headers and body, after its first byte's wait."""
    data: dict[str, Any] = {"reply": "", "status": exchange.status}
    text = redactor.data(b"".join(d for _, d in exchange.reads)).decode("utf-8", "replace")
    body: Any = text
    content_type = headers.pop("Content-Type", headers.pop("content-type", None))
    if not exact:
        with contextlib.suppress(ValueError):
            body = json.loads(text)
    if isinstance(body, str) and content_type:
        headers["Content-Type"] = content_type  # a text body keeps its type; JSON gets application/json
    if headers:
        data["headers"] = headers
    if text:
        data["body"] = body
    if exchange.first_byte >= 0.001:
        data["first_byte"] = seconds(exchange.first_byte)
    return data


def _framing(exchange: Exchange) -> str | None:
    if "chunked" in (exchange.header("transfer-encoding") or "").lower():
        return None
    if exchange.header("content-length") is not None:
        return "content-length"
    return "close-delimited"


def _transcript(exchange: Exchange, headers: dict[str, str], redactor: Redactor) -> dict[str, Any]:
    data: dict[str, Any] = {}
    content_type = headers.pop("Content-Type", headers.pop("content-type", ""))
    wire: dict[str, Any] = {"content_type": content_type}
    framing = _framing(exchange)
    if framing is not None and not (framing == "content-length" and exchange.ending != "eof"):
        wire["framing"] = framing
    if headers:
        data["headers"] = headers
    if exchange.first_byte >= 0.001:
        data["first_byte"] = seconds(exchange.first_byte)
    reads = redactor.reads(exchange.reads)
    previous = 0.0
    items = []
    for time, chunk in reads:
        items.append(
            Flow(
                {
                    "after": seconds(round(time, DIGITS) - round(previous, DIGITS)),
                    "bytes": Escaped(escape(chunk)),
                }
            )
        )
        previous = time
    data["transcript"] = items or [Flow({"after": 0.0, "bytes": Escaped("")})]
    data["wire"] = Flow(wire)
    ending = _ending_fault(exchange, cut=False)
    if ending is not None:
        data["faults"] = [Flow({"at": "end", **ending})]
    return data


def _ending_fault(exchange: Exchange, *, cut: bool) -> dict[str, Any] | None:
    """How the connection ended, as the fault that ends a stream so (None: cleanly)."""
    if exchange.ending == "reset":
        return {"disconnect": "reset"}
    if exchange.ending == "fin":
        return {"disconnect": "mid-event" if cut else "fin"}
    if exchange.ending in ("abandoned", "stopped") and cut_short(exchange):
        return {"stall": "forever"}  # as the client saw it: it left while waiting
    return None


# -- the structured form ---------------------------------------------------------------------------


def _structured(
    exchange: Exchange,
    fmt: WireFormat,
    stream: bool,
    headers: dict[str, str],
    redactor: Redactor,
    notes: list[str],
) -> dict[str, Any] | None:
    decode_stream, decode_whole = decoders.DECODERS[fmt.name]
    content_type = headers.pop("Content-Type", headers.pop("content-type", None))
    data: dict[str, Any] = {}
    if headers:
        data["headers"] = headers
    if exchange.first_byte >= 0.001:
        data["first_byte"] = seconds(exchange.first_byte)
    if not stream and "event-stream" not in (content_type or "") and "ndjson" not in (content_type or ""):
        body = b"".join(d for _, d in exchange.reads)
        try:
            whole = decode_whole(json.loads(body))
        except ValueError:
            whole = None
        if whole is None or exchange.ending != "eof":
            return None
        reply = redactor.text(whole.text)
        data["reply"] = reply
        if whole.tool_calls:
            data["tool_calls"] = [
                tool_call({"name": n, "id": i, "fragments": [redactor.text(a)]}, single=True)
                for n, a, i in whole.tool_calls
            ]
        data["finish_reason"] = whole.finish_reason
        end = exchange.reads[-1][0] if exchange.reads else 0.0
        data["first_byte"] = seconds(exchange.first_byte + end)
        _usage(whole.usage, data)
        return data
    decoded = decode_stream(exchange.reads)
    if content_type != fmt.content_type:
        decoded.wire["content_type"] = content_type or ""  # "": the upstream sent none
    framing = _framing(exchange)
    if framing is not None and exchange.ending == "eof":
        decoded.wire["framing"] = framing
    ending = _ending_fault(exchange, cut=False)
    end = exchange.reads[-1][0] if exchange.reads else 0.0
    data.update(stream_scenario(decoded, ending, end, redactor))
    if decoded.wire:
        data["wire"] = Flow(decoded.wire)
    _usage(decoded.usage, data)
    return data


#: Each API's names for the prompt's and the reply's token counts (OpenAI's chat and completions,
#: Anthropic's and Responses', Ollama's), as a scenario's ``usage`` names them.
USAGE_NAMES = {
    "prompt_tokens": ("prompt_tokens", "input_tokens", "prompt_eval_count"),
    "completion_tokens": ("completion_tokens", "output_tokens", "eval_count"),
}


def _usage(usage: Any, data: dict[str, Any]) -> None:
    """The upstream's counts as the scenario's ``usage``, so a replay reports what it reported."""
    if not isinstance(usage, dict):
        return
    counts: dict[str, int] = {}
    for key, names in USAGE_NAMES.items():
        found = next((usage[n] for n in names if type(usage.get(n)) is int and usage[n] >= 0), None)
        if found is not None:
            counts[key] = found
    if counts:
        data["usage"] = Flow(counts)


def imported(
    reads: list[tuple[float, bytes]], fmt: WireFormat, name: str, *, source: str, ending: str = "eof"
) -> str:
    """The scenario file of a captured response body in ``fmt``'s stream format (``mockllm
    import``): its reads, timed if the capture was (a transcript), else all at once."""
    exchange = Exchange(
        upstream="",
        method="POST",
        path=fmt.all_routes()[0],
        when="",
        status=200,
        response_headers=[("Content-Type", fmt.content_type), ("Transfer-Encoding", "chunked")],
        reads=reads,
        ending=ending,
    )
    data, notes = scenario_of(exchange, name)
    notes[:3] = [f"Imported by mockllm import from {source} ({fmt.name})"]
    if len(reads) < 2:
        notes.append("the capture has no times: every token at once (edit timing to pace it)")
    return render(data, notes)
