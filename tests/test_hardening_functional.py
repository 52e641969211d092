"""Issue 15's defects, each at the level it lives at: bad requests, error shapes, secrets, the
call log's bound, the API key, and the small ones (content type, header encoding, log lines)."""

from __future__ import annotations

import json
import logging
import random
import socket

import httpx
import pytest

from mockllm import MockLLMServer
from mockllm.state import Options

from .conftest import Serve

pytestmark = pytest.mark.functional

FAST = {"name": "fast", "reply": "ok"}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def raw_exchange(server: MockLLMServer, request: bytes) -> bytes:
    """Send ``request`` as is and read until the server closes."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def openai_error(response: httpx.Response) -> dict[str, object]:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    return error  # type: ignore[no-any-return]


# -- 4: bad requests are 4xx in the route's shape, never 5xx -----------------------------------------

BAD_BODIES = {
    "nested 100,000 deep": ("/v1/chat/completions", b"[" * 100_000 + b"]" * 100_000, {}),
    "5,000-digit integer": ("/v1/chat/completions", b'{"model": "m", "n": ' + b"9" * 5000 + b"}", {}),
    "lone surrogate, chat": (
        "/v1/chat/completions",
        b'{"model": "\\ud800", "messages": [], "stream": true}',
        {},
    ),
    "lone surrogate, responses": (
        "/v1/responses",
        b'{"model": "\\ud800", "input": "hi", "stream": true}',
        {},
    ),
    "lone surrogate, messages": (
        "/v1/messages",
        b'{"model": "\\ud800", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "stream": true}',
        {},
    ),
    "null prompt": ("/v1/completions", b'{"model": "m", "prompt": null}', {}),
    "gzip that is not": ("/v1/chat/completions", b'{"model": "m"}', {"Content-Encoding": "gzip"}),
}


@pytest.mark.parametrize("case", BAD_BODIES)
def test_a_bad_body_is_a_400_in_the_routes_shape(serve: Serve, case: str) -> None:
    server = serve()
    path, body, headers = BAD_BODIES[case]
    answer = httpx.post(
        server.url + path, content=body, headers={"Content-Type": "application/json", **headers}, timeout=10
    )
    assert answer.status_code == 400, answer.text
    if path == "/v1/messages":
        assert answer.json()["type"] == "error"
        assert answer.json()["error"]["type"] == "invalid_request_error"
    else:
        assert openai_error(answer)["type"] == "invalid_request_error"
    assert server.errors == []


UNPARSABLE = {
    "bad request line": (b"FOO BAR\r\n\r\n", "openai", "Invalid method encountered"),
    "bad header, messages": (
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        "anthropic",
        "Invalid header token",
    ),
    "bad Content-Length, messages": (
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "anthropic",
        "Invalid character in Content-Length",
    ),
    "brotli body, chat": (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\nContent-Length: 4\r\n\r\nabcd",
        "openai",
        "Can not decode content-encoding: brotli (br)",
    ),
    "brotli body, ollama": (
        b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\nContent-Length: 4\r\n\r\nabcd",
        "ollama",
        "Can not decode content-encoding: brotli (br)",
    ),
    "9,000-byte request line": (b"GET /v1/" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", "openai", "Got more than"),
}


@pytest.mark.parametrize("case", UNPARSABLE)
def test_what_the_http_parser_refuses_is_a_400_in_the_apis_shape(serve: Serve, case: str) -> None:
    request, shape, says = UNPARSABLE[case]
    server = serve()
    head, _, body = raw_exchange(server, request).partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split(b" ", 2)[1] == b"400"
    assert b"Content-Type: application/json" in head
    error = json.loads(body)
    if shape == "anthropic":
        assert error["type"] == "error"
        assert error["error"]["type"] == "invalid_request_error"
        message = error["error"]["message"]
    elif shape == "ollama":
        assert set(error) == {"error"}
        message = error["error"]
    else:
        assert set(error["error"]) == {"message", "type", "param", "code"}
        message = error["error"]["message"]
    assert message.startswith("Bad request: "), message
    assert says in message, message
    assert "\n" not in message


def test_valid_surrogate_pairs_are_fine(serve: Serve) -> None:
    server = serve(FAST)
    body = json.dumps(
        {"model": "🎉", "messages": [{"role": "user", "content": "👍🏽"}]}
    )  # ASCII: escaped pairs
    assert "\\ud83c" in body
    answer = httpx.post(f"{server.openai_base_url}/chat/completions", content=body, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["model"] == "🎉"


@pytest.mark.parametrize("last", ["²".encode(), b"9" * 5000, b"-1", b"3a"])
def test_a_last_event_id_that_is_not_an_id_is_a_400(serve: Serve, last: bytes) -> None:
    server = serve()
    answer = raw_exchange(
        server,
        b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\nLast-Event-ID: " + last + b"\r\n\r\n",
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body)["error"]["code"] == "invalid_last_event_id"
    assert server.errors == []


# -- 5: errors raised outside a handler take the shape of the API that owns the path -----------------


def test_404_405_413_in_each_apis_own_shape(serve: Serve) -> None:
    server = serve(options=Options(max_body=1000))
    big = b"x" * 2000
    anthropic_413 = httpx.post(f"{server.url}/v1/messages", content=big)
    assert anthropic_413.status_code == 413
    assert anthropic_413.json() == {
        "type": "error",
        "error": {
            "type": "request_too_large",
            "message": "The request body is too large: the limit is 1000 bytes.",
        },
    }
    anthropic_404 = httpx.post(f"{server.url}/v1/messages/batches")
    assert anthropic_404.json()["error"]["type"] == "not_found_error"
    anthropic_405 = httpx.get(f"{server.url}/v1/messages")
    assert anthropic_405.status_code == 405
    assert anthropic_405.json()["type"] == "error"
    ollama_413 = httpx.post(f"{server.url}/api/chat", content=big)
    assert ollama_413.status_code == 413
    assert ollama_413.json() == {"error": "The request body is too large: the limit is 1000 bytes."}
    assert httpx.get(f"{server.url}/api/tags").json() == {"error": "Invalid URL (GET /api/tags)"}
    openai_404 = httpx.post(f"{server.url}/v1/images/generations")
    assert openai_error(openai_404) == {
        "message": "Invalid URL (POST /v1/images/generations)",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


# -- 6: a client that leaves at any moment is client-disconnected, never a server error -----------


def test_random_hang_ups_are_never_server_errors(serve: Serve) -> None:
    server = serve(
        {"name": "slow", "reply": "abcdef", "first_byte": "5ms", "timing": {"per_token": "2ms"}},
        {"name": "status", "reply": "x", "first_byte": "3ms", "status": 429},
    )
    port = int(server.url.rsplit(":", 1)[1])
    rng = random.Random(15)
    for n in range(200):
        body = json.dumps({**CHAT, "model": "slow" if n % 2 else "status", "stream": n % 3 != 0}).encode()
        request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
        )
        with socket.create_connection(("127.0.0.1", port)) as sock:
            if rng.random() < 0.5:  # RST rather than FIN, half of the time
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.sendall(request)
            if rng.random() < 0.5:
                sock.recv(rng.choice([1, 20, 200]))  # leave after some of the answer
    server.calls.wait(timeout=10)
    assert server.errors == []
    outcomes = {call.outcome for call in server.calls}
    assert "server-error" not in outcomes
    assert outcomes <= {"client-disconnected", "completed", "fault:status"}


async def test_a_write_to_a_closing_transport_is_a_client_disconnect() -> None:
    # The race behind 23 of 1,000 random hang-ups: the client is gone before prepare() writes.
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from mockllm.guards import guard
    from mockllm.selection import ScenarioSet
    from mockllm.state import CALL, STATE, ServerState

    from .conftest import make_scenario

    app = web.Application()
    app[STATE] = state = ServerState(ScenarioSet([make_scenario()]))
    request = make_mocked_request("POST", "/v1/chat/completions", app=app)

    async def handler(request: web.Request) -> web.StreamResponse:
        raise ConnectionResetError("Cannot write to closing transport")

    await guard(request, handler)
    call = request[CALL]
    assert call.outcome == "client-disconnected"
    assert call.status is None
    assert list(state.calls) == [call]
    assert state.errors == []


# -- 3: secrets are redacted wherever calls leave the process ------------------------------------


def test_credentials_are_redacted_in_the_served_call_log(serve: Serve) -> None:
    server = serve(FAST, options=Options(redact_headers=("X-Team-Token",)))
    secrets = {
        "Authorization": "Bearer sk-proj-0123456789abcdefWXYZ",
        "x-api-key": "sk-ant-api03-0123456789-abcd",
        "api-key": "azure-0123456789-9876",
        "Cookie": "session=0123456789abcdef",
        "X-Team-Token": "team-token-0123456789",
    }
    httpx.post(f"{server.openai_base_url}/chat/completions", json=CHAT, headers=secrets, timeout=10)
    served = httpx.get(f"{server.url}/_mockllm/calls").text
    for value in secrets.values():
        assert value not in served
        assert value.split()[-1][:-4] not in served
    headers = json.loads(served)["calls"][0]["headers"]
    assert headers["Authorization"] == "Bearer …WXYZ"
    assert headers["x-api-key"] == "…abcd"
    assert headers["api-key"] == "…9876"
    assert headers["Cookie"] == "…cdef"
    assert headers["X-Team-Token"] == "…6789"
    # In process, the test owns the values: Call.headers keeps them as sent.
    assert server.calls.last.headers["Authorization"] == secrets["Authorization"]


def test_a_short_secret_shows_nothing_of_itself() -> None:
    from mockllm.calls import redact

    assert redact("Bearer abc") == "Bearer …"
    assert redact("k") == "…"
    assert redact("Bearer sk-0123456789ab") == "Bearer …89ab"


# -- 10: the call log is bounded ------------------------------------------------------------------


def test_the_call_log_keeps_max_calls_and_counts_the_dropped(serve: Serve) -> None:
    server = serve(FAST, options=Options(max_calls=5))
    for n in range(8):
        httpx.post(
            f"{server.openai_base_url}/chat/completions", json={**CHAT, "n": 1, "user": str(n)}, timeout=10
        )
    assert len(server.calls) == 5
    assert server.calls.dropped == 3
    assert [call.json["user"] for call in server.calls] == ["3", "4", "5", "6", "7"]
    served = httpx.get(f"{server.url}/_mockllm/calls").json()
    assert (len(served["calls"]), served["dropped"], served["limit"]) == (5, 3, 5)
    httpx.delete(f"{server.url}/_mockllm/calls")
    assert httpx.get(f"{server.url}/_mockllm/calls").json()["limit"] == 5


# -- 11: the API key covers every LLM endpoint, as each API sends it ------------------------------


def test_api_key_on_every_llm_endpoint(serve: Serve) -> None:
    server = serve(FAST, options=Options(api_key="k-secret"))
    url = server.url
    assert httpx.get(f"{url}/v1/stream").status_code == 401
    assert httpx.get(f"{url}/v1/stream?api_key=k-secret").status_code == 200
    assert (
        httpx.get(f"{url}/v1/models?api_key=k-secret").status_code == 401
    )  # the query is for EventSource only
    chat = f"{url}/v1/chat/completions"
    assert httpx.post(chat, json=CHAT, headers={"Authorization": "k-secret"}).status_code == 401
    assert httpx.post(chat, json=CHAT, headers={"Authorization": "Basic k-secret"}).status_code == 401
    assert httpx.post(chat, json=CHAT, headers={"Authorization": "bearer k-secret"}).status_code == 200
    denied = httpx.post(f"{url}/v1/messages", json={}, headers={"Authorization": "Bearer nope"})
    assert denied.status_code == 401
    assert denied.json()["error"]["type"] == "authentication_error"
    assert httpx.post(f"{url}/api/chat", json={}, headers={"x-api-key": "nope"}).json() == {
        "error": "unauthorized"
    }
    assert httpx.get(f"{url}/healthz").status_code == 200


# -- 12: the small ones ----------------------------------------------------------------------------


def test_ollama_streams_are_ndjson(serve: Serve) -> None:
    server = serve(FAST)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", f"{server.url}/api/chat", json=body) as answer:
        assert answer.headers["content-type"] == "application/x-ndjson"
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=CHAT) as answer:
        assert answer.headers["content-type"] == "text/event-stream"


def test_a_non_ascii_scenario_name_is_percent_encoded_in_the_header(serve: Serve) -> None:
    server = serve({"name": "天气", "reply": "晴"})
    answer = httpx.post(f"{server.openai_base_url}/chat/completions", json={**CHAT, "model": "天气"})
    assert answer.headers["x-mockllm-scenario"] == "%E5%A4%A9%E6%B0%94"


def test_a_bad_request_line_is_one_short_log_line(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    server = serve()
    with caplog.at_level(logging.DEBUG, logger="aiohttp.server"):
        answer = raw_exchange(server, b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
        raw_exchange(server, b"NOT HTTP AT ALL\r\n\r\n")
    assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.0 400 "))
    records = [r for r in caplog.records if r.name == "aiohttp.server" and r.levelno >= logging.INFO]
    assert records, "aiohttp said nothing"
    for record in records:
        assert record.exc_info is None
        assert "\n" not in record.getMessage()
        assert record.getMessage().startswith("Error handling request from 127.0.0.1: 400, ")
