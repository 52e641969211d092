"""The embeddings endpoints: each API's request read into the texts to embed, and its response.

- OpenAI ``POST /v1/embeddings`` (https://platform.openai.com/docs/api-reference/embeddings):
  ``input`` a string, a list of strings, a token array or a list of them; ``encoding_format``
  ``float`` or ``base64`` (little-endian float32, what the ``openai`` SDK asks for by default and
  decodes); ``dimensions``. ``{"object": "list", "data": [{"object": "embedding", "index",
  "embedding"}], "model", "usage": {"prompt_tokens", "total_tokens"}}``; OpenAI's error shape.
- Azure OpenAI: the same body on ``/openai/deployments/{deployment}/embeddings?api-version=...``
  (the deployment selects like ``model``) and ``/openai/v1/embeddings``; the ``api-key`` header.
  ``api-version`` is accepted, never required or checked.
- Ollama ``POST /api/embed`` (``input`` a string or a list; ``{"model", "embeddings",
  "total_duration", "load_duration", "prompt_eval_count"}``) and the legacy ``POST
  /api/embeddings`` (``prompt`` → ``{"embedding"}``); errors ``{"error": "..."}``.
- Gemini ``POST /v1beta/models/{model}:embedContent`` (``content.parts[].text`` →
  ``{"embedding": {"values"}}``) and ``:batchEmbedContents`` (``requests[]``, each with its own
  ``outputDimensionality`` → ``{"embeddings": [{"values"}]}``), the same under ``/v1/``; errors
  ``{"error": {"code", "message", "status"}}``; ``x-goog-api-key`` or ``?key=``.

A token array is embedded as its ids written out as words (``"15339 1917"``), so arrays that share
ids are close, and counts one token per id; text counts by the one rule of
:attr:`~mockllm.conversation.Conversation.prompt_tokens`. The vectors are :mod:`mockllm.vectors`';
the answer (scenario, faults, response) is :mod:`mockllm.embeddings`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..conversation import Conversation, Message, text_of
from ..vectors import MAX_DIMENSIONS, to_float32_bytes
from . import FORMATS, NO_ROUTE, ApiRequest, RequestError, Route, WireFormat, register
from .fields import json_object, optional, required
from .gemini import GoogleApi

#: The most inputs one request may embed (OpenAI's limit; Gemini's batch limit is 100).
MAX_INPUTS = 2048
GEMINI_MAX_BATCH = 100

Vector = Sequence[float]


@dataclass(frozen=True)
class EmbedInput:
    """What a request asks to embed: the texts, the size each asked for (``None``: the model's),
    and how the vectors are encoded (``float`` or ``base64``)."""

    texts: tuple[str, ...]
    dimensions: tuple[int | None, ...]
    encoding: str = "float"


class EmbeddingsFormat(WireFormat):
    """An embeddings endpoint: a request is read into an :class:`EmbedInput` (in
    ``ApiRequest.options["embed"]``) and answered whole by :func:`mockllm.embeddings.answer`."""

    content_type = "application/json"
    id_prefix = "embd-"

    def embeddings_body(self, request: ApiRequest, model: str, vectors: list[Vector]) -> dict[str, Any]:
        """The response body for ``vectors``, one per input, in order."""
        raise NotImplementedError

    def _request(
        self,
        model: str,
        texts: Sequence[str],
        body: dict[str, Any],
        dimensions: Sequence[int | None],
        encoding: str = "float",
        tokens: int | None = None,
    ) -> ApiRequest:
        """The request: the texts are the conversation's user messages (so ``last_user`` is the
        last input); ``tokens`` counts token arrays (else the one rule counts the text)."""
        messages = tuple(Message("user", text) for text in texts)
        embed = EmbedInput(tuple(texts), tuple(dimensions), encoding)
        api = ApiRequest.of(Conversation(model, False, "", messages), embed=embed)
        return api if tokens is None else replace(api, prompt_tokens=tokens)


def embed_input(request: ApiRequest) -> EmbedInput:
    embed: EmbedInput = request.options["embed"]
    return embed


# -- OpenAI and Azure ------------------------------------------------------------------------------


def _invalid_input() -> RequestError:
    return RequestError(
        400,
        "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
        param="input",
    )


def _openai_inputs(value: Any) -> tuple[list[str], int | None]:
    """The texts of an OpenAI ``input`` and, for token arrays, how many tokens they hold."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _invalid_input()
    if len(value) > MAX_INPUTS:
        raise RequestError(
            400, f"'$.input' holds {len(value)} inputs: at most {MAX_INPUTS} are allowed.", param="input"
        )
    if all(_is_token(v) for v in value):  # one token array
        value = [value]
    if all(isinstance(v, str) and v for v in value):
        return value, None
    if all(isinstance(v, list) and v and all(_is_token(t) for t in v) for v in value):
        return [" ".join(str(t) for t in v) for v in value], sum(len(v) for v in value)
    raise _invalid_input()


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32


def _dimensions(value: int | None, key: str) -> int | None:
    if value is not None and not 1 <= value <= MAX_DIMENSIONS:
        raise RequestError(
            400,
            f"Invalid '{key}': mockllm makes vectors of 1 to {MAX_DIMENSIONS} dimensions, not {value}.",
            param=key,
            code="invalid_value",
        )
    return value


class OpenAIEmbeddings(EmbeddingsFormat):
    name = "openai-embeddings"
    path = "/v1/embeddings"

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        body = json_object(body)
        model = self._model(body, route)
        texts, tokens = _openai_inputs(required(body, "input", (str, list), "a string or an array"))
        encoding = optional(body, "encoding_format", str, "a string", "float")
        if encoding not in ("float", "base64"):
            raise RequestError(
                400,
                f"Invalid value for 'encoding_format': {encoding[:40]!r} is not one of 'float', 'base64'.",
                param="encoding_format",
                code="invalid_value",
            )
        size = _dimensions(optional(body, "dimensions", int, "an integer", None), "dimensions")
        return self._request(model, texts, body, [size] * len(texts), encoding, tokens)

    def _model(self, body: dict[str, Any], route: Route) -> str:
        model: str = required(body, "model", str, "a string")
        return model

    def embeddings_body(self, request: ApiRequest, model: str, vectors: list[Vector]) -> dict[str, Any]:
        as_base64 = embed_input(request).encoding == "base64"
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": base64.b64encode(to_float32_bytes(v)).decode() if as_base64 else list(v),
            }
            for index, v in enumerate(vectors)
        ]
        tokens = request.prompt_tokens
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return {"object": "list", "data": data, "model": model, "usage": usage}

    def error_body(
        self, status: int, message: str, *, type: str, param: str | None, code: str | int | None
    ) -> dict[str, Any]:
        return FORMATS["openai-chat"].error_body(status, message, type=type, param=param, code=code)

    def default_error(self, status: int) -> tuple[str, str, str | None]:
        return FORMATS["openai-chat"].default_error(status)


class AzureEmbeddings(OpenAIEmbeddings):
    """Azure OpenAI's embeddings: the deployment in the path is the model."""

    name = "azure-embeddings"
    path = "/openai/deployments/{deployment}/embeddings"
    routes = (path, "/openai/v1/embeddings")

    def _model(self, body: dict[str, Any], route: Route) -> str:
        deployment = route.params.get("deployment")
        return deployment if deployment else super()._model(body, route)

    def offered_keys(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Iterable[str]:
        yield from super().offered_keys(headers, query)
        yield headers.get("api-key", "")


# -- Ollama ---------------------------------------------------------------------------------------


class _OllamaEmbeddings(EmbeddingsFormat):
    def _model(self, body: Any) -> str:
        if not isinstance(body, dict):
            raise RequestError(400, "invalid request body")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise RequestError(400, "model is required", param="model")
        return model

    def error_body(
        self, status: int, message: str, *, type: str, param: str | None, code: str | int | None
    ) -> dict[str, Any]:
        return {"error": message}

    def default_error(self, status: int) -> tuple[str, str, str | None]:
        return FORMATS["ollama-chat"].default_error(status)


class OllamaEmbed(_OllamaEmbeddings):
    name = "ollama-embed"
    path = "/api/embed"

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        model = self._model(body)
        value = body.get("input", "")
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise RequestError(400, "invalid input type", param="input")
        if len(texts) > MAX_INPUTS:
            raise RequestError(400, f"at most {MAX_INPUTS} inputs, got {len(texts)}", param="input")
        size = body.get("dimensions")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
            raise RequestError(400, "dimensions must be an integer", param="dimensions")
        try:
            size = _dimensions(size, "dimensions")
        except RequestError as exc:
            raise RequestError(400, f"invalid dimensions: {size}", param="dimensions") from exc
        return self._request(model, texts, body, [size] * len(texts))

    def embeddings_body(self, request: ApiRequest, model: str, vectors: list[Vector]) -> dict[str, Any]:
        return {
            "model": model,
            "embeddings": [list(v) for v in vectors],
            "total_duration": 1_500_000,
            "load_duration": 500_000,
            "prompt_eval_count": request.prompt_tokens,
        }


class OllamaEmbeddings(_OllamaEmbeddings):
    """The legacy endpoint: one ``prompt``, one ``embedding``."""

    name = "ollama-embeddings"
    path = "/api/embeddings"

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        model = self._model(body)
        prompt = body.get("prompt", "")
        if not isinstance(prompt, str):
            raise RequestError(400, "prompt must be a string", param="prompt")
        return self._request(model, [prompt], body, [None])

    def embeddings_body(self, request: ApiRequest, model: str, vectors: list[Vector]) -> dict[str, Any]:
        return {"embedding": list(vectors[0])}


# -- Gemini ---------------------------------------------------------------------------------------


def _gemini_error(message: str) -> RequestError:
    return RequestError(400, message, type="INVALID_ARGUMENT")


def _gemini_request(item: Any, where: str) -> tuple[str, int | None]:
    """The text and ``outputDimensionality`` of one EmbedContentRequest."""
    if not isinstance(item, dict):
        raise _gemini_error(f"Invalid JSON payload received. {where} must be an object.")
    content = item.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        raise _gemini_error(f"* {where}content: contents.parts must not be empty.")
    text = text_of(parts)
    size = item.get("outputDimensionality")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
        raise _gemini_error(f"Invalid value at '{where}output_dimensionality', expected an integer.")
    try:
        return text, _dimensions(size, f"{where}output_dimensionality")
    except RequestError as exc:
        raise _gemini_error(exc.message) from None


class _GeminiEmbeddings(GoogleApi, EmbeddingsFormat):
    verb: str

    def __init__(self) -> None:
        self.path = f"/v1beta/models/{{model}}:{self.verb}"
        self.routes = (self.path, f"/v1/models/{{model}}:{self.verb}")


class GeminiEmbed(_GeminiEmbeddings):
    name = "gemini-embed"
    verb = "embedContent"

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        if not isinstance(body, dict):
            raise _gemini_error("Invalid JSON payload received. The request must be an object.")
        text, size = _gemini_request(body, "")
        return self._request(route.params.get("model", ""), [text], body, [size])

    def embeddings_body(self, request: ApiRequest, model: str, vectors: list[Vector]) -> dict[str, Any]:
        return {"embedding": {"values": list(vectors[0])}}


class GeminiBatchEmbed(_GeminiEmbeddings):
    name = "gemini-batch-embed"
    verb = "batchEmbedContents"

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise _gemini_error("* BatchEmbedContentsRequest.requests: must not be empty.")
        if len(requests) > GEMINI_MAX_BATCH:
            raise _gemini_error(
                f"* BatchEmbedContentsRequest.requests: at most {GEMINI_MAX_BATCH} requests can be in a batch"
            )
        read = [_gemini_request(item, f"requests[{i}].") for i, item in enumerate(requests)]
        return self._request(route.params.get("model", ""), [t for t, _ in read], body, [s for _, s in read])

    def embeddings_body(self, request: ApiRequest, model: str, vectors: list[Vector]) -> dict[str, Any]:
        return {"embeddings": [{"values": list(v)} for v in vectors]}


register(OpenAIEmbeddings())
register(AzureEmbeddings())
register(OllamaEmbed())
register(OllamaEmbeddings())
register(GeminiEmbed())
register(GeminiBatchEmbed())
