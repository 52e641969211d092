"""Hypothesis throws request bodies at every endpoint: never a 5xx, always the route's error shape.

Bodies are shaped like the APIs' requests (their keys, with any JSON value, nested), plus raw bytes
that are not JSON at all. A 2xx must be a complete answer (a stream read to its end); a 4xx must be
the error body of the API that owns the path; the server must record no bug.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockllm import MockLLMServer
from mockllm.formats import FORMATS

pytestmark = [pytest.mark.functional, pytest.mark.robustness]

KEYS = [
    "model", "messages", "stream", "prompt", "input", "max_tokens", "system", "tools", "tool_choice",
    "stream_options", "n", "role", "content", "options", "instructions", "format", "temperature",
]  # fmt: skip
SETTINGS = settings(
    max_examples=350,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure in CI reproduces locally
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["m", "fast", "user", "assistant", "system", "tool", "text", "\ud800", "🎉"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool"]) | values},
        optional={"content": st.text(max_size=30) | values, "tool_call_id": values, "tool_calls": values},
    ),
    max_size=3,
)
requests = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.sampled_from(["m", "fast"]) | values,
            "messages": messages | values,
            "prompt": st.text(max_size=20) | values,
            "input": st.text(max_size=20) | messages | values,
            "stream": st.booleans() | values,
            "max_tokens": st.integers(min_value=-5, max_value=100) | values,
            "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}) | values,
            "system": values,
            "tools": values,
        },
    ),
    values,
)
bodies = requests.map(lambda value: json.dumps(value).encode()) | st.binary(max_size=40)


def error_shape(path: str, body: Any) -> bool:
    """``body`` is an error in the shape of the API that owns ``path``."""
    if path.startswith("/api/"):
        return isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], str)
    if path.startswith("/model/"):  # Bedrock: the exception is named by x-amzn-ErrorType
        return isinstance(body, dict) and set(body) == {"message"} and isinstance(body["message"], str)
    if path.startswith("/v1/messages"):
        return (
            isinstance(body, dict)
            and body.get("type") == "error"
            and isinstance(body.get("error"), dict)
            and isinstance(body["error"].get("type"), str)
            and isinstance(body["error"].get("message"), str)
        )
    error = body.get("error") if isinstance(body, dict) else None
    if path.startswith(("/v1beta/models/", "/v1/models/")):  # Google's: {code, message, status}
        return isinstance(error, dict) and set(error) >= {"code", "message", "status"}
    if path.startswith("/openai/") and isinstance(error, dict) and set(error) == {"code", "message"}:
        return isinstance(error["code"], str) and isinstance(error["message"], str)  # Azure's gateway
    return isinstance(error, dict) and {"message", "type", "param", "code"} <= set(error)


def concrete(path: str) -> str:
    """A URL a client calls on the route ``path``: its ``{placeholders}`` filled, and the query
    the route needs (Azure's deployments routes take ``api-version``)."""
    filled = re.sub(r"\{\w+\}", "fast", path)
    return filled + ("?api-version=2024-10-21" if "/deployments/" in filled else "")


@pytest.fixture(scope="module")
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer([{"name": "fast", "reply": "Hi 🎉"}]) as server:
        yield server


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def check(server: MockLLMServer, response: httpx.Response, path: str) -> None:
    assert response.status_code < 500, (path, response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert error_shape(path, response.json()), (path, response.text[:300])
    assert server.errors == []


#: Each format's path with its placeholders filled in, and the other operations of Bedrock and Gemini.
POSTED = [concrete(fmt.path) for fmt in FORMATS.values()] + [
    *(f"/model/m/{operation}" for operation in ("converse", "invoke", "invoke-with-response-stream")),
    *(
        f"/{version}/models/m:{verb}"
        for version in ("v1beta", "v1")
        for verb in ("generateContent", "countTokens")
    ),
]


@pytest.mark.parametrize("path", POSTED)
def test_post_bodies_never_get_a_5xx(server: MockLLMServer, client: httpx.Client, path: str) -> None:
    @SETTINGS
    @given(body=bodies)
    def run(body: bytes) -> None:
        with client.stream("POST", server.url + path, content=body) as response:
            response.read()  # a stream must end: complete, whatever the request said
        check(server, response, path)

    run()


@settings(SETTINGS, max_examples=300)
@given(
    path=st.sampled_from(["/v1/stream", "/v1/models", "/v1/nope", "/v1/messages/x", "/api/tags", "/x"]),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    last=st.none() | st.text(alphabet=st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=30),
    query=st.dictionaries(st.sampled_from(["scenario", "api_key", "x"]), st.text(max_size=10), max_size=2),
)
def test_other_routes_never_get_a_5xx(
    server: MockLLMServer,
    client: httpx.Client,
    path: str,
    method: str,
    last: str | None,
    query: dict[str, str],
) -> None:
    last = last.strip(" \t") if last is not None else None  # h11 sends no padded header values
    headers = {"Last-Event-ID": last.encode("latin-1")} if last else {}  # any byte, as sent
    with client.stream(method, server.url + path, params=query, headers=headers) as response:
        response.read()
    check(server, response, path)
