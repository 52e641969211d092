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
import itertools
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from . import decoders
from .decoders import Decoded, Error, Heard, KeepAlive, Raw, Text, ToolStart
from .formats import RequestError, Route, WireFormat, serving
from .scenario import split_tokens

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
#: A body cut across reads more than this far apart was a stall (``mid_event``), else a split.
MID_EVENT_PAUSE = 0.05
#: Times are kept to a tenth of a millisecond (the replay's clock ticks in milliseconds).
DIGITS = 4


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
    #: eof (the body ended cleanly), fin (the connection closed before it did), reset, or
    #: abandoned (the client left first).
    ending: str = "eof"

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.response_headers if k.lower() == name), None)


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
    match = _match(fmt, route, body, redactor) if fmt is not None else None
    if match:
        data["match"] = match
    headers = _headers(exchange, keep_headers, redactor)
    if exchange.status >= 300 or exchange.status < 200:
        data.update(_status(exchange, headers, exact, redactor))
    elif fmt is None or fmt.name not in decoders.DECODERS:
        data.update(_transcript(exchange, headers, redactor))
        if not exact:
            notes.append("recorded as a transcript: mockllm reads no stream of this route back")
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
    if cut_short(exchange):
        data["incomplete"] = True
        notes.append(
            "incomplete: the client left before the response ended; replay holds the stream open there"
        )
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
    if exchange.ending != "abandoned":
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


def _kept(name: str, keep: Sequence[str]) -> bool:
    lower = name.lower()
    if lower in SECRET_HEADERS or lower in _OWN_HEADERS:
        return False
    for pattern in (*KEPT_HEADERS, *(k.lower() for k in keep)):
        if lower == pattern or (pattern.endswith("*") and lower.startswith(pattern[:-1])):
            return True
    return False


def _headers(exchange: Exchange, keep: Sequence[str], redactor: Redactor) -> dict[str, str]:
    """The response headers a recording keeps, Content-Type included (callers place it)."""
    return {
        str(name): redactor.text(str(value)) for name, value in exchange.response_headers if _kept(name, keep)
    }


def _seconds(value: float) -> float:
    return round(max(value, 0.0), DIGITS)


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
        data["first_byte"] = _seconds(exchange.first_byte)
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
        data["first_byte"] = _seconds(exchange.first_byte)
    reads = redactor.reads(exchange.reads)
    previous = 0.0
    items = []
    for time, chunk in reads:
        items.append(
            Flow(
                {
                    "after": _seconds(round(time, DIGITS) - round(previous, DIGITS)),
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
    if exchange.ending == "abandoned" and cut_short(exchange):
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
        data["first_byte"] = _seconds(exchange.first_byte)
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
                _tool({"name": n, "id": i, "fragments": [redactor.text(a)]}, single=True)
                for n, a, i in whole.tool_calls
            ]
        data["finish_reason"] = whole.finish_reason
        end = exchange.reads[-1][0] if exchange.reads else 0.0
        data["first_byte"] = _seconds(exchange.first_byte + end)
        _usage(whole.usage, notes)
        return data
    decoded = decode_stream(exchange.reads)
    if content_type != fmt.content_type:
        decoded.wire["content_type"] = content_type or ""  # "": the upstream sent none
    framing = _framing(exchange)
    if framing is not None and exchange.ending == "eof":
        decoded.wire["framing"] = framing
    data.update(_stream(decoded, exchange, redactor))
    if decoded.wire:
        data["wire"] = Flow(decoded.wire)
    _usage(decoded.usage, notes)
    return data


def _usage(usage: Any, notes: list[str]) -> None:
    if usage:
        notes.append(f"usage as the upstream sent it (mockllm counts its own): {json.dumps(usage)}")


def _tool(call: dict[str, Any], *, single: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": call["name"]}
    if call.get("id"):
        out["id"] = call["id"]
    fragments = call["fragments"]
    arguments = "".join(fragments)
    # One rune per fragment (mockllm's own pace) or one whole fragment read as the text: as text.
    if single or list(split_tokens(arguments)) == fragments:
        out["arguments"] = arguments
    else:
        out["arguments"] = FlowList(fragments)
    return out


def _stream(decoded: Decoded, exchange: Exchange, redactor: Redactor) -> dict[str, Any]:
    data: dict[str, Any] = {}
    items = _redacted(decoded.items, redactor)
    texts: list[tuple[Heard, Text]] = []
    calls: dict[int, dict[str, Any]] = {}
    slots: dict[int, list[Heard]] = {}
    finish: Heard | None = None
    done = False
    error = False
    for heard in items:
        item = heard.item
        if error:
            break
        if isinstance(item, Text) and item.tool is None:
            texts.append((heard, item))
        elif isinstance(item, Text) and item.tool is not None:
            call = calls.setdefault(item.tool, {"name": "", "id": None, "fragments": [], "heard": []})
            call["fragments"].append(item.text)
            call["heard"].append(heard)
        elif isinstance(item, ToolStart):
            call = calls.setdefault(item.tool, {"name": "", "id": None, "fragments": [], "heard": []})
            call["name"], call["id"] = redactor.text(item.name), item.id
        elif isinstance(item, KeepAlive | Raw | Error):
            count = len(texts) + sum(len(c["fragments"]) for c in calls.values())
            slots.setdefault(count, []).append(heard)
            error = isinstance(item, Error)
        elif isinstance(item, decoders.Finish):
            finish = heard
        elif isinstance(item, decoders.Done):
            done = True
    # The stream's tokens in the timeline's order: the reply's, then each call's fragments.
    tokens: list[tuple[str, Heard]] = [(t.text, h) for h, t in texts]
    for index in sorted(calls):
        tokens += list(zip(calls[index]["fragments"], calls[index]["heard"], strict=True))
    words = [text for text, _ in tokens[: len(texts)]]
    reply = "".join(words)
    if words == list(split_tokens(reply)):
        data["reply"] = reply
    elif words == list(split_tokens(reply, "word")):
        data["reply"], data["tokens"] = reply, "word"
    else:
        data["reply"] = FlowList(words)
    if calls:
        data["tool_calls"] = [_tool(calls[i]) for i in sorted(calls)]
    if finish is not None:
        reason = finish.item.reason  # type: ignore[union-attr]
        if reason != ("tool_calls" if calls else "stop"):
            data["finish_reason"] = reason
    faults: list[dict[str, Any]] = []
    times: list[float] = []
    previous = 0.0
    for index, (_, heard) in enumerate(tokens):
        due, extra = _due(heard)
        delay, slot_faults = _slot(previous, due, slots.get(index, []))
        faults += [Flow({"at": index, **f}) for f in [*slot_faults, *extra]]
        times.append(delay)
        previous = heard.block.end if extra and "stall" in extra[0] else due
    end_items = slots.get(len(tokens), [])
    ended = finish.block.end if finish is not None else _last_time(exchange)
    delay, end_faults = _slot(previous, ended, end_items)
    faults += [Flow({"at": "end", **f}) for f in end_faults]
    if finish is None and not error:
        ending = _ending_fault(exchange, cut=bool(decoded.rest))
        if ending is None:
            if decoded.rest:
                faults.append(
                    Flow({"at": "end", "malformed": {"raw": Escaped(escape(redactor.data(decoded.rest)))}})
                )
            ending = {"disconnect": "truncate"}
        faults.append(Flow({"at": "end", **ending}))
    elif finish is not None and not done and exchange.ending == "abandoned":
        faults.append(Flow({"at": "end", "stall": "forever"}))
    elif finish is not None and not done:
        data["done"] = False
    timing: dict[str, Any] = {}
    if tokens:
        first, gaps = times[0], [*times[1:], delay]
        if not gaps[-1] and len(gaps) > 1:
            gaps.pop()  # no wait before the finish: say nothing of it
        if first:
            timing["first_token"] = first
        if any(gaps):
            timing["gaps"] = FlowList(gaps)
    elif delay:
        timing["first_token"] = delay
    if timing:
        data["timing"] = timing
    if faults:
        data["faults"] = faults
    return data


def _redacted(items: list[Heard], redactor: Redactor) -> list[Heard]:
    """The items with their texts redacted as the runs they make (the reply; each tool call's
    arguments): a token emptied by the redaction is dropped."""
    runs: dict[int | None, list[int]] = {}
    for position, heard in enumerate(items):
        if isinstance(heard.item, Text):
            runs.setdefault(heard.item.tool, []).append(position)
    out = list(items)
    for tool, positions in runs.items():
        texts = redactor.pieces([items[p].item.text for p in positions])  # type: ignore[union-attr]
        for position, text in zip(positions, texts, strict=True):
            out[position] = Heard(Text(text, tool), items[position].block)
    for position, heard in enumerate(out):
        if isinstance(heard.item, Error):
            item = heard.item
            out[position] = Heard(
                Error(redactor.text(item.message), item.type, item.code, item.event), heard.block
            )
        elif isinstance(heard.item, Raw):
            out[position] = Heard(Raw(redactor.data(heard.item.data)), heard.block)
    return [h for h in out if not (isinstance(h.item, Text) and not h.item.text)]


def _last_time(exchange: Exchange) -> float:
    return exchange.reads[-1][0] if exchange.reads else 0.0


def _due(heard: Heard) -> tuple[float, list[dict[str, Any]]]:
    """When a token's event is due, and the fault that cuts it when it came across reads."""
    block = heard.block
    if block.whole:
        return block.end, []
    if block.end - block.start > MID_EVENT_PAUSE:
        return block.start, [{"stall": _seconds(block.end - block.start), "mid_event": True}]
    return block.start, [{"split": {"byte": block.head}}]


def _slot(previous: float, due: float, items: list[Heard]) -> tuple[float, list[dict[str, Any]]]:
    """The delay and the faults that bring a stream from ``previous`` to ``due`` through the
    keep-alives, malformed lines and error heard between them, each at its time."""
    faults: list[dict[str, Any]] = []
    now = round(previous, DIGITS)

    def wait_until(time: float) -> None:
        nonlocal now
        time = round(time, DIGITS)
        if time - now >= 0.0005:
            faults.append({"stall": _seconds(time - now)})
            now = time

    position = 0
    while position < len(items):
        heard = items[position]
        item = heard.item
        if isinstance(item, KeepAlive):
            run = [heard]
            while position + len(run) < len(items) and items[position + len(run)].item == item:
                run.append(items[position + len(run)])
            until = items[position + len(run)].block.end if position + len(run) < len(items) else due
            times = [round(h.block.end, DIGITS) for h in run]
            start, every = _period(now, times, round(until, DIGITS))
            if every is not None:
                wait_until(start)
                keepalive = {"every": every, **({} if item.line is None else {"line": item.line})}
                faults.append({"stall": _seconds(round(until, DIGITS) - now), "keepalive": keepalive})
                now = round(until, DIGITS)
            else:
                more, now = _keepalives(now, times, item)
                faults += more
            position += len(run)
            continue
        wait_until(heard.block.end)
        if isinstance(item, Raw):
            faults.append({"malformed": {"raw": Escaped(escape(item.data))}})
        elif isinstance(item, Error):
            error: dict[str, Any] = {"message": item.message}
            if item.type is not None:
                error["type"] = item.type
            if item.code is not None:
                error["code"] = item.code
            if item.event is not None:
                error["event"] = item.event
            faults.append({"error_event": error})
            break
        position += 1
    else:
        wait_until(due)
    # The wait before the first fault is the slot's own delay (first_token or its gap).
    if faults and list(faults[0]) == ["stall"]:
        return faults[0]["stall"], faults[1:]
    return 0.0, faults


def _period(now: float, times: list[float], until: float) -> tuple[float, float | None]:
    """``(start, every)`` of one stall whose keep-alives beat at ``times`` and which lasts until
    ``until``: evenly spaced (within a millisecond), the first one interval after the start,
    the stream resuming within one more. ``every`` None: no such stall."""
    count = len(times)
    intervals = [round(b - a, DIGITS) for a, b in itertools.pairwise(times)]
    every = sum(intervals) / len(intervals) if intervals else round(times[0] - now, DIGITS)
    start = round(times[0] - every, DIGITS)
    if every <= 0 or start < now - 0.001 or any(abs(i - every) > 0.001 for i in intervals):
        return now, None
    start = max(start, now)
    length = until - start
    if not times[-1] < until <= start + (count + 1) * every + 0.002:
        return now, None
    # A beat falls at every multiple of ``every`` strictly inside the stall: no more than these.
    every = max(every, length / (count + 1))
    return start, math.ceil(every * 10**DIGITS) / 10**DIGITS


def _keepalives(now: float, times: list[float], item: KeepAlive) -> tuple[list[dict[str, Any]], float]:
    """Keep-alives at ``times`` after ``now``, one stall each, and the time they bring the
    stream to; one at the same moment as the one before it (no stall holds it) as its bytes."""
    keepalive: dict[str, Any] = {} if item.line is None else {"line": item.line}
    out: list[dict[str, Any]] = []
    for interval in [round(b - a, DIGITS) for a, b in zip([now, *times], times, strict=False)]:
        if interval >= 0.0003:
            every = _seconds(interval - 0.0001)
            out.append({"stall": _seconds(interval), "keepalive": {"every": every, **keepalive}})
        else:
            out.append({"malformed": {"raw": Escaped(escape(_keepalive_bytes(item)))}})
    return out, max(now, times[-1])


def _keepalive_bytes(item: KeepAlive) -> bytes:
    if item.line is None:
        return b'event: ping\ndata: {"type": "ping"}\n\n'
    return item.line.encode() + b"\n\n" if item.line else b"\n"


# -- YAML --------------------------------------------------------------------------------------------


class Flow(dict):  # type: ignore[type-arg]
    """A mapping written on one line (``{at: 3, stall: 0.5}``)."""


class FlowList(list):  # type: ignore[type-arg]
    """A list written on one line (``[0.031, 0.029]``)."""


class Escaped(str):
    """Text with ``malformed.raw``'s escapes, written double-quoted."""

    __slots__ = ()


def escape(data: bytes) -> str:
    r"""``data`` as text :func:`mockllm.faults.decode_raw` turns back into it: its UTF-8 as is, a
    backslash as ``\\``, each byte that is not UTF-8 as ``\xHH``."""
    out = []
    pos = 0
    while pos < len(data):
        try:
            text = data[pos:].decode("utf-8")
            out.append(text.replace("\\", "\\\\"))
            break
        except UnicodeDecodeError as exc:
            out.append(data[pos : pos + exc.start].decode("utf-8").replace("\\", "\\\\"))
            out.append("".join(f"\\x{b:02x}" for b in data[pos + exc.start : pos + exc.end]))
            pos += exc.end
    return "".join(out)


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    Flow, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v.items(), flow_style=True)
)
_Dumper.add_representer(
    FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)
_Dumper.add_representer(Escaped, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", str(v), style='"'))


def render(data: dict[str, Any], notes: Sequence[str]) -> str:
    """The scenario file: the notes as a comment, then the scenario."""
    header = "".join(f"# {line}\n" for line in notes)
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return header + body
