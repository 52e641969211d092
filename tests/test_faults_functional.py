"""Faults proven at the socket: the exact bytes, the write boundaries, FIN versus RST, the timing."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import httpx_sse
import openai
import pytest

from mockllm import MockLLMServer, ScenarioError, scenario_from_dict

from . import rawhttp
from .conftest import Serve

pytestmark = pytest.mark.functional


#: The real API's first chunk, sent with the first token: the role, no text.
ROLE = b'"delta":{"role":"assistant","content":"","refusal":null}'


def events_of(payload: bytes, eol: bytes = b"\n") -> list[bytes]:
    """The events of a stream, without the role chunk that opens it (checked to be there first)."""
    events = [e for e in payload.split(eol + eol) if e]
    if events and ROLE in events[0]:
        return events[1:]
    return events


def content_of(event: bytes) -> str:
    assert event.startswith(b"data: ")
    return json.loads(event[6:])["choices"][0]["delta"].get("content", "")  # type: ignore[no-any-return]


def url(server: MockLLMServer) -> str:
    return f"{server.openai_base_url}/chat/completions"


# -- disconnect --------------------------------------------------------------------------------


def test_truncate_ends_the_chunked_body_cleanly_without_finish_or_done(serve: Serve) -> None:
    server = serve({"reply": "abcdef", "faults": [{"at": 3, "disconnect": "truncate"}]})
    response = rawhttp.post(url(server), rawhttp.stream_body())
    _chunks, terminated = response.chunks()
    assert terminated, "truncate must send the terminating zero chunk"
    assert response.ending == "fin"
    events = events_of(response.payload)
    assert [content_of(e) for e in events] == ["a", "b", "c"]
    assert b'finish_reason":"stop' not in response.payload
    assert b"[DONE]" not in response.payload


def test_fin_closes_without_the_terminating_chunk(serve: Serve) -> None:
    server = serve({"reply": "abcdef", "faults": [{"at": 3, "disconnect": "fin"}]})
    response = rawhttp.post(url(server), rawhttp.stream_body())
    _, terminated = response.chunks()
    assert not terminated
    assert response.ending == "fin"
    assert [content_of(e) for e in events_of(response.payload)] == ["a", "b", "c"]


def test_reset_is_a_tcp_rst_after_the_earlier_tokens(serve: Serve) -> None:
    server = serve(
        {"reply": "abcdef", "timing": {"per_token": "20ms"}, "faults": [{"at": 3, "disconnect": "reset"}]}
    )
    response = rawhttp.post(url(server), rawhttp.stream_body())
    assert response.ending == "reset"  # the reader saw ConnectionResetError
    _, terminated = response.chunks()
    assert not terminated
    assert [content_of(e) for e in events_of(response.payload)] == ["a", "b", "c"]


def test_mid_event_writes_half_the_next_event_then_fin(serve: Serve) -> None:
    server = serve({"reply": "abcdef", "faults": [{"at": 3, "disconnect": "mid-event"}]})
    response = rawhttp.post(url(server), rawhttp.stream_body())
    assert response.ending == "fin"
    _, terminated = response.chunks()
    assert not terminated
    complete = rawhttp.post(url(serve({"reply": "abcdef"})), rawhttp.stream_body())
    next_event = events_of(complete.payload)[3] + b"\n\n"
    tail = response.payload.split(b"\n\n")[-1]
    assert tail == next_event[: len(next_event) // 2]
    assert not tail.endswith(b"\n")


# -- split ---------------------------------------------------------------------------------------


def test_split_cuts_a_character_across_two_writes_and_two_reads(serve: Serve) -> None:
    server = serve({"reply": "a日b", "timing": {"per_token": "50ms"}, "faults": [{"at": 1, "split": "utf8"}]})
    response = rawhttp.post(url(server), rawhttp.stream_body())
    chunks, terminated = response.chunks()
    assert terminated
    head = next(c for c in chunks if c.endswith(b"\xe6"))  # 日 is E6 97 A5
    tail = chunks[chunks.index(head) + 1]
    assert tail.startswith(b"\x97\xa5")
    assert head.startswith(b"data: ")
    assert tail.endswith(b"\n\n")
    assert content_of(head + tail) == "日"
    # the two writes arrived in different reads, at least the split gap apart
    times = []
    for at, data in response.reads:
        if b"\xe6\r\n" in data:
            times.append(at)
        if data.startswith(b"\x97\xa5") or b"\r\n\x97\xa5" in data:
            times.append(at)
    assert len(times) == 2, response.reads
    assert times[1] - times[0] >= 0.015


@pytest.mark.parametrize(
    ("byte", "head_ends", "tail"),
    [
        (-1, b"}\r\n\r", b"\n"),  # between the CR and the LF of the closing blank line
        (3, b"dat", b"a: {"),  # inside the field name
    ],
)
def test_split_at_a_byte_of_the_event(serve: Serve, byte: int, head_ends: bytes, tail: bytes) -> None:
    scenario = {
        "reply": "abc",
        "timing": {"per_token": "50ms"},
        "wire": {"line_ending": "crlf"},
        "faults": [{"at": 1, "split": {"byte": byte}}],
    }
    server = serve(scenario)
    chunks, _ = rawhttp.post(url(server), rawhttp.stream_body()).chunks()
    (cut,) = [index for index, chunk in enumerate(chunks) if chunk.endswith(head_ends)]
    assert chunks[cut + 1].startswith(tail)
    assert b'"content":"b"' in chunks[cut] + chunks[cut + 1]
    # Both real clients read every event whole across the cut.
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
    messages: Any = [{"role": "user", "content": "hi"}]
    chunks_seen = list(client.chat.completions.create(model="m", messages=messages, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks_seen if c.choices) == "abc"
    with (
        httpx.Client() as http,
        httpx_sse.connect_sse(http, "POST", url(server), json=rawhttp.stream_body()) as source,
    ):
        assert len(list(source.iter_sse())) == 1 + 3 + 2  # the role chunk, a b c, finish, [DONE]


def test_split_byte_0_and_other_values_are_refused() -> None:
    with pytest.raises(ScenarioError, match=r"split.byte: must not be 0"):
        scenario_from_dict({"reply": "ab", "faults": [{"at": 1, "split": {"byte": 0}}]})
    with pytest.raises(
        ScenarioError,
        match=r"faults\[0\].split: must be utf8 or \{byte: N\} \(with an optional gap\), not 'half'",
    ):
        scenario_from_dict({"reply": "ab", "faults": [{"at": 1, "split": "half"}]})


# -- stalls and keep-alives -------------------------------------------------------------------------


def test_stall_forever_at_zero_sends_headers_then_nothing(serve: Serve) -> None:
    server = serve({"reply": "abc", "faults": [{"at": 0, "stall": "forever"}]})
    response = rawhttp.post(url(server), rawhttp.stream_body(), timeout=0.5)
    assert response.ending == "timeout"
    assert response.status == 200
    assert response.body == b""  # headers only: not even a chunk


def test_stall_keepalives_arrive_on_schedule(serve: Serve) -> None:
    server = serve(
        {
            "reply": "ab",
            "faults": [{"at": 1, "stall": "1s", "keepalive": {"every": "300ms", "line": ": ping"}}],
        }
    )
    response = rawhttp.post(url(server), rawhttp.stream_body())
    chunks, _ = response.chunks()
    assert chunks[1:4] == [b": ping\n\n"] * 3
    pings = [at for at, data in response.reads if b": ping" in data]
    second = next(at for at, data in response.reads if b'"content":"b"' in data)
    assert len(pings) == 3
    # generous bounds: at 0.3, 0.6, 0.9 s and the next token at 1.0 s after the first
    first = response.reads[0][0]
    for beat, at in enumerate(pings, start=1):
        assert 0.3 * beat - 0.05 <= at - first <= 0.3 * beat + 0.25
    assert 0.95 <= second - first <= 1.5


@pytest.mark.parametrize(
    ("line", "expected"), [(": ping", b": ping\n\n"), ("", b"\n"), ("data: ", b"data: \n\n")]
)
def test_keepalive_line_forms(serve: Serve, line: str, expected: bytes) -> None:
    server = serve(
        {
            "reply": "ab",
            "faults": [{"at": 1, "stall": "250ms", "keepalive": {"every": "100ms", "line": line}}],
        }
    )
    chunks, _ = rawhttp.post(url(server), rawhttp.stream_body()).chunks()
    assert chunks[1:3] == [expected, expected]
    assert b'"content":"b"' in chunks[3]


def test_stall_with_mid_event_leaves_an_unterminated_line(serve: Serve) -> None:
    server = serve({"reply": "abc", "faults": [{"at": 1, "stall": "forever", "mid_event": True}]})
    response = rawhttp.post(url(server), rawhttp.stream_body(), timeout=0.5)
    assert response.ending == "timeout"
    chunks, _ = response.chunks()
    assert len(chunks) == 2
    assert [content_of(e) for e in events_of(chunks[0])] == ["a"]  # after the role chunk
    assert chunks[1].startswith(b"data: {")
    assert b"\n" not in chunks[1]


def test_read_timeout_fires_on_stall_forever_in_the_sdk(serve: Serve) -> None:
    server = serve({"reply": "abc", "faults": [{"at": 2, "stall": "forever"}]})
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="x", max_retries=0, timeout=0.5)
    text = ""
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        for chunk in client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True
        ):  # type: ignore[arg-type]
            text += chunk.choices[0].delta.content or ""
    assert text == "ab"
    assert time.monotonic() - started < 5


# -- malformed lines: exact bytes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("not-json", lambda line, real: line == b"data: hello"),
        ("missing-prefix", lambda line, real: line == real[len(b"data: ") :]),
        ("truncated-json", lambda line, real: line == real[: len(b"data: ") + (len(real) - 6) // 2]),
        ("invalid-json", lambda line, real: line == real[:-1] + b",}"),
        ("bad-utf8", lambda line, real: b'"content":"\xff\xfe"' in line),
    ],
)
def test_malformed_kinds(serve: Serve, kind: str, check: object) -> None:
    server = serve({"reply": "abc", "faults": [{"at": 1, "malformed": kind}]})
    events = events_of(rawhttp.post(url(server), rawhttp.stream_body()).payload)
    real = events[2]  # the token the malformed line precedes is still sent
    assert content_of(real) == "b"
    assert callable(check)
    assert check(events[1], real)


def test_malformed_raw_bytes_and_replace(serve: Serve) -> None:
    server = serve(
        {
            "reply": "abc",
            "faults": [{"at": 1, "malformed": {"raw": "data: \\xff\\x00!\n\n"}, "replace": True}],
        }
    )
    events = events_of(rawhttp.post(url(server), rawhttp.stream_body()).payload)
    assert events[1] == b"data: \xff\x00!"
    assert content_of(events[2]) == "c"  # "b" was replaced


def test_error_event_then_clean_end(serve: Serve) -> None:
    server = serve(
        {
            "reply": "abc",
            "faults": [{"at": 2, "error_event": {"message": "boom", "type": "server_error", "code": "x1"}}],
        }
    )
    response = rawhttp.post(url(server), rawhttp.stream_body())
    events = events_of(response.payload)
    assert events[-1] == b'data: {"error":{"message":"boom","type":"server_error","param":null,"code":"x1"}}'
    assert response.chunks()[1]


# -- HTTP-level faults and sequences ------------------------------------------------------------------


def test_error_event_with_an_event_name_as_some_gateways_send(serve: Serve) -> None:
    error = {"message": "upstream overloaded", "code": "overloaded", "event": "error"}
    server = serve({"reply": "abc", "faults": [{"at": 1, "error_event": error}]})
    events = events_of(rawhttp.post(url(server), rawhttp.stream_body()).payload)
    assert events[1:] == [
        b'event: error\ndata: {"error":{"message":"upstream overloaded","type":"server_error",'
        b'"param":null,"code":"overloaded"}}'
    ]
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
    with pytest.raises(openai.APIError, match="upstream overloaded"):  # the SDK raises on the error key
        list(
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
    with (
        httpx.Client() as http,
        httpx_sse.connect_sse(http, "POST", url(server), json=rawhttp.stream_body()) as source,
    ):
        assert [sse.event for sse in source.iter_sse()][-1] == "error"  # a generic parser sees the name
    with pytest.raises(ScenarioError, match=r"error_event.event: must be one line of text"):
        scenario_from_dict(
            {"reply": "a", "faults": [{"at": 0, "error_event": {"message": "x", "event": "a\nb"}}]}
        )


def test_status_with_headers_and_default_openai_body(serve: Serve) -> None:
    server = serve({"status": 429, "headers": {"Retry-After": "7"}})
    response = httpx.post(url(server), json=rawhttp.stream_body())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json() == {
        "error": {
            "message": "Rate limit reached for requests. Please try again later.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


def test_status_with_custom_bodies(serve: Serve) -> None:
    server = serve(
        {"name": "text", "status": 502, "body": "<html>bad gateway</html>"},
        {"name": "json", "status": 500, "body": {"detail": "nope"}},
    )
    text = httpx.post(url(server), json=rawhttp.stream_body("text"))
    assert (text.status_code, text.text) == (502, "<html>bad gateway</html>")
    data = httpx.post(url(server), json=rawhttp.stream_body("json"))
    assert (data.status_code, data.json()) == (500, {"detail": "nope"})


def test_a_2xx_status_answers_without_a_stream(serve: Serve) -> None:
    server = serve({"name": "no-content", "status": 204}, {"name": "empty", "status": 200})
    no_content = rawhttp.post(url(server), rawhttp.stream_body("no-content"))
    assert no_content.head.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert (no_content.header("content-type"), no_content.body) == (None, b"")
    empty = rawhttp.post(url(server), rawhttp.stream_body("empty"))
    assert empty.head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert (empty.header("content-type"), empty.header("content-length"), empty.body) == (
        "text/event-stream",
        "0",
        b"",
    )
    assert server.calls.last.outcome == "fault:status"
    # What real clients make of it: the SDK's stream ends at once with no chunk and no error;
    # httpx-sse refuses the 204 (no text/event-stream) and reads no event from the empty 200.
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
    messages: Any = [{"role": "user", "content": "hi"}]
    for name in ("no-content", "empty"):
        assert list(client.chat.completions.create(model=name, messages=messages, stream=True)) == []
    with pytest.raises(json.JSONDecodeError):  # without stream: an empty JSON body
        client.chat.completions.create(model="empty", messages=messages)
    with httpx.Client() as http:
        with (
            pytest.raises(httpx_sse.SSEError),
            httpx_sse.connect_sse(
                http, "POST", url(server), json=rawhttp.stream_body("no-content")
            ) as source,
        ):
            list(source.iter_sse())
        with httpx_sse.connect_sse(http, "POST", url(server), json=rawhttp.stream_body("empty")) as source:
            assert list(source.iter_sse()) == []


def test_a_2xx_status_is_200_299_and_a_204_has_no_body() -> None:
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict({"reply": "x", "status": 302})
    assert (
        "status: must be an HTTP status: 400-599 (an error), or 200-299 (a success without a stream), not 302"
        in str(caught.value)
    )
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict({"reply": "x", "status": 204, "body": "hi"})
    assert "body: a 204 No Content answer has no body (status: 200 sends one)" in str(caught.value)


def test_first_byte_delays_the_headers(serve: Serve) -> None:
    server = serve({"reply": "a", "first_byte": "300ms"})
    response = rawhttp.post(url(server), rawhttp.stream_body())
    assert response.reads[0][1].startswith(b"HTTP/1.1 200")
    assert 0.29 <= response.reads[0][0] < 2


def test_sdk_retries_through_a_sequence_honouring_retry_after(serve: Serve) -> None:
    server = serve(
        {
            "reply": "ok!",
            "sequence": [{"status": 503}, {"status": 429, "headers": {"Retry-After": "1"}}, {}],
        }
    )
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="x", max_retries=2)
    started = time.monotonic()
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "ok!"
    assert time.monotonic() - started >= 1.0  # it waited the Retry-After before the third try


def test_sequence_last_step_repeats(serve: Serve) -> None:
    server = serve({"reply": "ok", "sequence": [{"status": 500}, {"reply": "second"}]})
    statuses = [httpx.post(url(server), json=rawhttp.stream_body()).status_code for _ in range(2)]
    assert statuses == [500, 200]
    texts = [
        httpx.post(url(server), json={"model": "m", "messages": [{"role": "user", "content": "x"}]}).json()[
            "choices"
        ][0]["message"]["content"]
        for _ in range(2)
    ]
    assert texts == ["second", "second"]


# -- wire options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("ending", "eol"), [("crlf", b"\r\n"), ("cr", b"\r")])
def test_line_endings(serve: Serve, ending: str, eol: bytes) -> None:
    server = serve({"reply": "ab", "wire": {"line_ending": ending}})
    payload = rawhttp.post(url(server), rawhttp.stream_body()).payload
    assert payload.endswith(b"data: [DONE]" + eol + eol)
    assert b"\n" not in payload.replace(b"\r\n", b"") if ending == "cr" else True
    assert [content_of(e) for e in events_of(payload, eol)[:2]] == ["a", "b"]


def test_preamble_bom_retry_comment_ids_and_no_space(serve: Serve) -> None:
    server = serve(
        {
            "reply": "ab",
            "wire": {"bom": True, "retry": 3000, "comment_first": " hi", "event_ids": True, "no_space": True},
        }
    )
    payload = rawhttp.post(url(server), rawhttp.stream_body()).payload
    assert payload.startswith(b"\xef\xbb\xbf: hi\nretry:3000\nid:1\ndata:{")
    assert b"\nid:2\ndata:{" in payload
    assert payload.endswith(b"id:5\ndata:[DONE]\n\n")  # the role chunk, a, b, the finish, [DONE]


def test_close_delimited_framing_has_no_length_and_ends_with_fin(serve: Serve) -> None:
    server = serve({"reply": "ab", "wire": {"framing": "close-delimited"}})
    response = rawhttp.post(url(server), rawhttp.stream_body())
    assert response.header("transfer-encoding") is None
    assert response.header("content-length") is None
    assert response.header("connection") == "close"
    assert response.ending == "fin"
    assert response.body.endswith(b"data: [DONE]\n\n")


def test_content_length_framing_declares_the_exact_length(serve: Serve) -> None:
    server = serve(
        {
            "reply": "日本",
            "timing": {"per_token": "30ms"},
            "wire": {"framing": "content-length"},
            "faults": [{"at": 1, "stall": "100ms", "keepalive": {"every": "40ms"}}],
        }
    )
    response = rawhttp.post(url(server), rawhttp.stream_body())
    assert response.header("transfer-encoding") is None
    assert int(response.header("content-length") or -1) == len(response.body)
    assert len(response.reads) > 2  # still written over time, not in one piece


@pytest.mark.parametrize(("content_type", "header"), [("", None), ("application/json", "application/json")])
def test_content_type_override(serve: Serve, content_type: str, header: str | None) -> None:
    server = serve({"reply": "ab", "wire": {"content_type": content_type}})
    response = rawhttp.post(url(server), rawhttp.stream_body())
    assert response.header("content-type") == header


def test_flush_due_coalesces_and_flush_event_does_not(serve: Serve) -> None:
    due = serve({"reply": "abcd"})
    per_event = serve({"reply": "abcd", "wire": {"flush": "event"}})
    due_chunks, _ = rawhttp.post(url(due), rawhttp.stream_body()).chunks()
    event_chunks, _ = rawhttp.post(url(per_event), rawhttp.stream_body()).chunks()
    assert len(due_chunks) == 1  # everything was due at once: one write
    assert len(event_chunks) == 6  # 4 tokens, finish, [DONE]
    assert [content_of(e) for e in events_of(b"".join(due_chunks))[:4]] == list("abcd")
    assert [content_of(e) for e in events_of(b"".join(event_chunks))[:4]] == list("abcd")
