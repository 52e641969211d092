"""Gemini: the encoder as literal wire bytes (SSE and the JSON array), request parsing, and
google-genai reading the server as it reads the real API (sync and async, streamed and whole,
function calls, the tool loop, errors). Every shipped scenario is in test_formats_shipped.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from click.testing import CliRunner
from google import genai
from google.genai import errors, types

from mockllm import MockLLMServer
from mockllm.cli import main
from mockllm.events import KeepAlive, StreamError
from mockllm.formats import FORMATS, ApiRequest, RequestError, Route, StreamContext
from mockllm.state import Options
from mockllm.timeline import build_timeline

from .clients import Seen, gemini_async
from .conftest import SCENARIOS, Serve, make_scenario
from .test_formats_shipped import SHIPPED, expected_seen

CONTEXT = StreamContext(id="R1", created=1700000000, model="m")
GEMINI = FORMATS["gemini"]
USER = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
META = '"modelVersion":"m","responseId":"R1"}'
TEXT = (
    '{"candidates":[{"content":{"parts":[{"text":%s}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":3,"totalTokenCount":3},'
    + META
)
FINISH = (
    '{"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":%s,"index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":%d,"totalTokenCount":%d},'
    + META
)


def encoder(sse: bool = True, **scenario: Any) -> tuple[Any, Any]:
    built = make_scenario(**scenario)
    request = ApiRequest("m", True, 3, {"sse": sse})
    return built, GEMINI.stream_encoder(built, request, CONTEXT)


def stream(sse: bool = True, **scenario: Any) -> bytes:
    built, enc = encoder(sse, **scenario)
    return b"".join(enc.encode(step.event) for step in build_timeline(built))


def sse(*data: str) -> bytes:
    return b"".join(f"data: {d}\n\n".encode() for d in data)


# -- wire bytes -------------------------------------------------------------------------------------


def test_sse_text_chunks_then_the_finish_with_usage() -> None:
    assert stream(reply="Hé") == sse(TEXT % '"H"', TEXT % '"é"', FINISH % ('"STOP"', 2, 5))


@pytest.mark.parametrize(("reason", "wire"), [("length", "MAX_TOKENS"), ("content_filter", "SAFETY")])
def test_finish_reasons_are_geminis(reason: str, wire: str) -> None:
    assert stream(reply="H", finish_reason=reason).endswith(sse(FINISH % (f'"{wire}"', 1, 4)))


def test_a_tool_call_arrives_whole_after_its_fragments() -> None:
    call = '{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{"a":1},"id":"c1"}}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":3,"totalTokenCount":3},'
    body = stream(reply=[], tool_calls=[{"name": "f", "arguments": {"a": 1}, "id": "c1"}])
    # a call's seven argument fragments count as tokens sent; finishReason stays STOP
    assert body == sse(call + META, FINISH % ('"STOP"', 7, 10))


def test_an_error_in_the_stream_is_googles_error_object() -> None:
    _, enc = encoder()
    assert enc.encode(StreamError("boom", code=503)) == sse(
        '{"error":{"code":503,"message":"boom","status":"UNAVAILABLE"}}'
    )
    assert enc.encode(StreamError("boom", type="server_error", code="internal_error")) == sse(
        '{"error":{"code":500,"message":"boom","status":"INTERNAL"}}'
    )


def pretty(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False).encode()


def test_json_array_elements_are_pretty_printed_between_googles_separators() -> None:
    chunks = [json.loads(TEXT % '"H"'), json.loads(TEXT % '"i"'), json.loads(FINISH % ('"STOP"', 2, 5))]
    body = stream(sse=False, reply="Hi")
    assert body == b"[" + b"\n,\r\n".join(pretty(c) for c in chunks) + b"\n]"
    assert json.loads(body) == chunks


def test_json_array_faults_in_its_own_terms() -> None:
    _, enc = encoder(sse=False)
    assert enc.encode(KeepAlive()) == b"\n"  # whitespace between elements: legal JSON
    # missing-prefix: the element without its separator, concatenated JSON
    body = stream(sse=False, reply="Hi", faults=[{"at": 1, "malformed": "missing-prefix"}])
    assert b"}{" in body
    # an error ends the array: the body is still one JSON document
    body = stream(sse=False, reply="Hi", faults=[{"at": 1, "error_event": {"message": "x"}}])
    assert json.loads(body)[-1] == {"error": {"code": 500, "message": "x", "status": "INTERNAL"}}
    assert not stream(sse=False, reply="Hi", done=False).endswith(b"]")  # no end sentinel


# -- requests ---------------------------------------------------------------------------------------


def parse(body: Any, path: str = "/v1beta/models/m:streamGenerateContent", **query: str) -> Any:
    return GEMINI.parse_request(body, Route({"model": "m"}, query, path))


def test_contents_system_tools_and_results_become_the_conversation() -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [{"functionDeclarations": [{"name": "get_weather"}]}, {"googleSearch": {}}],
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in "}, {"text": "Paris?"}]},
            {
                "role": "model",
                "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
            },
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 18}}}],
            },
        ],
    }
    request = parse(body, alt="sse")
    conversation = request.conversation
    assert (request.model, request.stream, request.options) == ("m", True, {"sse": True})
    assert conversation.system == "Be brief."
    assert conversation.tools == ("get_weather",)
    assert conversation.last_user == "Weather in Paris?"
    assert conversation.messages[1].tool_calls == ("get_weather",)
    assert conversation.tool_result == '{"temp":18}'
    wrapped = {"role": "user", "parts": [{"function_response": {"name": "f", "response": {"result": "ok"}}}]}
    assert parse({"contents": [wrapped]}).conversation.tool_result == "ok"
    assert parse(USER, "/v1/models/m:generateContent").stream is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], 'Invalid JSON payload received. Unknown name "": Root element must be a message.'),
        ({}, "* GenerateContentRequest.contents: contents is not specified\n"),
        (
            {"contents": "hi"},
            "Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), \"hi\"",
        ),
        (
            {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
            "Please use a valid role: user, model.",
        ),
        (
            {"contents": [{"parts": []}]},
            "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.\n",
        ),
        (
            {"contents": [{"parts": [{"text": 5}]}]},
            "Invalid value at 'contents[0].parts[0].text' (TYPE_STRING), 5",
        ),
        (
            {**USER, "tools": {}},
            "Invalid value at 'tools' (type.googleapis.com/google.ai.generativelanguage.v1beta.Tool), {}",
        ),
    ],
)
def test_bad_requests_say_where_in_googles_words(body: Any, message: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse(body)
    assert (caught.value.status, caught.value.message) == (400, message)


def test_an_alt_it_does_not_serve_is_a_400() -> None:
    with pytest.raises(RequestError, match="alt=proto is not served here"):
        parse(USER, alt="proto")


# -- google-genai -----------------------------------------------------------------------------------


def client(server: MockLLMServer, **options: Any) -> genai.Client:
    return genai.Client(api_key="k", http_options=types.HttpOptions(base_url=server.url, **options))


@pytest.fixture(scope="module")
def pack() -> Any:
    with MockLLMServer(SCENARIOS, time_scale=0) as server:
        yield server


@pytest.mark.parametrize("version", ["v1", "v1beta"])
def test_sync_stream_and_whole_on_both_versions(pack: MockLLMServer, version: str) -> None:
    text = SHIPPED["crlf"].reply_text
    with client(pack, api_version=version) as c:
        chunks = list(c.models.generate_content_stream(model="crlf", contents="hi"))
        whole = c.models.generate_content(model="crlf", contents="hi")
    assert "".join(chunk.text or "" for chunk in chunks) == text
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == len(chunks) - 1
    assert chunks[0].model_version == "crlf"
    assert chunks[0].response_id == chunks[-1].response_id
    assert whole.text == text
    assert whole.usage_metadata.total_token_count == 1 + len(chunks) - 1
    assert pack.calls.last.format == "gemini"
    assert pack.calls.last.path == f"/{version}/models/crlf:generateContent"


# google-genai subclasses aiohttp's ClientSession, which aiohttp warns against
@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
async def test_async_client_reads_the_stream(pack: MockLLMServer) -> None:
    """The async client reads with aiohttp (installed with mockllm), another line reader."""
    aio = client(pack).aio
    try:
        stream = await aio.models.generate_content_stream(model="split-utf8", contents="hi")
        parts = [chunk.text async for chunk in stream]
        whole = await aio.models.generate_content(model="tool-call", contents="hi")
        with pytest.raises(errors.ServerError) as caught:
            async for _ in await aio.models.generate_content_stream(model="error-event", contents="hi"):
                pass
    finally:
        await aio.aclose()
    assert "".join(p or "" for p in parts) == SHIPPED["split-utf8"].reply_text
    assert [call.name for call in whole.function_calls or []] == ["get_weather"]
    assert (caught.value.code, caught.value.status) == (500, "INTERNAL")
    assert caught.value.message == "The server had an error while processing your request."


def test_function_calls_with_automatic_calling_off(pack: MockLLMServer) -> None:
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="get_weather")])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    with client(pack) as c:
        chunks = list(c.models.generate_content_stream(model="tool-call", contents="weather?", config=config))
        whole = c.models.generate_content(model="tool-call", contents="weather?", config=config)
    streamed = [call for chunk in chunks for call in chunk.function_calls or []]
    for calls in (streamed, whole.function_calls):
        assert [(call.name, call.args) for call in calls] == [
            ("get_weather", {"city": "Paris", "unit": "celsius"})
        ]
    assert pack.calls.last.conversation.tools == ("get_weather",)


@pytest.mark.parametrize("stream", [False, True])
def test_the_agent_tool_loop(stream: bool) -> None:
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="get_weather")])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    contents: list[Any] = [
        types.Content(role="user", parts=[types.Part(text="What's the weather in Paris?")])
    ]
    with MockLLMServer([SCENARIOS / "agent"]) as server, client(server) as c:
        for _ in range(5):
            if stream:
                chunks = list(
                    c.models.generate_content_stream(
                        model="gemini-2.5-flash", contents=contents, config=config
                    )
                )
                parts = [part for chunk in chunks for part in chunk.candidates[0].content.parts]
            else:
                response = c.models.generate_content(
                    model="gemini-2.5-flash", contents=contents, config=config
                )
                parts = response.candidates[0].content.parts
            calls = [part.function_call for part in parts if part.function_call]
            if not calls:
                break
            contents.append(types.Content(role="model", parts=parts))
            results = [
                types.Part.from_function_response(
                    name=call.name, response={"city": call.args["city"], "temp": 18}
                )
                for call in calls
            ]
            contents.append(types.Content(role="user", parts=results))
        text = "".join(part.text or "" for part in parts)
        assert text == "It is 18 °C in Paris."
        assert [(call.scenario, call.reason) for call in server.calls] == [
            ("ask-weather", "match"),
            ("answer-weather", "match"),
        ]


def test_count_tokens_and_the_system_instruction(serve: Serve) -> None:
    server = serve(
        {"name": "brief", "reply": "Short.", "match": {"system": {"contains": "brief"}}},
        {"name": "other", "reply": "Long.", "default": True},
    )
    with client(server) as c:
        config = types.GenerateContentConfig(system_instruction="Be brief.")
        assert c.models.generate_content(model="x", contents="hi", config=config).text == "Short."
        assert c.models.generate_content(model="x", contents="hi").text == "Long."
        assert c.models.count_tokens(model="x", contents="a" * 40).total_tokens == 10


def test_errors_are_googles_with_retry_info(serve: Serve) -> None:
    server = serve(
        {"name": "limited", "status": 429, "headers": {"Retry-After": "7"}},
        {"name": "metered", "context_window": 2},
        {"name": "quota", "limits": {"rpm": 1}},
    )
    with client(server) as c:
        with pytest.raises(errors.ClientError) as caught:
            c.models.generate_content(model="limited", contents="hi")
        assert (caught.value.code, caught.value.status) == (429, "RESOURCE_EXHAUSTED")
        assert caught.value.details["error"]["details"] == [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}
        ]
        with pytest.raises(errors.ClientError) as caught:
            c.models.generate_content(model="metered", contents="a long prompt here")
        assert (
            caught.value.message
            == "The input token count (5) exceeds the maximum number of tokens allowed (2)."
        )
        c.models.generate_content(model="quota", contents="hi")
        with pytest.raises(errors.ClientError) as caught:
            c.models.generate_content(model="quota", contents="hi")
        assert caught.value.details["error"]["details"][0]["retryDelay"] == "60s"
        with pytest.raises(errors.ClientError) as caught:
            c.models.generate_content(model="m", contents=[types.Content(role="model", parts=[])])
        assert caught.value.status == "INVALID_ARGUMENT"
    missing = httpx.post(f"{server.url}/v1beta/models/m:embedNothing", json={})
    assert missing.json() == {
        "error": {
            "code": 404,
            "message": "Invalid URL (POST /v1beta/models/m:embedNothing)",
            "status": "NOT_FOUND",
        }
    }


def test_the_api_key_comes_as_the_header_or_the_query(serve: Serve) -> None:
    server = serve({"name": "m", "reply": "ok"}, options=Options(api_key="secret"))
    with client(server) as c, pytest.raises(errors.ClientError) as caught:
        c.models.generate_content(model="m", contents="hi")
    assert (caught.value.code, caught.value.status) == (401, "UNAUTHENTICATED")
    options = types.HttpOptions(base_url=server.url)
    with genai.Client(api_key="secret", http_options=options) as c:
        assert c.models.generate_content(model="m", contents="hi").text == "ok"
    url = f"{server.url}/v1beta/models/m:generateContent"
    assert httpx.post(url, params={"key": "secret"}, json=USER).status_code == 200
    assert httpx.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer secret"}).status_code == 200


def test_the_json_array_streams_element_by_element(pack: MockLLMServer) -> None:
    """Without ?alt=sse: read incrementally, each element decodes as soon as its bytes are in."""
    url = f"{pack.url}/v1beta/models/slow:streamGenerateContent"
    decoder, buffer, elements = json.JSONDecoder(), "", []
    with httpx.stream("POST", url, json=USER) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        for text in response.iter_text():
            buffer += text
            while True:
                buffer = buffer.lstrip("[,\r\n ")
                try:
                    element, end = decoder.raw_decode(buffer)
                except json.JSONDecodeError:
                    break
                elements.append(element)
                buffer = buffer[end:]
    assert buffer == "]"
    text = "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in elements)
    assert text == SHIPPED["slow"].reply_text
    assert elements[-1]["candidates"][0]["finishReason"] == "STOP"


# What the async client (aiohttp) does where it differs from the sync one (httpx2), in
# test_formats_shipped.py: its line reader splits at LF only, decodes strictly, and its timeout
# is a deadline for the whole request.
ASYNC_DIFFERENCES: dict[str, tuple[int | str, type[BaseException] | None]] = {
    "cr-only": (0, errors.UnknownApiResponseError),  # one line: "data: {...}\r\rdata: ..."
    "disconnect-fin": (10, aiohttp.ClientPayloadError),
    "disconnect-reset": (10, aiohttp.ClientPayloadError),
    "disconnect-mid-event": (10, aiohttp.ClientPayloadError),
    "flaky-stream": (5, aiohttp.ClientPayloadError),
    "stall-forever": (0, TimeoutError),
    "malformed-bad-utf8": (3, UnicodeDecodeError),
}
ASYNC_TIMEOUT = 2.0  # the slowest finite scenario takes 0.8 s at this time scale


@pytest.fixture(scope="module")
def slow_pack() -> Any:
    with MockLLMServer(SCENARIOS, time_scale=0.05) as server:
        yield server


@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_async_client_on_every_shipped_scenario(slow_pack: MockLLMServer, name: str) -> None:
    slow_pack.state.scenarios.reset_counters()
    seen = gemini_async(slow_pack.url, name, ASYNC_TIMEOUT)
    if name in ASYNC_DIFFERENCES:
        tokens, error = ASYNC_DIFFERENCES[name]
        assert isinstance(tokens, int)
        expected = Seen("".join(SHIPPED[name].tokens[:tokens]), error)
    else:
        expected = expected_seen("gemini", name)
    assert seen.text == expected.text
    assert (seen.error is None) == (expected.error is None), seen.error
    if expected.error is not None:
        assert seen.error is not None
        assert issubclass(seen.error, expected.error), seen.error
    assert slow_pack.errors == []


WHOLE_ARRAYS = (
    "crlf",
    "split-utf8",
    "stall-mid-event",
    "tool-call",
    "keepalive-blank",
    "wire-content-length",
)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_scenario_as_a_json_array(pack: MockLLMServer, name: str) -> None:
    """The JSON-array framing of every scenario: nothing breaks the server, and where no fault
    touches the bytes between elements the body is one JSON array of the reply's chunks."""
    pack.state.scenarios.reset_counters()
    url = f"{pack.url}/v1beta/models/{name}:streamGenerateContent"
    try:
        body = httpx.post(url, json=USER, timeout=0.5).content
    except httpx.HTTPError:
        body = b""
    assert pack.errors == []
    if name in WHOLE_ARRAYS:
        chunks = json.loads(body)
        parts = [part for chunk in chunks for part in chunk["candidates"][0]["content"]["parts"]]
        assert "".join(part.get("text", "") for part in parts) == SHIPPED[name].reply_text
        assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_explain_reads_a_gemini_request(tmp_path: Path) -> None:
    """``mockllm explain --path`` takes a Gemini route: its verb says streamed or not."""
    request = tmp_path / "request.json"
    question = {"contents": [{"parts": [{"text": "What is the weather?"}]}]}
    request.write_text(json.dumps(question), encoding="utf-8")
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    args = ["explain", "--scenario", str(SCENARIOS / "agent"), "--path", path, str(request)]
    result = CliRunner().invoke(main, args)
    assert result.output.splitlines()[-1] == "ask-weather answers (match)"
    request.write_text("{}", encoding="utf-8")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "gemini would refuse this request (400): * GenerateContentRequest.contents" in result.output


def test_per_key_quotas_read_googles_key(serve: Serve) -> None:
    server = serve({"name": "m", "reply": "ok", "limits": {"rpm": 1, "per": "key"}})
    url = f"{server.url}/v1beta/models/m:generateContent"
    statuses = [
        httpx.post(url, json=USER, headers={"x-goog-api-key": "a"}).status_code,
        httpx.post(url, json=USER, headers={"x-goog-api-key": "a"}).status_code,
        httpx.post(url, json=USER, params={"key": "b"}).status_code,
    ]
    assert statuses == [200, 429, 200]  # b has its own bucket


def test_match_format_gemini(serve: Serve) -> None:
    server = serve(
        {"name": "google", "reply": "Gemini.", "match": {"format": "gemini"}},
        {"name": "other", "reply": "Other.", "default": True},
    )
    assert httpx.post(f"{server.url}/v1/models/m:generateContent", json=USER).json()["candidates"][0][
        "content"
    ]["parts"] == [{"text": "Gemini."}]
    chat = httpx.post(
        f"{server.openai_base_url}/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert chat.json()["choices"][0]["message"]["content"] == "Other."
