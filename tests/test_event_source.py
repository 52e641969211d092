"""GET /v1/stream (EventSource) and CORS, over real sockets with httpx and httpx-sse."""

from __future__ import annotations

import json

import httpx
import pytest
from httpx_sse import connect_sse

from mockllm.state import Options

from .conftest import Serve

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
    assert ids == [str(n) for n in range(1, 9)]
    more_ids, tail = read(url, **{"Last-Event-ID": ids[-1]})
    assert head + tail == RESUMABLE["reply"]
    assert more_ids[0] == "9"
    assert more_ids[-1] == str(len(RESUMABLE["reply"]) + 2)  # the finish chunk, then [DONE]
    ended = httpx.get(url, headers={"Last-Event-ID": more_ids[-1]})
    assert ended.status_code == 204  # an EventSource stops reconnecting
    calls = server.calls
    assert [c.last_event_id for c in calls] == [None, "8", more_ids[-1]]
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
