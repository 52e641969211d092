"""The embeddings formats (mockllm/formats/embeddings.py): requests read, bodies written exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mockllm import scenario_from_dict
from mockllm.embeddings import dumps, vectors_for
from mockllm.formats import FORMATS, Route, serving
from mockllm.formats.embeddings import EmbeddingsFormat, EmbedInput, embed_input

VECTORS = [[1.0, 0.0], [0.0, -0.5]]


def body_text(fmt: str, request: dict[str, Any], route: Route | None = None) -> str:
    format_ = FORMATS[fmt]
    assert isinstance(format_, EmbeddingsFormat)
    parsed = format_.parse_request(request, route or Route())
    return json.dumps(format_.embeddings_body(parsed, "m", VECTORS[: len(embed_input(parsed).texts)]))


def test_openai_body_floats_and_base64() -> None:
    assert body_text("openai-embeddings", {"model": "m", "input": ["abcd", "efgh"]}) == (
        '{"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [1.0, 0.0]}, '
        '{"object": "embedding", "index": 1, "embedding": [0.0, -0.5]}], "model": "m", '
        '"usage": {"prompt_tokens": 2, "total_tokens": 2}}'
    )
    # base64 of little-endian float32: 1.0 = 00 00 80 3f, 0.0 = 00 00 00 00
    assert body_text("openai-embeddings", {"model": "m", "input": "a", "encoding_format": "base64"}) == (
        '{"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": "AACAPwAAAAA="}], '
        '"model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1}}'
    )


def test_ollama_bodies() -> None:
    assert body_text("ollama-embed", {"model": "m", "input": ["abcd", "efgh"]}) == (
        '{"model": "m", "embeddings": [[1.0, 0.0], [0.0, -0.5]], "total_duration": 1500000, '
        '"load_duration": 500000, "prompt_eval_count": 2}'
    )
    assert body_text("ollama-embeddings", {"model": "m", "prompt": "a"}) == '{"embedding": [1.0, 0.0]}'


def test_gemini_bodies() -> None:
    one = {"content": {"parts": [{"text": "a"}]}}
    assert body_text("gemini-embed", one, Route({"model": "m"})) == '{"embedding": {"values": [1.0, 0.0]}}'
    batch = {"requests": [one, one]}
    assert body_text("gemini-batch-embed", batch, Route({"model": "m"})) == (
        '{"embeddings": [{"values": [1.0, 0.0]}, {"values": [0.0, -0.5]}]}'
    )


@pytest.mark.parametrize(
    ("fmt", "body", "route", "model", "embed", "tokens"),
    [
        ("openai-embeddings", {"model": "x", "input": "hi"}, {}, "x", EmbedInput(("hi",), (None,)), 1),
        (
            "openai-embeddings",
            {"model": "x", "input": [1, 2, 3], "dimensions": 8, "encoding_format": "base64"},
            {},
            "x",
            EmbedInput(("1 2 3",), (8,), "base64"),
            3,
        ),
        (
            "openai-embeddings",
            {"model": "x", "input": [[1], [2, 3]]},
            {},
            "x",
            EmbedInput(("1", "2 3"), (None, None)),
            3,
        ),
        ("azure-embeddings", {"input": "hi"}, {"deployment": "d"}, "d", EmbedInput(("hi",), (None,)), 1),
        ("azure-embeddings", {"model": "x", "input": "hi"}, {}, "x", EmbedInput(("hi",), (None,)), 1),
        (
            "ollama-embed",
            {"model": "x", "input": "hi", "dimensions": 4},
            {},
            "x",
            EmbedInput(("hi",), (4,)),
            1,
        ),
        ("ollama-embed", {"model": "x"}, {}, "x", EmbedInput(("",), (None,)), 1),
        ("ollama-embeddings", {"model": "x", "prompt": "hello"}, {}, "x", EmbedInput(("hello",), (None,)), 2),
        (
            "gemini-embed",
            {"content": {"parts": [{"text": "a"}, {"text": "b"}]}, "outputDimensionality": 3},
            {"model": "g"},
            "g",
            EmbedInput(("ab",), (3,)),
            1,
        ),
        (
            "gemini-batch-embed",
            {
                "requests": [
                    {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 2},
                    {"content": {"parts": [{"text": "b"}]}},
                ]
            },
            {"model": "g"},
            "g",
            EmbedInput(("a", "b"), (2, None)),
            1,
        ),
    ],
)
def test_requests_read(
    fmt: str, body: dict[str, Any], route: dict[str, str], model: str, embed: EmbedInput, tokens: int
) -> None:
    parsed = FORMATS[fmt].parse_request(body, Route(route))
    assert parsed.model == model
    assert embed_input(parsed) == embed
    assert parsed.prompt_tokens == tokens
    assert parsed.conversation.last_user == (embed.texts[-1] or None)


@pytest.mark.parametrize(
    ("path", "fmt", "params"),
    [
        ("/v1/embeddings", "openai-embeddings", {}),
        ("/openai/deployments/prod/embeddings", "azure-embeddings", {"deployment": "prod"}),
        ("/openai/v1/embeddings", "azure-embeddings", {}),
        ("/api/embed", "ollama-embed", {}),
        ("/api/embeddings", "ollama-embeddings", {}),
        ("/v1beta/models/text-embedding-004:embedContent", "gemini-embed", {"model": "text-embedding-004"}),
        (
            "/v1/models/gemini-embedding-001:batchEmbedContents",
            "gemini-batch-embed",
            {"model": "gemini-embedding-001"},
        ),
    ],
)
def test_each_route_is_served_by_its_format(path: str, fmt: str, params: dict[str, str]) -> None:
    assert serving(path) == (FORMATS[fmt], Route(params, path=path))


def test_error_shapes() -> None:
    gemini = FORMATS["gemini-embed"]
    message, kind, code = gemini.default_error(429)
    assert gemini.error_body(429, message, type=kind, param=None, code=code) == {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
        }
    }
    assert FORMATS["ollama-embed"].error_body(404, "model not found", type="x", param=None, code=None) == {
        "error": "model not found"
    }
    assert FORMATS["azure-embeddings"].error_body(
        400, "m", type="invalid_request_error", param="input", code=None
    ) == {"error": {"message": "m", "type": "invalid_request_error", "param": "input", "code": None}}


def test_api_keys_as_each_api_sends_them() -> None:
    assert "k" in list(FORMATS["azure-embeddings"].offered_keys({"api-key": "k"}, {}))
    assert "k" in list(FORMATS["gemini-batch-embed"].offered_keys({"x-goog-api-key": "k"}, {}))
    assert "k" in list(FORMATS["gemini-embed"].offered_keys({}, {"key": "k"}))
    assert "k" in list(FORMATS["openai-embeddings"].offered_keys({"Authorization": "Bearer k"}, {}))


@pytest.mark.parametrize(
    ("fmt", "request_body"),
    [
        ("openai-embeddings", {"model": "é", "input": ["a", "b"]}),
        ("openai-embeddings", {"model": "m", "input": "a", "encoding_format": "base64"}),
        ("ollama-embed", {"model": "m", "input": ["a", "b"]}),
        ("ollama-embeddings", {"model": "m", "prompt": "a"}),
        ("gemini-embed", {"content": {"parts": [{"text": "a"}]}}),
        ("gemini-batch-embed", {"requests": [{"content": {"parts": [{"text": "a"}]}}] * 2}),
    ],
)
def test_bodies_are_written_in_pieces_as_json_dumps_writes_them(
    fmt: str, request_body: dict[str, Any]
) -> None:
    format_ = FORMATS[fmt]
    assert isinstance(format_, EmbeddingsFormat)
    parsed = format_.parse_request(request_body, Route({"model": "m"}))
    body = format_.embeddings_body(
        parsed, parsed.model, vectors_for(scenario_from_dict({"embeddings": {}}, name="s"), parsed)
    )
    assert dumps(body) == json.dumps(body)
