"""OpenAI legacy Completions: ``POST /v1/completions``.

Stream: one ``data:`` line of ``text_completion`` JSON per token (``choices[0].text``), a final
chunk with ``finish_reason``, a usage chunk with ``stream_options.include_usage``, then
``data: [DONE]``. Tool calls do not exist in this API: a scenario's tool calls are not sent.
"""

from __future__ import annotations

from typing import Any

from ..conversation import Conversation, Message
from ..encoder import EventEncoder, Payloads, dumps
from ..events import Done, Finish, Payload, StreamError, Token, ToolCallEnd, ToolCallStart
from ..scenario import Scenario
from ..sse import SSEFramer
from . import NO_ROUTE, ApiRequest, RequestError, Route, StreamContext, WholeReply, register
from .fields import json_object, optional, required, stream_flag
from .openai_chat import OpenAIChat, stream_error, usage_of


class CompletionsEncoder(EventEncoder):
    def __init__(self, scenario: Scenario, request: ApiRequest, context: StreamContext) -> None:
        super().__init__(SSEFramer(scenario.wire))
        self.include_usage = bool(request.options.get("include_usage"))
        self.prompt_tokens = request.prompt_tokens
        head = dumps(
            {
                "id": context.id,
                "object": "text_completion",
                "created": context.created,
                "model": context.model,
            }
        )[:-1]
        self._head = head
        self._text = (head + ',"choices":[{"text":').encode()
        self._text_end = b',"index":0,"logprobs":null,"finish_reason":null}]}'

    def payloads(self, event: Payload) -> Payloads:
        match event:
            case Token(text=text, tool=None):
                return [(None, self._text + dumps(text).encode() + self._text_end)]
            case Token() | ToolCallStart() | ToolCallEnd():
                return []
            case Finish(reason=reason, completion_tokens=tokens):
                finish = (
                    f'{self._head},"choices":[{{"text":"","index":0,"logprobs":null,'
                    f'"finish_reason":{dumps(reason)}}}]}}'
                )
                out: Payloads = [(None, finish.encode())]
                if self.include_usage:
                    usage = dumps(usage_of(self.prompt_tokens, tokens))
                    out.append((None, f'{self._head},"choices":[],"usage":{usage}}}'.encode()))
                return out
            case Done():
                return [(None, b"[DONE]")]
            case StreamError():
                return stream_error(event)
        raise TypeError(f"unexpected event {event!r}")  # pragma: no cover


class OpenAICompletions(OpenAIChat):
    """Shares chat's error shape and defaults; differs in the request and the chunks."""

    name = "openai-completions"
    path = "/v1/completions"
    prefixes = (path,)
    id_prefix = "cmpl-mockllm-"

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        body = json_object(body)
        model = required(body, "model", str, "a string")
        prompt = required(body, "prompt", str | list, "a string or an array")
        texts = [prompt] if isinstance(prompt, str) else [p for p in prompt if isinstance(p, str)]
        stream = stream_flag(body)
        options = optional(body, "stream_options", dict, "an object", None)
        if options is not None and not stream:
            raise RequestError(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        n = optional(body, "n", int, "an integer", 1)
        if n != 1:
            raise RequestError(
                400,
                f"mockllm answers with one choice per request: 'n' must be 1 (got {n}).",
                param="n",
                code="unsupported_value",
            )
        conversation = Conversation(model, stream, messages=(Message("user", "".join(texts)),))
        return ApiRequest.of(conversation, include_usage=bool((options or {}).get("include_usage")))

    def stream_encoder(
        self, scenario: Scenario, request: ApiRequest, context: StreamContext
    ) -> CompletionsEncoder:
        return CompletionsEncoder(scenario, request, context)

    def response_body(self, request: ApiRequest, context: StreamContext, reply: WholeReply) -> dict[str, Any]:
        return {
            "id": context.id,
            "object": "text_completion",
            "created": context.created,
            "model": context.model,
            "choices": [
                {"text": reply.text, "index": 0, "logprobs": None, "finish_reason": reply.finish_reason}
            ],
            "usage": usage_of(request.prompt_tokens, reply.completion_tokens),
        }


register(OpenAICompletions())
