"""Bedrock Runtime's request parsing, errors and keys, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from mockllm.conversation import Conversation, Message
from mockllm.formats import FORMATS, RequestError, Route, serving

BEDROCK = FORMATS["bedrock"]


def parse(operation: str, body: Any, model: str = "m") -> Any:
    return BEDROCK.parse_request(body, Route({"modelId": model, "operation": operation}))


def test_converse_into_the_conversation() -> None:
    body = {
        "system": [{"text": "Be brief."}, {"cachePoint": {"type": "default"}}],
        "messages": [
            {"role": "user", "content": [{"text": "Weather in "}, {"text": "Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {"text": "Checking."},
                    {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "t1", "content": [{"json": {"temp": 18}}]}},
                    {"toolResult": {"toolUseId": "t2", "content": [{"text": "sunny"}]}},
                ],
            },
        ],
        "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {}}}}]},
    }
    request = parse("converse-stream", body, "arn:aws:bedrock:us-east-1::foundation-model/x")
    assert request.conversation == Conversation(
        "arn:aws:bedrock:us-east-1::foundation-model/x",
        True,
        "Be brief.",
        (
            Message("user", "Weather in Paris?"),
            Message("assistant", "Checking.", ("get_weather",)),
            Message("tool", '{"temp":18}'),
            Message("tool", "sunny"),
        ),
        ("get_weather",),
    )
    assert request.conversation.tool_result == "sunny"
    assert parse("converse", {"messages": []}).stream is False


def test_invoke_reads_an_anthropic_body_with_the_paths_model() -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 10,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "f", "input_schema": {}}],
    }
    request = parse("invoke-with-response-stream", body, "anthropic.claude-3-haiku")
    assert request.conversation == Conversation(
        "anthropic.claude-3-haiku", True, "Be brief.", (Message("user", "hi"),), ("f",)
    )
    assert request.options == {"api": "invoke"}
    assert {"model", "stream"}.isdisjoint(body)  # the body as sent is not changed
    assert parse("invoke", body).stream is False


@pytest.mark.parametrize(
    ("operation", "body", "status", "message", "param"),
    [
        ("converse", [], 400, "The request body must be a JSON object.", None),
        (
            "converse",
            {"messages": {}},
            400,
            "1 validation error detected: Value at 'messages' failed to satisfy constraint: Member must be a list",
            "messages",
        ),
        (
            "converse",
            {"messages": [{"role": "user", "content": []}, {"role": "user", "content": "x"}]},
            400,
            "1 validation error detected: Value at 'messages.2.member.content' failed to satisfy constraint: "
            "Member must not be null and must be a list",
            "messages.2.member.content",
        ),
        (
            "converse-stream",
            {"toolConfig": {}},
            400,
            "1 validation error detected: Value at 'toolConfig.tools' failed to satisfy constraint: "
            "Member must not be null and must be a list",
            "toolConfig.tools",
        ),
        (
            "invoke",
            {"anthropic_version": "bedrock-2023-05-31", "messages": []},
            400,
            "Malformed input request: max_tokens: Field required, please reformat your input and try again.",
            "max_tokens",
        ),
        (
            "predict",
            {},
            404,
            "Unknown operation 'predict': Bedrock Runtime has converse, converse-stream, invoke, "
            "invoke-with-response-stream.",
            None,
        ),
    ],
)
def test_bad_requests(operation: str, body: Any, status: int, message: str, param: str | None) -> None:
    with pytest.raises(RequestError) as error:
        parse(operation, body)
    assert (error.value.status, error.value.message, error.value.param) == (status, message, param)


@pytest.mark.parametrize(
    ("status", "type_", "exception"),
    [
        (400, "invalid_request_error", "ValidationException"),
        (404, "invalid_request_error", "ResourceNotFoundException"),
        (404, "UnknownOperationException", "UnknownOperationException"),
        (418, "invalid_request_error", "ValidationException"),
        (429, "rate_limit_error", "ThrottlingException"),
        (500, "server_error", "InternalServerException"),
        (500, "throttlingException", "ThrottlingException"),
        (503, "server_error", "ServiceUnavailableException"),
        (529, "server_error", "InternalServerException"),
    ],
)
def test_http_errors_name_their_exception_in_x_amzn_errortype(
    status: int, type_: str, exception: str
) -> None:
    headers = BEDROCK.error_headers(status, type_)
    assert headers == {
        "x-amzn-ErrorType": f"{exception}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    }
    assert BEDROCK.error_body(status, "Nope.", type=type_, param=None, code=None) == {"message": "Nope."}


def test_offered_keys_are_a_bearer_key_or_the_signatures_access_key_id() -> None:
    signed = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDX/20260101/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    }
    assert list(BEDROCK.offered_keys(signed, {})) == ["AKIDX"]
    assert list(BEDROCK.offered_keys({"Authorization": "Bearer k"}, {})) == ["k"]
    assert list(BEDROCK.offered_keys({"x-api-key": "k"}, {})) == []


def test_every_operation_is_served_on_one_route() -> None:
    for operation in ("converse", "converse-stream", "invoke", "invoke-with-response-stream"):
        served = serving(f"/model/anthropic.claude-3-haiku/{operation}")
        assert served is not None
        assert served[0] is BEDROCK
        assert served[1].params == {"modelId": "anthropic.claude-3-haiku", "operation": operation}
