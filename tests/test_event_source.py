"""GET /v1/stream (EventSource) and CORS, over real sockets with httpx and httpx-sse."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from httpx_sse import connect_sse

from mockllm.state import Options

from . import rawhttp
from .conftest import SCENARIOS, Serve

pytestmark = pytest.mark.functional

RESUMABLE = {
    "name": "resumable",
    "reply": "Hello, resumable world!",
    "faults": [{"at": 8, "disconnect": "reset"}],
    "wire": {"retry": 50},
}


def read(url: str, **headers: str) -> tuple[list[str], str]:
    """Event ids and the text of a stream, until [DONE] or the connection drops."""
    ids, text = [], ""
    with httpx.Client() as client, connect_sse(client, "GET", url, headers=headers) as source:
        try:
            for event in source.iter_sse():
                ids.append(event.id)
                if event.data == "[DONE]":
                    break
                text += json.loads(event.data)["choices"][0]["delta"].get("content") or ""
        except httpx.TransportError:
            pass  # the scenario's reset
    return ids, text


def test_every_event_has_an_id_and_resume_continues_without_repeats(serve: Serve) -> None:
    server = serve(RESUMABLE)
    url = f"{server.url}/v1/stream?scenario=resumable"
    ids, head = read(url)
    assert head == "Hello, r"  # cut before token 8
    assert ids == [str(n) for n in range(1, 10)]  # the role chunk, then 8 tokens
    more_ids, tail = read(url, **{"Last-Event-ID": ids[-1]})
    assert head + tail == RESUMABLE["reply"]
    assert more_ids[0] == "10"
    assert more_ids[-1] == str(len(RESUMABLE["reply"]) + 3)  # the finish chunk, then [DONE]
    ended = httpx.get(url, headers={"Last-Event-ID": more_ids[-1]})
    assert ended.status_code == 204  # an EventSource stops reconnecting
    calls = server.calls
    assert [c.last_event_id for c in calls] == [None, "9", more_ids[-1]]
    assert [c.status for c in calls] == [200, 200, 204]


def test_retry_comes_from_the_scenario(serve: Serve) -> None:
    server = serve({**RESUMABLE, "faults": []})
    body = httpx.get(f"{server.url}/v1/stream?scenario=resumable").content
    assert body.startswith(b"retry: 50\n")


def test_unknown_scenario_is_a_404_in_openai_shape(serve: Serve) -> None:
    server = serve(RESUMABLE)
    answer = httpx.get(f"{server.url}/v1/stream?scenario=nope")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "scenario_not_found"


def test_cors_preflight_and_headers_on_streams_and_errors(serve: Serve) -> None:
    fine = {**RESUMABLE, "name": "fine", "faults": []}
    server = serve(fine, options=Options(cors=("http://app.test",), api_key="k"))
    origin = {"Origin": "http://app.test"}
    preflight = httpx.options(
        f"{server.url}/v1/chat/completions",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://app.test"
    assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    chat = {"model": "fine", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    denied = httpx.post(f"{server.url}/v1/chat/completions", json=chat, headers=origin)
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == "http://app.test"
    streamed = httpx.post(
        f"{server.url}/v1/chat/completions", json=chat, headers={**origin, "Authorization": "Bearer k"}
    )
    assert streamed.headers["access-control-allow-origin"] == "http://app.test"
    other = httpx.post(f"{server.url}/v1/chat/completions", json=chat, headers={"Origin": "http://evil.test"})
    assert "access-control-allow-origin" not in other.headers


def test_no_cors_headers_unless_asked(serve: Serve) -> None:
    server = serve(RESUMABLE)
    answer = httpx.get(f"{server.url}/v1/models", headers={"Origin": "http://app.test"})
    assert "access-control-allow-origin" not in answer.headers


def test_first_byte_and_sequence_apply_to_event_source_too(serve: Serve) -> None:
    server = serve(
        {"name": "slowstart", "reply": "ok", "first_byte": "300ms", "sequence": [{"status": 503}, {}]}
    )
    url = f"{server.url}/v1/stream?scenario=slowstart"
    with httpx.Client() as client:
        first = client.get(url)
        second = client.get(url)
    assert first.status_code == 503
    assert second.status_code == 200
    assert b"[DONE]" in second.content
    assert all(0.29 <= r.elapsed.total_seconds() < 3 for r in (first, second))


# --- Issue 20: faults at 0 on the first connection, ids that name events, resume=0 -------------

HELLO = {"name": "hello", "reply": ["Hel", "lo", " wor", "ld"]}


def events(payload: bytes) -> list[str]:
    """The events of a stream, each as its bytes with the chunk's id and time made constant."""
    text = re.sub(rb'"id":"chatcmpl-mockllm-\d+","object"', b'"id":"X","object"', payload)
    text = re.sub(rb'"created":\d+', b'"created":0', text)
    return [event for event in text.decode().split("\n\n") if event]


def chunk(delta: dict[str, str | None], event_id: int | None = None, finish: str | None = None) -> str:
    """The event of one chunk of scenario ``hello`` (as :func:`events` shows it)."""
    head = f"id: {event_id}\n" if event_id else ""
    return (
        f'{head}data: {{"id":"X","object":"chat.completion.chunk","created":0,"model":"hello",'
        '"service_tier":"default","system_fingerprint":"fp_mockllm","choices":[{"index":0,"delta":'
        + json.dumps(delta, separators=(",", ":"))
        + ',"logprobs":null,"finish_reason":'
        + json.dumps(finish)
        + "}]}"
    )


ROLE = {"role": "assistant", "content": "", "refusal": None}


def test_the_shipped_stall_forever_stalls_over_get_as_over_post(serve: Serve) -> None:
    server = serve(SCENARIOS / "stall.yaml")
    answer = rawhttp.get(f"{server.url}/v1/stream?scenario=stall-forever", read_for=0.6)
    assert (answer.status, answer.ending, answer.payload) == (200, "timeout", b"")
    post = rawhttp.post(
        f"{server.url}/v1/chat/completions", rawhttp.stream_body("stall-forever"), read_for=0.6
    )
    assert (post.status, post.ending, post.payload) == (200, "timeout", b"")


def test_inserts_at_0_come_on_the_first_connection(serve: Serve) -> None:
    server = serve({**HELLO, "faults": [{"at": 0, "malformed": {"raw": ": first\n\n"}}]})
    answer = rawhttp.get(f"{server.url}/v1/stream?scenario=hello")
    assert answer.payload.startswith(b": first\n\nid: 1\ndata: {")


def test_ids_name_events_and_a_resume_continues_after_the_one_named(serve: Serve) -> None:
    server = serve({**HELLO, "faults": [{"at": 2, "malformed": "not-json"}]})
    url = f"{server.url}/v1/stream?scenario=hello"
    first = events(rawhttp.get(url).payload)
    tail = [
        chunk({"content": " wor"}, 5),
        chunk({"content": "ld"}, 6),
        chunk({}, 7, finish="stop"),
        "id: 8\ndata: [DONE]",
    ]
    assert first == [
        chunk(ROLE, 1),  # the real API's first chunk: the role, no text
        chunk({"content": "Hel"}, 2),
        chunk({"content": "lo"}, 3),
        "id: 4\ndata: hello",
        *tail,
    ]
    assert events(rawhttp.get(url, headers={"Last-Event-ID": "4"}).payload) == tail  # after the bad line
    # Named the token before the bad line: the line is behind the client, the ids go on from 3.
    again = events(rawhttp.get(url, headers={"Last-Event-ID": "3"}).payload)
    assert [event.partition("\n")[2] for event in again] == [event.partition("\n")[2] for event in tail]
    assert [event.partition("\n")[0] for event in again] == ["id: 4", "id: 5", "id: 6", "id: 7"]
    assert events(rawhttp.get(url, headers={"Last-Event-ID": "7"}).payload) == tail[-1:]
    assert rawhttp.get(url, headers={"Last-Event-ID": "8"}).status == 204
    # Only the role chunk arrived: the first token comes again, after a role chunk of its own.
    assert events(rawhttp.get(url, headers={"Last-Event-ID": "1"}).payload)[:2] == [
        chunk(ROLE, 2),
        chunk({"content": "Hel"}, 3),
    ]
    assert [call.tokens_sent for call in server.calls] == [4, 2, 2, 0, 0, 4]


def test_a_resumed_stream_logs_every_token_it_sends(serve: Serve) -> None:
    server = serve({"name": "abc", "reply": "abcdef", "wire": {"retry": 50}})
    answer = rawhttp.get(f"{server.url}/v1/stream?scenario=abc", headers={"Last-Event-ID": "3"})
    sent = [
        json.loads(line[6:])["choices"][0]["delta"]
        for line in answer.payload.decode().splitlines()
        if line.startswith("data: {")
    ]
    assert [delta.get("content") for delta in sent] == ["c", "d", "e", "f", None]
    assert answer.payload.startswith(b"retry: 50\nid: 4\n")  # the preamble opens every response
    assert server.calls.last.tokens_sent == 4


def read_reconnecting(url: str, attempts: int = 5) -> tuple[str, list[str | None]]:
    """What an EventSource-style app built on httpx-sse makes of a stream: it reconnects with
    ``Last-Event-ID`` after a dropped connection, an error event or a line it cannot parse."""
    text, last, sent = "", None, []
    for _ in range(attempts):
        sent.append(last)
        headers = {"Last-Event-ID": last} if last else {}
        with httpx.Client() as client, connect_sse(client, "GET", url, headers=headers) as source:
            if source.response.status_code == 204:
                return text, sent
            try:
                for event in source.iter_sse():
                    last = event.id or last
                    if event.data == "[DONE]":
                        return text, sent
                    try:
                        data = json.loads(event.data)
                    except json.JSONDecodeError:
                        break  # not JSON: start again after it
                    if "error" in data:
                        break
                    text += data["choices"][0]["delta"].get("content") or ""
            except httpx.TransportError:
                pass
    raise AssertionError(f"no [DONE] after {attempts} connections; text so far {text!r}")


@pytest.mark.parametrize(
    "fault",
    [
        {"at": 2, "malformed": "not-json"},
        {"at": 2, "malformed": "truncated-json", "replace": True},
        {"at": 3, "error_event": {"message": "overloaded"}},
        {"at": 3, "disconnect": "reset"},
        {"at": 3, "disconnect": "mid-event"},
        {"at": "end", "disconnect": "fin"},
    ],
    ids=lambda fault: "-".join(str(v) for k, v in fault.items() if k != "at"),
)
def test_a_reconnect_yields_the_complete_text_exactly_once(serve: Serve, fault: dict[str, object]) -> None:
    server = serve({**HELLO, "faults": [fault]})
    text, sent = read_reconnecting(f"{server.url}/v1/stream?scenario=hello")
    assert text == "Hello world"
    assert len(sent) == 2
    assert sent[0] is None


def test_resume_0_serves_the_scenario_as_written_from_the_start_every_time(serve: Serve) -> None:
    server = serve({**HELLO, "faults": [{"at": 2, "malformed": "not-json"}]})
    url = f"{server.url}/v1/stream?scenario=hello&resume=0"
    first = rawhttp.get(url)
    again = rawhttp.get(url, headers={"Last-Event-ID": "3"})  # ignored: this server cannot resume
    assert first.status == again.status == 200
    assert events(first.payload) == events(again.payload)
    assert events(first.payload)[:4] == [
        chunk(ROLE),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        "data: hello",
    ]
    assert events(first.payload)[-1] == "data: [DONE]"
    with_ids = serve({**HELLO, "name": "ids", "wire": {"event_ids": True}})
    assert rawhttp.get(f"{with_ids.url}/v1/stream?scenario=ids&resume=0").payload.startswith(b"id: 1\n")


def test_resume_must_be_0_or_1(serve: Serve) -> None:
    server = serve(HELLO)
    answer = httpx.get(f"{server.url}/v1/stream?scenario=hello&resume=no")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_resume"
