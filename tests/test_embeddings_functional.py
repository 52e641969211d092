"""The embeddings routes read by the official SDKs (openai, AzureOpenAI, ollama, google-genai),
their errors in each API's shape, and the faults that apply to them."""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import ollama
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockllm import MockLLMServer
from mockllm.state import Options
from mockllm.vectors import cosine, vector

from .conftest import Serve

pytestmark = pytest.mark.functional

SCENARIOS: list[dict[str, Any]] = [
    {"name": "chat", "reply": "Hello", "default": True},
    {"name": "paced", "reply": "x" * 60, "timing": {"per_token": "10ms"}},
    {
        "name": "pinned",
        "embeddings": {"dimensions": 3, "vectors": {"hello": [1, 0, 0], "bye": [0, 0.6, 0.8]}},
    },
    {"name": "limited", "embeddings": {}, "status": 429, "headers": {"Retry-After": "1"}},
    {"name": "flaky", "embeddings": {"dimensions": 2}, "sequence": [{"status": 503}, {}]},
    {
        "name": "ask-codeword",
        "embeddings": {"dimensions": 2},
        "match": {"last_user": {"contains": "codeword"}},
    },
    *(
        {"name": mode, "reply": "x", "faults": [{"at": 0, "disconnect": mode}]}
        for mode in ("fin", "reset", "mid-event", "truncate")
    ),
    {"name": "broken", "reply": "x", "faults": [{"at": 0, "error_event": {"message": "boom"}}]},
    {"name": "slow", "embeddings": {}, "first_byte": "0.3s"},
    {"name": "stalled", "reply": "x", "faults": [{"at": 0, "stall": "0.2s"}, {"at": 0, "stall": "0.1s"}]},
    {"name": "hung", "reply": "x", "faults": [{"at": 0, "stall": "forever"}]},
]


@pytest.fixture(scope="module")
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer(SCENARIOS) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(server: MockLLMServer) -> Iterator[None]:
    server.reset()
    yield
    assert server.errors == []


class Clients:
    """Each SDK's client for one test, closed after it (an unclosed pool leaves a socket open)."""

    def __init__(self, server: MockLLMServer) -> None:
        self.server = server
        self.opened: list[Any] = []

    def _keep(self, client: Any) -> Any:
        self.opened.append(client)
        return client

    def openai(self, timeout: float = 5) -> openai.OpenAI:
        url = self.server.openai_base_url
        return self._keep(openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=timeout))

    def azure(self, api_key: str = "azure-key") -> openai.AzureOpenAI:
        return self._keep(
            openai.AzureOpenAI(
                azure_endpoint=self.server.url,
                api_key=api_key,
                api_version="2024-10-21",
                max_retries=0,
                timeout=5,
            )
        )

    def ollama(self) -> ollama.Client:
        return self._keep(ollama.Client(host=self.server.url, timeout=5))

    def gemini(self, version: str | None = None, api_key: str = "gemini-key") -> genai.Client:
        options = genai_types.HttpOptions(base_url=self.server.url, timeout=5000)
        if version is not None:
            options.api_version = version
        return self._keep(genai.Client(api_key=api_key, http_options=options))

    def close(self) -> None:
        for client in self.opened:
            client.close()


@pytest.fixture
def clients(server: MockLLMServer) -> Iterator[Clients]:
    made = Clients(server)
    yield made
    made.close()


def unit(values: list[float]) -> bool:
    return math.hypot(*values) == pytest.approx(1.0, abs=1e-6)


# -- the SDKs --------------------------------------------------------------------------------------


def test_openai_sdk_floats(server: MockLLMServer, clients: Clients) -> None:
    client = clients.openai()
    result = client.embeddings.create(
        model="text-embedding-3-small", input=["Paris weather", "tax law"], encoding_format="float"
    )
    assert [d.index for d in result.data] == [0, 1]
    first = result.data[0].embedding
    assert len(first) == 1536
    assert unit(first)
    assert first == vector("Paris weather", 1536)
    assert result.model == "text-embedding-3-small"
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (5, 5)  # 20 characters / 4
    call = server.calls.last
    assert (call.format, call.scenario, call.status, call.outcome) == (
        "openai-embeddings",
        "chat",
        200,
        "completed",
    )


def test_openai_sdk_base64_asked_for_and_by_default(server: MockLLMServer, clients: Clients) -> None:
    client = clients.openai()
    explicit = client.embeddings.create(
        model="text-embedding-3-large", input="Paris weather", encoding_format="base64", dimensions=256
    )
    # asked for explicitly, the SDK hands the string over as it came: little-endian float32
    text = explicit.data[0].embedding
    assert isinstance(text, str)
    decoded = list(struct.unpack("<256f", base64.b64decode(text)))
    assert decoded == vector("Paris weather", 256)
    # by default the SDK asks for base64 itself and decodes it to floats
    default = client.embeddings.create(model="text-embedding-3-large", input="Paris weather")
    assert server.calls.last.json["encoding_format"] == "base64"
    assert default.data[0].embedding == vector("Paris weather", 3072)


def test_openai_sdk_token_arrays(server: MockLLMServer, clients: Clients) -> None:
    client = clients.openai()
    result = client.embeddings.create(model="m", input=[[15339, 1917], [15339]], encoding_format="float")
    assert len(result.data) == 2
    assert all(unit(d.embedding) for d in result.data)
    assert result.data[0].embedding == vector("15339 1917", 1536)
    assert result.usage.prompt_tokens == 3  # one per token id


async def test_async_openai_sdk(server: MockLLMServer) -> None:
    client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="x", max_retries=0)
    async with client:
        result = await client.embeddings.create(model="text-embedding-3-small", input="hi", dimensions=8)
    assert result.data[0].embedding == vector("hi", 8)


def test_azure_client_on_the_deployment_route(server: MockLLMServer, clients: Clients) -> None:
    result = clients.azure().embeddings.create(model="prod-text-embedding-3-large", input="hi")
    call = server.calls.last
    assert call.path == "/openai/deployments/prod-text-embedding-3-large/embeddings"
    assert call.format == "azure-embeddings"
    assert call.headers["api-key"] == "azure-key"
    assert result.model == "prod-text-embedding-3-large"
    assert result.data[0].embedding == vector("hi", 3072)  # the size the deployment's name says


def test_azure_deployment_selects_like_a_model(server: MockLLMServer, clients: Clients) -> None:
    result = clients.azure().embeddings.create(model="pinned", input="hello", encoding_format="float")
    assert result.data[0].embedding == [1, 0, 0]
    assert server.calls.last.scenario == "pinned"


def test_azure_v1_route(server: MockLLMServer) -> None:
    with openai.OpenAI(base_url=f"{server.url}/openai/v1/", api_key="azure-key", max_retries=0) as client:
        result = client.embeddings.create(model="text-embedding-3-small", input="hi", dimensions=4)
    assert server.calls.last.path == "/openai/v1/embeddings"
    assert server.calls.last.format == "azure-embeddings"
    assert result.data[0].embedding == vector("hi", 4)


def test_ollama_sdk_embed_and_embeddings(server: MockLLMServer, clients: Clients) -> None:
    client = clients.ollama()
    result = client.embed(model="nomic-embed-text", input=["Paris weather", "tax law"])
    assert [len(e) for e in result.embeddings] == [1536, 1536]
    assert list(result.embeddings[1]) == vector("tax law", 1536)
    assert result.model == "nomic-embed-text"
    assert result.prompt_eval_count == 5
    assert server.calls.last.format == "ollama-embed"
    one = client.embed(model="nomic-embed-text", input="hi")
    assert len(one.embeddings) == 1
    legacy = client.embeddings(model="nomic-embed-text", prompt="Paris weather")
    assert list(legacy.embedding) == vector("Paris weather", 1536)
    assert server.calls.last.format == "ollama-embeddings"


@pytest.mark.parametrize("version", [None, "v1beta"])
def test_google_genai_embed_content(server: MockLLMServer, version: str | None, clients: Clients) -> None:
    client = clients.gemini(version)
    result = client.models.embed_content(model="text-embedding-004", contents=["Paris weather", "tax law"])
    assert result.embeddings is not None
    values = [e.values for e in result.embeddings]
    assert values == [vector("Paris weather", 768), vector("tax law", 768)]
    call = server.calls.last
    prefix = "/v1beta" if version == "v1beta" else "/v1"  # 3.x calls v1 unless told otherwise
    assert call.path == f"{prefix}/models/text-embedding-004:batchEmbedContents"
    assert call.format == "gemini-batch-embed"
    sized = client.models.embed_content(
        model="gemini-embedding-001",
        contents="hi",
        config=genai_types.EmbedContentConfig(output_dimensionality=16),
    )
    assert sized.embeddings is not None
    assert sized.embeddings[0].values == vector("hi", 16)


@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
async def test_google_genai_async(server: MockLLMServer, clients: Clients) -> None:
    client = clients.gemini()
    try:
        result = await client.aio.models.embed_content(model="text-embedding-004", contents="hi")
    finally:
        await client.aio.aclose()
    assert result.embeddings is not None
    assert result.embeddings[0].values == vector("hi", 768)


GEMINI_BODY = {"content": {"parts": [{"text": "Paris "}, {"text": "weather"}]}, "outputDimensionality": 4}


def test_gemini_embed_content_route(server: MockLLMServer) -> None:
    response = httpx.post(f"{server.url}/v1beta/models/text-embedding-004:embedContent", json=GEMINI_BODY)
    assert response.status_code == 200
    assert response.json() == {"embedding": {"values": vector("Paris weather", 4)}}
    assert server.calls.last.format == "gemini-embed"


async def test_async_azure_client(server: MockLLMServer) -> None:
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=server.url, api_key="azure-key", api_version="2024-10-21", max_retries=0
    )
    async with client:
        result = await client.embeddings.create(model="text-embedding-3-small", input="hi")
    assert server.calls.last.path == "/openai/deployments/text-embedding-3-small/embeddings"
    assert result.data[0].embedding == vector("hi", 1536)


# -- retrieval -------------------------------------------------------------------------------------


def test_cosine_retrieval_through_the_sdk(server: MockLLMServer, clients: Clients) -> None:
    documents = [
        "Income tax law changes for 2025",
        "Paris weather forecast: sunny, 24 degrees",
        "The best croissants in Lyon",
    ]
    client = clients.openai()
    embedded = client.embeddings.create(model="text-embedding-3-small", input=documents)
    query = client.embeddings.create(model="text-embedding-3-small", input="Paris weather").data[0].embedding
    scores = [cosine(query, d.embedding) for d in embedded.data]
    assert max(range(3), key=scores.__getitem__) == 1
    near = client.embeddings.create(model="text-embedding-3-small", input=["weather in Paris", "tax law"])
    assert cosine(query, near.data[0].embedding) > 0.8 > 0.2 > abs(cosine(query, near.data[1].embedding))


def test_a_large_request_is_answered_while_a_stream_keeps_its_pace(
    server: MockLLMServer, clients: Clients
) -> None:
    texts = [f"document number {i} about the weather in Paris" for i in range(1000)]
    body = {"model": "paced", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream(
        "POST", f"{server.openai_base_url}/chat/completions", json=body, timeout=10
    ) as streamed:
        chunks = streamed.iter_bytes()
        next(chunks)  # the stream has begun; it goes on while this thread asks for 1,000 vectors
        # ~0.4 s of work on this machine: in a thread (THREAD_AT), so the stream's ticks still run
        result = clients.openai().embeddings.create(model="text-embedding-3-large", input=texts)
        assert b"[DONE]" in b"".join(chunks)
    assert len(result.data) == 1000
    assert result.data[999].embedding == vector(texts[999], 3072)
    stream = server.calls[0].wait()
    assert stream.outcome == "completed"
    assert stream.max_lateness < 0.15  # inline, the loop would be blocked for the whole request


# -- scenarios -------------------------------------------------------------------------------------


def test_pinned_vectors_and_the_scenarios_size(server: MockLLMServer, clients: Clients) -> None:
    client = clients.openai()
    result = client.embeddings.create(
        model="pinned", input=["hello", "bye", "other"], encoding_format="float", dimensions=64
    )
    assert [d.embedding for d in result.data[:2]] == [[1, 0, 0], [0, 0.6, 0.8]]
    assert result.data[2].embedding == vector("other", 3)  # the scenario's size wins over the request's


def test_selection_by_header_and_by_match_on_the_input(server: MockLLMServer, clients: Clients) -> None:
    client = clients.openai()
    client.embeddings.create(model="m", input="hi", extra_headers={"X-Mockllm-Scenario": "pinned"})
    assert server.calls.last.scenario == "pinned"
    result = client.embeddings.create(model="m", input=["a", "the codeword"], encoding_format="float")
    assert server.calls.last.scenario == "ask-codeword"
    assert server.calls.last.reason == "match"
    assert len(result.data[0].embedding) == 2
    client.embeddings.create(model="m", input=["the codeword", "a"])  # last_user is the last input
    assert server.calls.last.scenario == "chat"


def test_a_sequence_step_then_the_vectors(server: MockLLMServer, clients: Clients) -> None:
    client = clients.openai()
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="flaky", input="hi")
    assert len(client.embeddings.create(model="flaky", input="hi").data[0].embedding) == 2


def test_first_byte_and_stalls_delay_the_answer(server: MockLLMServer, clients: Clients) -> None:
    client = clients.openai()
    for name, at_least in [("slow", 0.3), ("stalled", 0.3)]:
        client.embeddings.create(model=name, input="hi")
        call = server.calls.last
        assert call.ended is not None
        assert call.ended - call.started >= at_least, name


def test_error_event_is_a_500_in_the_routes_shape(server: MockLLMServer, clients: Clients) -> None:
    with pytest.raises(openai.InternalServerError, match="boom"):
        clients.openai().embeddings.create(model="broken", input="hi")
    google = clients.gemini()
    with pytest.raises(genai_errors.ServerError, match="boom"):
        google.models.embed_content(model="broken", contents="hi")
    assert server.calls.last.outcome == "fault:error_event"


def test_stall_forever_never_answers(server: MockLLMServer, clients: Clients) -> None:
    with pytest.raises(openai.APITimeoutError):
        clients.openai(timeout=0.3).embeddings.create(model="hung", input="hi")
    assert server.calls.last.wait().outcome == "fault:stall-forever"


# What each SDK raises on each fault (as the chaos-pack table does for chat).
READERS: dict[str, Callable[[Clients, str], object]] = {
    "openai": lambda clients, name: clients.openai().embeddings.create(model=name, input="hi"),
    "azure": lambda clients, name: clients.azure().embeddings.create(model=name, input="hi"),
    "ollama": lambda clients, name: clients.ollama().embed(model=name, input="hi"),
    "google-genai": lambda clients, name: clients.gemini().models.embed_content(model=name, contents="hi"),
}
RAISES = {
    "limited": {
        "openai": "RateLimitError",
        "azure": "RateLimitError",
        "ollama": "ResponseError",
        "google-genai": "ClientError",
    },
    "fin": {
        "openai": "APIConnectionError",
        "azure": "APIConnectionError",
        "ollama": "RemoteProtocolError",
        "google-genai": "RemoteProtocolError",
    },
    "reset": {
        "openai": "APIConnectionError",
        "azure": "APIConnectionError",
        "ollama": "ReadError",
        "google-genai": "ReadError",
    },
    "mid-event": {
        "openai": "APIConnectionError",
        "azure": "APIConnectionError",
        "ollama": "RemoteProtocolError",
        "google-genai": "RemoteProtocolError",
    },
    "truncate": {
        "openai": "JSONDecodeError",
        "azure": "JSONDecodeError",
        "ollama": "JSONDecodeError",
        "google-genai": "JSONDecodeError",
    },
}


@pytest.mark.parametrize("sdk", list(READERS))
@pytest.mark.parametrize("name", list(RAISES))
def test_what_each_sdk_raises_on_each_fault(
    server: MockLLMServer, clients: Clients, name: str, sdk: str
) -> None:
    try:
        READERS[sdk](clients, name)
    except Exception as exc:  # the table pins which one
        raised: str | None = type(exc).__name__
    else:
        raised = None
    assert raised == RAISES[name][sdk]
    assert server.calls.last.wait().outcome == ("fault:status" if name == "limited" else f"fault:{name}")


def test_a_429_in_each_routes_shape(server: MockLLMServer, clients: Clients) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        clients.openai().embeddings.create(model="limited", input="hi")
    assert raised.value.response.headers["Retry-After"] == "1"
    assert raised.value.body == {
        "message": "Rate limit reached for requests. Please try again later.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    with pytest.raises(ollama.ResponseError) as by_ollama:
        clients.ollama().embed(model="limited", input="hi")
    assert (by_ollama.value.status_code, by_ollama.value.error) == (429, "too many requests")
    google = clients.gemini()
    with pytest.raises(genai_errors.ClientError) as by_google:
        google.models.embed_content(model="limited", contents="hi")
    assert (by_google.value.code, by_google.value.status) == (429, "RESOURCE_EXHAUSTED")
    # the Retry-After in the body too, as google.rpc.RetryInfo (as the generate routes say it)
    assert by_google.value.details["error"]["details"] == [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}
    ]


def test_limits_count_the_input_not_the_scenarios_reply(serve: Serve) -> None:
    server = serve(
        {"name": "tpm", "reply": "x" * 100, "limits": {"tpm": 10}},
        {"name": "rpm", "embeddings": {}, "limits": {"rpm": 1}},
    )
    with openai.OpenAI(base_url=server.openai_base_url, api_key="x", max_retries=0) as client:
        for _ in range(10):  # one token each: the 100-token reply is never sent, so never counted
            client.embeddings.create(model="tpm", input="abcd")
        with pytest.raises(openai.RateLimitError):
            client.embeddings.create(model="tpm", input="abcd")
        client.embeddings.create(model="rpm", input="a")
        with pytest.raises(openai.RateLimitError) as caught:
            client.embeddings.create(model="rpm", input="a")
    assert float(caught.value.response.headers["Retry-After"]) > 0
    limited = httpx.post(f"{server.url}/api/embed", json={"model": "rpm", "input": "a"})
    assert (limited.status_code, limited.json()) == (429, {"error": "too many requests"})


def test_pinned_vectors_per_sequence_step(serve: Serve) -> None:
    steps = [{"embeddings": {"vectors": {"hi": [1, 0]}}}, {"embeddings": {"vectors": {"hi": [0, 1]}}}]
    server = serve({"name": "steps", "embeddings": {"dimensions": 2}, "sequence": steps})
    with openai.OpenAI(base_url=server.openai_base_url, api_key="x", max_retries=0) as client:
        got = [
            client.embeddings.create(model="steps", input="hi", encoding_format="float").data[0].embedding
            for _ in range(3)
        ]
    assert got == [[1, 0], [0, 1], [0, 1]]  # the last step repeats


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/embeddings", {"model": "m", "input": ["a"] * 2048, "dimensions": 3073}),
        ("/api/embed", {"model": "m", "input": ["a"] * 2048, "dimensions": 3073}),
    ],
)
def test_an_answer_past_the_largest_real_one_is_a_400(server: MockLLMServer, path: str, body: Any) -> None:
    response = httpx.post(server.url + path, json=body, timeout=10)
    assert response.status_code == 400
    assert error_message(path, response.json()) == (
        "2048 vectors of this size are 6,293,504 numbers: mockllm sends at most 6,291,456."
    )


def test_the_largest_real_answer_is_sent(server: MockLLMServer, clients: Clients) -> None:
    result = clients.openai(timeout=30).embeddings.create(
        model="text-embedding-3-large", input=["a b"] * 2048
    )
    assert len(result.data) == 2048
    assert result.data[2047].embedding == vector("a b", 3072)


# -- bad requests ----------------------------------------------------------------------------------

OPENAI_INVALID_INPUT = (
    "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
)
BAD = [
    ("/v1/embeddings", {"model": "m"}, "Missing required parameter: 'input'."),
    ("/v1/embeddings", {"input": "hi"}, "Missing required parameter: 'model'."),
    ("/v1/embeddings", {"model": "m", "input": ""}, OPENAI_INVALID_INPUT),
    ("/v1/embeddings", {"model": "m", "input": []}, OPENAI_INVALID_INPUT),
    ("/v1/embeddings", {"model": "m", "input": ["a", 1]}, OPENAI_INVALID_INPUT),
    ("/v1/embeddings", {"model": "m", "input": [[1, -1]]}, OPENAI_INVALID_INPUT),
    (
        "/v1/embeddings",
        {"model": "m", "input": ["a"] * 2049},
        "'$.input' holds 2049 inputs: at most 2048 are allowed.",
    ),
    (
        "/v1/embeddings",
        {"model": "m", "input": "a", "encoding_format": "int8"},
        "Invalid value for 'encoding_format': 'int8' is not one of 'float', 'base64'.",
    ),
    (
        "/v1/embeddings",
        {"model": "m", "input": "a", "dimensions": 0},
        "Invalid 'dimensions': mockllm makes vectors of 1 to 8192 dimensions, not 0.",
    ),
    (
        "/v1/embeddings",
        {"model": "m", "input": "a", "dimensions": "8"},
        "Invalid type for 'dimensions': expected an integer, but got a string instead.",
    ),
    (
        "/openai/deployments/d/embeddings?api-version=2024-10-21",
        {"input": 5},
        "Invalid type for 'input': expected a string or an array, but got an integer instead.",
    ),
    ("/openai/deployments/d/embeddings", {"input": [True]}, OPENAI_INVALID_INPUT),
    ("/openai/v1/embeddings", {"input": "a"}, "Missing required parameter: 'model'."),
    ("/api/embed", {"input": "a"}, "model is required"),
    ("/api/embed", {"model": "m", "input": [1]}, "invalid input type"),
    ("/api/embed", {"model": "m", "input": "a", "dimensions": 9000}, "invalid dimensions: 9000"),
    ("/api/embeddings", {"model": "m", "prompt": ["a"]}, "prompt must be a string"),
    (
        "/v1beta/models/m:embedContent",
        {"content": {"parts": []}},
        "* content: contents.parts must not be empty.",
    ),
    (
        "/v1/models/m:embedContent",
        {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": "8"},
        "Invalid value at 'output_dimensionality', expected an integer.",
    ),
    (
        "/v1beta/models/m:batchEmbedContents",
        {"requests": []},
        "* BatchEmbedContentsRequest.requests: must not be empty.",
    ),
    (
        "/v1/models/m:batchEmbedContents",
        {"requests": [{"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 0}]},
        "Invalid 'requests[0].output_dimensionality': mockllm makes vectors of 1 to 8192 dimensions, not 0.",
    ),
    (
        "/v1/models/m:batchEmbedContents",
        {"requests": [{"content": {"parts": [{"text": "a"}]}}] * 101},
        "* BatchEmbedContentsRequest.requests: at most 100 requests can be in a batch",
    ),
]


def error_message(path: str, body: Any) -> str:
    """The message of an error body, checking it is in the shape of the API that owns ``path``."""
    if path.startswith("/api/"):
        assert set(body) == {"error"}, body
        assert isinstance(body["error"], str), body
        return str(body["error"])
    if ":" in path:  # Gemini
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "status"}, body
        assert body["error"]["code"] == 400, body
        assert body["error"]["status"] == "INVALID_ARGUMENT", body
        return str(body["error"]["message"])
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return str(body["error"]["message"])


@pytest.mark.parametrize(("path", "body", "message"), BAD)
def test_bad_requests_get_a_400_in_the_routes_shape(
    server: MockLLMServer, path: str, body: Any, message: str
) -> None:
    response = httpx.post(server.url + path, json=body)
    assert response.status_code == 400
    assert error_message(path.partition("?")[0], response.json()) == message


ROUTES = [
    "/v1/embeddings",
    "/openai/deployments/d/embeddings",
    "/openai/v1/embeddings",
    "/api/embed",
    "/api/embeddings",
    "/v1beta/models/m:embedContent",
    "/v1/models/m:batchEmbedContents",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "model",
        "input",
        "prompt",
        "dimensions",
        "encoding_format",
        "content",
        "requests",
        "outputDimensionality",
    ]
)
bodies = st.dictionaries(keys, json_values, max_size=5) | json_values


@pytest.mark.robustness
@pytest.mark.parametrize("path", ROUTES)
def test_any_body_gets_an_answer_never_a_5xx(server: MockLLMServer, path: str) -> None:
    with httpx.Client(timeout=10) as client:

        @settings(
            max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
        )
        @given(body=bodies)
        def run(body: Any) -> None:
            response = client.post(server.url + path, json=body)
            assert response.status_code in (200, 400), (path, body, response.text[:300])
            if response.status_code == 400:
                error_message(path, response.json())
            assert server.errors == []

        run()


def test_api_keys_as_each_api_sends_them(serve: Serve) -> None:
    server = serve({"name": "chat"}, options=Options(api_key="secret"))
    clients = Clients(server)
    try:
        with pytest.raises(openai.AuthenticationError):
            clients.azure(api_key="wrong").embeddings.create(model="d", input="a")
        assert clients.azure(api_key="secret").embeddings.create(model="d", input="a").data  # api-key header
        google = clients.gemini(api_key="secret")  # x-goog-api-key
        assert google.models.embed_content(model="text-embedding-004", contents="a").embeddings
        with pytest.raises(genai_errors.ClientError) as caught:
            clients.gemini(api_key="wrong").models.embed_content(model="text-embedding-004", contents="a")
        assert (caught.value.code, caught.value.status) == (401, "UNAUTHENTICATED")
    finally:
        clients.close()
    by_query = httpx.post(f"{server.url}/v1beta/models/m:embedContent?key=secret", json=GEMINI_BODY)
    assert by_query.status_code == 200
    ollama_raw = httpx.post(f"{server.url}/api/embed", json={"model": "m", "input": "a"})
    assert (ollama_raw.status_code, ollama_raw.json()) == (401, {"error": "unauthorized"})


def test_a_wrong_method_is_answered_in_the_routes_shape(server: MockLLMServer) -> None:
    response = httpx.get(f"{server.url}/v1beta/models/m:embedContent")
    assert (response.status_code, response.json()) == (
        405,
        {
            "error": {
                "code": 405,
                "message": "Method GET is not allowed for /v1beta/models/m:embedContent",
                "status": "INVALID_ARGUMENT",
            }
        },
    )
    response = httpx.get(f"{server.url}/api/embed")
    assert (response.status_code, response.json()) == (
        405,
        {"error": "Method GET is not allowed for /api/embed"},
    )
    response = httpx.get(f"{server.url}/openai/deployments/d/embeddings")
    assert response.status_code == 405
    assert (
        response.json()["error"]["message"]
        == "Method GET is not allowed for /openai/deployments/d/embeddings"
    )
