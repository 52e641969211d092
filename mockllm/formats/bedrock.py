"""AWS Bedrock Runtime: ``POST /model/{modelId}/converse-stream``, ``/converse``,
``/invoke-with-response-stream`` and ``/invoke``.

The model is the path's ``modelId`` (an ARN comes percent-encoded, ``/`` as ``%2F``; aiohttp
decodes it). ``Converse``/``ConverseStream`` are Bedrock's own, model-neutral shapes
(:mod:`mockllm.formats.bedrock_converse`). ``InvokeModel`` bodies are the model's own: mockllm
speaks Anthropic Messages there, as Claude on Bedrock does (``anthropic_version``, no ``model``,
no ``stream``: the route says), reusing :mod:`mockllm.formats.anthropic`'s parser and events;
each streamed event is a ``chunk`` message whose payload is ``{"bytes": base64(event JSON)}``
(``PayloadPart``), and ``message_stop`` carries ``amazon-bedrock-invocationMetrics``.

Streams are ``application/vnd.amazon.eventstream`` (:mod:`mockllm.eventstream`); an in-stream
error is an exception message (:mod:`mockllm.formats.bedrock_errors`), an HTTP error carries
``x-amzn-ErrorType`` and ``{"message": ...}``. Faults in the framing's own terms: ``malformed:
bad-crc`` is a message whose CRC is wrong; ``split`` and ``stall: mid_event`` write a message in
two writes (``utf8`` cuts inside its payload); ``disconnect: mid-event`` sends half a message
then FIN; the JSON kinds put a broken payload in a well-formed message; ``missing-prefix`` sends
the payload with no message around it. The event stream has no keep-alive: a stall's keep-alives
write nothing. Of the ``wire`` options only ``framing``, ``content_type`` and ``flush`` apply.

Authentication: a SigV4 ``Authorization`` header is accepted and its signature never checked.
With ``--api-key KEY``, a request passes if it carries ``Authorization: Bearer KEY`` (a Bedrock
API key, which boto3 sends from ``AWS_BEARER_TOKEN_BEDROCK``) or is signed with the access key
id ``KEY`` (the ``Credential=KEY/...`` of the signature), else it gets 401
``UnrecognizedClientException``.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable, Mapping
from typing import Any

from ..encoder import BAD_UTF8, BAD_UTF8_MARK, EventEncoder, Payloads, dumps
from ..events import Finish, Malformed, Payload, StreamError, Token
from ..eventstream import CONTENT_TYPE, EventStreamFramer
from ..scenario import Scenario
from . import (
    FORMATS,
    NO_ROUTE,
    ApiRequest,
    RequestError,
    Route,
    StreamContext,
    WholeReply,
    WireFormat,
    register,
)
from .anthropic import AnthropicEncoder
from .bedrock_converse import ConverseEncoder, converse_body, latency_ms, parse_converse
from .bedrock_errors import NAMESPACE, exception_payload, http_error, http_exception

#: Each operation's last path segment, and whether it streams.
OPERATIONS = {
    "converse": False,
    "converse-stream": True,
    "invoke": False,
    "invoke-with-response-stream": True,
}


class InvokeEncoder(EventEncoder):
    """``InvokeModelWithResponseStream`` of an Anthropic model: the Anthropic stream's events, each
    the base64 ``bytes`` of a ``chunk`` message."""

    def __init__(self, scenario: Scenario, request: ApiRequest, context: StreamContext) -> None:
        super().__init__(EventStreamFramer())
        self.anthropic = AnthropicEncoder(scenario, request, context)
        self.scenario = scenario
        self.prompt_tokens = request.prompt_tokens

    @staticmethod
    def _chunk(data: bytes) -> tuple[str, bytes]:
        return "chunk", b'{"bytes":"%b"}' % base64.b64encode(data)

    def payloads(self, event: Payload) -> Payloads:
        if isinstance(event, StreamError):
            return [exception_payload(event)]
        out = self.anthropic.payloads(event)
        if isinstance(event, Finish):  # the metrics Bedrock adds to the last event
            metrics = {
                "inputTokenCount": self.prompt_tokens,
                "outputTokenCount": event.completion_tokens,
                "invocationLatency": latency_ms(self.scenario, event.completion_tokens),
                "firstByteLatency": latency_ms(self.scenario, 1),
            }
            stop = {"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics}
            out = [*out[:-1], ("message_stop", dumps(stop).encode())]
        return [self._chunk(data) for _, data in out]

    def malformed(self, event: Malformed) -> bytes:
        """``bad-utf8``: the bytes FF FE inside the Anthropic event the chunk carries (base64
        hides them from the event stream: the application's JSON decoding meets them)."""
        if event.kind != "bad-utf8":
            return super().malformed(event)
        token = event.next if isinstance(event.next, Token) else Token(0, "")
        marked = Token(token.index, BAD_UTF8_MARK, tool=token.tool)
        _, data = copy.deepcopy(self.anthropic).payloads(marked)[-1]
        return self._frame(*self._chunk(data.replace(BAD_UTF8_MARK.encode(), BAD_UTF8)))


class BedrockRuntime(WireFormat):
    name = "bedrock"
    path = "/model/{modelId}/converse-stream"
    routes = ("/model/{modelId}/{operation}",)
    prefixes = ("/model/",)
    style = "anthropic"
    content_type = CONTENT_TYPE
    id_prefix = "msg_bdrk_mockllm_"

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        operation, model = route.params.get("operation", "converse-stream"), route.params.get("modelId", "")
        if operation not in OPERATIONS:
            known = ", ".join(OPERATIONS)
            raise RequestError(
                404,
                f"Unknown operation {operation!r}: Bedrock Runtime has {known}.",
                type="UnknownOperationException",
            )
        stream = OPERATIONS[operation]
        if operation.startswith("converse"):
            return ApiRequest.of(parse_converse(body, model, stream), api="converse")
        if not isinstance(body, dict):
            raise RequestError(400, "The request body must be a JSON object.")
        if "anthropic_version" not in body:
            raise _malformed_input("#: required key [anthropic_version] not found", "anthropic_version")
        try:
            parsed = FORMATS["anthropic"].parse_request({**body, "model": model, "stream": stream})
        except RequestError as exc:
            raise _malformed_input(exc.message, exc.param) from None
        return ApiRequest.of(parsed.conversation, api="invoke")

    def stream_headers(self, request: ApiRequest) -> dict[str, str]:
        """InvokeModelWithResponseStream names the model's content type (boto3's ``contentType``)."""
        return (
            {"X-Amzn-Bedrock-Content-Type": "application/json"}
            if request.options.get("api") == "invoke"
            else {}
        )

    def stream_encoder(self, scenario: Scenario, request: ApiRequest, context: StreamContext) -> EventEncoder:
        if request.options.get("api") == "invoke":
            return InvokeEncoder(scenario, request, context)
        return ConverseEncoder(scenario, request, context)

    def response_body(self, request: ApiRequest, context: StreamContext, reply: WholeReply) -> dict[str, Any]:
        if request.options.get("api") == "invoke":
            return FORMATS["anthropic"].response_body(request, context, reply)
        return converse_body(request, reply)

    def error_body(
        self, status: int, message: str, *, type: str, param: str | None, code: str | int | None
    ) -> dict[str, Any]:
        return {"message": message}

    def error_headers(self, status: int, type: str) -> dict[str, str]:
        return {"x-amzn-ErrorType": f"{http_exception(status, type)}:{NAMESPACE}"}

    def default_error(self, status: int) -> tuple[str, str, str | None]:
        kind, message = http_error(status)
        return message, kind, None

    def offered_keys(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Iterable[str]:
        """A Bedrock API key (``Authorization: Bearer KEY``), or the access key id a SigV4
        signature names (``AWS4-HMAC-SHA256 Credential=KEY/date/region/bedrock/aws4_request``)."""
        scheme, _, rest = headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            yield rest.strip()
        elif scheme == "AWS4-HMAC-SHA256":
            credential = next((p.strip() for p in rest.split(",") if p.strip().startswith("Credential=")), "")
            yield credential.removeprefix("Credential=").split("/", 1)[0]


def _malformed_input(detail: str, param: str | None) -> RequestError:
    """A 400 ValidationException as Bedrock words a model body it cannot read."""
    return RequestError(
        400, f"Malformed input request: {detail}, please reformat your input and try again.", param=param
    )


register(BedrockRuntime())
