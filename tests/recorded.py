"""``mockllm record`` as a subprocess, and what the official SDKs see of a stream (text, tool
calls, finish reason, the exception, and when each piece arrived), for the round-trip tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import ollama
import openai

from .served import MOCKLLM

READ_TIMEOUT = 1.0


class Recording:
    """A ``mockllm record`` process writing to ``out``, and the URL it printed."""

    def __init__(self, upstream: str, out: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [*MOCKLLM, "record", "--upstream", upstream, "--out", str(out), "--port", "0", "-q", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.match(r"Listening on (http://\S+)", line)
        if match is None:
            _, stderr = self.process.communicate(timeout=15)
            raise AssertionError(line + stderr)
        self.url = match.group(1)

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=30)
        return self.process.returncode, stderr


@dataclass
class View:
    """What a client ended with, and the arrival time of each text piece (not compared)."""

    text: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    finish_reason: str | None = None
    error: str | None = None
    times: list[float] = field(default_factory=list, compare=False)

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


def _guarded(view: View, read: Any) -> View:
    try:
        read()
    except Exception as exc:
        view.error = type(exc).__name__
    return view


def openai_view(base_url: str, model: str, prompt: str = "hi", **client: Any) -> View:
    view = View()
    sdk = openai.OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=READ_TIMEOUT, **client)
    calls: dict[int, list[str]] = {}

    def read() -> None:
        with sdk:
            messages = [{"role": "user", "content": prompt}]
            for chunk in sdk.chat.completions.create(model=model, messages=messages, stream=True):  # type: ignore[arg-type]
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.delta.content:
                    view.text += choice.delta.content
                    view.times.append(time.monotonic())
                for call in choice.delta.tool_calls or ():
                    entry = calls.setdefault(call.index, ["", ""])
                    if call.function is not None:
                        entry[0] += call.function.name or ""
                        entry[1] += call.function.arguments or ""
                if choice.finish_reason:
                    view.finish_reason = choice.finish_reason

    _guarded(view, read)
    view.tool_calls = [tuple(calls[i]) for i in sorted(calls)]  # type: ignore[misc]
    return view


def anthropic_view(base_url: str, model: str, prompt: str = "hi") -> View:
    view = View()
    sdk = anthropic.Anthropic(base_url=base_url, api_key="x", max_retries=0, timeout=READ_TIMEOUT)

    def read() -> None:
        messages = [{"role": "user", "content": prompt}]
        with sdk, sdk.messages.stream(model=model, max_tokens=100, messages=messages) as stream:  # type: ignore[arg-type]
            for text in stream.text_stream:
                view.text += text
                view.times.append(time.monotonic())
            final = stream.get_final_message()
            view.finish_reason = final.stop_reason
            view.tool_calls = [(b.name, str(b.input)) for b in final.content if b.type == "tool_use"]

    return _guarded(view, read)


def ollama_view(base_url: str, model: str, prompt: str = "hi") -> View:
    view = View()
    sdk = ollama.Client(host=base_url, timeout=READ_TIMEOUT)

    def read() -> None:
        with sdk:
            for part in sdk.chat(model=model, messages=[{"role": "user", "content": prompt}], stream=True):
                if part.message.content:
                    view.text += part.message.content
                    view.times.append(time.monotonic())
                for call in part.message.tool_calls or ():
                    view.tool_calls.append((call.function.name, str(call.function.arguments)))
                if part.done:
                    view.finish_reason = part.done_reason

    return _guarded(view, read)
