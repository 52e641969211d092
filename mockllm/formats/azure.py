"""Azure OpenAI: OpenAI's chat and completions on Azure's routes, with Azure's content filter.

Routes, as ``AzureOpenAI`` / ``AsyncAzureOpenAI`` of the ``openai`` SDK call them:
``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` and
``.../completions`` (the deployment selects a scenario as ``model`` does; ``api-version`` is
required there, as on Azure), and the version-less v1 API, ``/openai/v1/chat/completions`` and
``/openai/v1/completions`` (``model`` in the body). The API key comes in ``api-key`` (or
``Authorization: Bearer``, as with Entra ID tokens).

What differs from OpenAI on the wire:
- the stream opens with a chunk of Azure's own: ``choices: []``, empty ``id``/``model``/``object``,
  ``created: 0`` and ``prompt_filter_results`` (a client that reads ``choices[0]`` of every
  chunk breaks on it, as on Azure);
- every choice carries ``content_filter_results`` (each category ``safe``; ``{}`` on the finish
  chunk); the ``content_filter`` fault ends the reply with ``finish_reason: content_filter`` and
  its category ``filtered: true`` at its severity;
- errors Azure's gateway answers (401, 403, 404, 408, 429, 5xx) are ``{"error": {"code": "429",
  "message": ...}}``; a request the model refuses (400) has OpenAI's shape.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..encoder import Payloads, dumps
from ..scenario import Scenario
from . import NO_ROUTE, ApiRequest, RequestError, Route, StreamContext, WholeReply, WireFormat, register
from .openai_chat import OpenAIChat, OpenAIChatEncoder
from .openai_completions import CompletionsEncoder, OpenAICompletions

#: The categories Azure reports on a completion, and how each says "nothing found".
_CATEGORIES: dict[str, dict[str, Any]] = {
    "hate": {"filtered": False, "severity": "safe"},
    "protected_material_code": {"filtered": False, "detected": False},
    "protected_material_text": {"filtered": False, "detected": False},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}
#: On the prompt, jailbreak detection takes the protected-material checks' place.
_PROMPT_CATEGORIES = {
    **{k: v for k, v in _CATEGORIES.items() if not k.startswith("protected")},
    "jailbreak": {"filtered": False, "detected": False},
}
_PROMPT_FILTER = [{"prompt_index": 0, "content_filter_results": _PROMPT_CATEGORIES}]
#: The errors Azure's gateway answers itself, before any model: ``{"code": "<status>", "message"}``.
_GATEWAY: dict[int, str] = {
    401: "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
    "valid key for an active subscription and use a correct regional API endpoint for your resource.",
    403: "Access denied.",
    404: "Resource not found",
    408: "The operation was timeout.",
    429: "Requests to the ChatCompletions_Create Operation have exceeded the rate limit of your current "
    "pricing tier. Please retry after 1 second.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The service is temporarily unable to process your request. Please try again later.",
}


def filter_results(filtered: tuple[str, str] | None) -> dict[str, Any]:
    """A completion's ``content_filter_results``: every category safe, or one filtered."""
    results = dict(_CATEGORIES)
    if filtered is not None:
        category, severity = filtered
        if category.startswith("protected_material") or category == "jailbreak":
            results[category] = {"filtered": True, "detected": True}
        else:
            results[category] = {"filtered": True, "severity": severity}
    return results


_SAFE = ',"content_filter_results":' + dumps(_CATEGORIES)


class _Opening:
    """Azure's first chunk: the prompt's filter results and no choice."""

    def opening(self) -> Payloads:
        chunk = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": _PROMPT_FILTER,
        }
        return [(None, dumps(chunk).encode())]


class AzureChatEncoder(_Opening, OpenAIChatEncoder):
    choice_extra = _SAFE

    def finish_extra(self, filtered: tuple[str, str] | None) -> str:
        results = filter_results(filtered) if filtered is not None else {}
        return ',"content_filter_results":' + dumps(results)


class AzureCompletionsEncoder(_Opening, CompletionsEncoder):
    def __init__(self, scenario: Scenario, request: ApiRequest, context: StreamContext) -> None:
        super().__init__(scenario, request, context)
        self._text_end = self._text_end[: -len(b"}]}")] + _SAFE.encode() + b"}]}"
        self._opened = False

    def payloads(self, event: Any) -> Payloads:
        out = super().payloads(event)
        if out and not self._opened:
            self._opened = True
            return [*self.opening(), *out]
        return out


class _Azure(WireFormat):
    """What Azure's chat and completions share: routes by deployment, keys, errors."""

    prefixes = ("/openai/",)

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        """OpenAI's request, with the deployment as its model (Azure routes by the path)."""
        deployment = route.params.get("deployment")
        if deployment is None:
            return super().parse_request(body)
        if "api-version" not in route.query:
            raise RequestError(
                404,
                "Resource not found (mockllm: the deployments routes need ?api-version=, as Azure's do)",
                type="",
                code="404",
            )
        return super().parse_request({**body, "model": deployment} if isinstance(body, dict) else body)

    def response_body(self, request: ApiRequest, context: StreamContext, reply: WholeReply) -> dict[str, Any]:
        body = super().response_body(request, context, reply)
        body["prompt_filter_results"] = _PROMPT_FILTER
        body["choices"][0]["content_filter_results"] = filter_results(reply.filtered)
        return body

    def offered_keys(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Iterator[str]:
        yield headers.get("api-key", "")
        scheme, _, bearer = headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            yield bearer.strip()

    def error_body(
        self, status: int, message: str, *, type: str, param: str | None, code: str | int | None
    ) -> dict[str, Any]:
        if not type:  # the gateway's own
            return {"error": {"code": str(code or status), "message": message}}
        return {"error": {"message": message, "type": type, "param": param, "code": code}}

    def default_error(self, status: int) -> tuple[str, str, str | None]:
        if status in _GATEWAY or status >= 500:
            return _GATEWAY.get(status, f"HTTP {status}."), "", str(status)
        return super().default_error(status)


class AzureChat(_Azure, OpenAIChat):
    name = "azure-chat"
    title = "Azure OpenAI Chat Completions"
    path = "/openai/deployments/{deployment}/chat/completions"
    routes = (path, "/openai/v1/chat/completions")

    def stream_encoder(
        self, scenario: Scenario, request: ApiRequest, context: StreamContext
    ) -> AzureChatEncoder:
        return AzureChatEncoder(scenario, request, context)


class AzureCompletions(_Azure, OpenAICompletions):
    name = "azure-completions"
    title = "Azure OpenAI legacy Completions"
    path = "/openai/deployments/{deployment}/completions"
    routes = (path, "/openai/v1/completions")

    def stream_encoder(
        self, scenario: Scenario, request: ApiRequest, context: StreamContext
    ) -> AzureCompletionsEncoder:
        return AzureCompletionsEncoder(scenario, request, context)


register(AzureChat())
register(AzureCompletions())
