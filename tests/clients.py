"""Read a scenario the way each official client reads its API: the text it gathers, and the
exception it raises, if any. Each reader uses the client's streaming interface."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import ollama
import openai

MESSAGES = [{"role": "user", "content": "hi"}]
READ_TIMEOUT = 1.0


class ErrorEventSeen(Exception):
    """The Responses SDK yields an in-stream ``error`` event instead of raising; the reader
    raises this on it, so the table can say the client saw the error."""


@dataclass(frozen=True)
class Seen:
    """What a client ended with: the text it gathered and the exception it raised, if any."""

    text: str
    error: type[BaseException] | None = None


def _guard(read: Callable[[list[str]], None]) -> Seen:
    parts: list[str] = []
    try:
        read(parts)
    except Exception as exc:
        return Seen("".join(parts), type(exc))
    return Seen("".join(parts))


def _openai(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=READ_TIMEOUT)


def openai_chat(base_url: str, name: str, client: openai.OpenAI | None = None) -> Seen:
    client = client or _openai(base_url)

    def read(parts: list[str]) -> None:
        with client:
            for chunk in client.chat.completions.create(model=name, messages=MESSAGES, stream=True):  # type: ignore[arg-type]
                if chunk.choices:
                    parts.append(chunk.choices[0].delta.content or "")

    return _guard(read)


def openai_completions(base_url: str, name: str, client: openai.OpenAI | None = None) -> Seen:
    client = client or _openai(base_url)

    def read(parts: list[str]) -> None:
        with client:
            for chunk in client.completions.create(model=name, prompt="hi", stream=True):
                if chunk.choices:
                    parts.append(chunk.choices[0].text)

    return _guard(read)


AZURE_API_VERSION = "2024-10-21"


def _azure(base_url: str) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=base_url,
        api_key="x",
        api_version=AZURE_API_VERSION,
        max_retries=0,
        timeout=READ_TIMEOUT,
    )


def azure_chat(base_url: str, name: str) -> Seen:
    """``AzureOpenAI`` with the scenario as the deployment (``model`` becomes the path's); the
    reader skips Azure's first chunk, which has no choices, as it skips the usage chunk."""
    return openai_chat(base_url, name, _azure(base_url))


def azure_completions(base_url: str, name: str) -> Seen:
    return openai_completions(base_url, name, _azure(base_url))


def openai_responses(base_url: str, name: str) -> Seen:
    client = _openai(base_url)

    def read(parts: list[str]) -> None:
        with client:
            for event in client.responses.create(model=name, input="hi", stream=True):
                if event.type == "response.output_text.delta":
                    parts.append(event.delta)
                elif event.type == "error":
                    raise ErrorEventSeen(event.message)

    return _guard(read)


def anthropic_messages(base_url: str, name: str) -> Seen:
    client = anthropic.Anthropic(base_url=base_url, api_key="x", max_retries=0, timeout=READ_TIMEOUT)

    def read(parts: list[str]) -> None:
        with client, client.messages.stream(model=name, max_tokens=100, messages=MESSAGES) as stream:  # type: ignore[arg-type]
            for text in stream.text_stream:
                parts.append(text)

    return _guard(read)


def ollama_chat(base_url: str, name: str) -> Seen:
    client = ollama.Client(host=base_url, timeout=READ_TIMEOUT)

    def read(parts: list[str]) -> None:
        with client:
            for part in client.chat(model=name, messages=MESSAGES, stream=True):
                parts.append(part.message.content or "")

    return _guard(read)


READERS: dict[str, Callable[[str, str], Seen]] = {
    "openai-chat": openai_chat,
    "openai-completions": openai_completions,
    "openai-responses": openai_responses,
    "anthropic": anthropic_messages,
    "ollama-chat": ollama_chat,
    "azure-chat": azure_chat,
    "azure-completions": azure_completions,
}


def _gemini(base_url: str, timeout: float = READ_TIMEOUT) -> Any:
    from google import genai
    from google.genai import types

    options = types.HttpOptions(base_url=base_url, timeout=int(timeout * 1000))
    return genai.Client(api_key="x", http_options=options)


def gemini(base_url: str, name: str) -> Seen:
    """google-genai's ``generate_content_stream`` (``?alt=sse``, the only framing it asks for)."""
    client = _gemini(base_url)

    def read(parts: list[str]) -> None:
        with client:
            for chunk in client.models.generate_content_stream(model=name, contents="hi"):
                parts.append(chunk.text or "")

    return _guard(read)


READERS["gemini"] = gemini


def gemini_async(base_url: str, name: str, timeout: float = READ_TIMEOUT) -> Seen:
    """google-genai's async client: the same stream read over aiohttp (installed with mockllm),
    whose ``timeout`` is a deadline for the whole request, not for each read."""
    import asyncio

    async def read(parts: list[str]) -> None:
        aio = _gemini(base_url, timeout).aio
        try:
            async for chunk in await aio.models.generate_content_stream(model=name, contents="hi"):
                parts.append(chunk.text or "")
        finally:
            await aio.aclose()

    return _guard(lambda parts: asyncio.run(read(parts)))
