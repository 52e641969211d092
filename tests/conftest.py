"""Shared fixtures: real servers on 127.0.0.1 with an ephemeral port, on a background thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mockllm import MockLLMServer, Scenario, scenario_from_dict

from .served import Served

pytest_plugins = ["pytester"]


def _import_the_transports() -> None:
    """Make one client of each SDK now, which imports its HTTP transport (httpcore2, httpcore).
    Pytester's in-process runs drop every module first imported inside them; a transport first
    imported there would be imported again afterwards, and the SDK, still holding the old one's
    exception classes, would let the new one's errors through unwrapped (a later test sees
    ``httpcore2.ReadError`` where the SDK raises ``APIConnectionError``)."""
    import anthropic
    import ollama
    import openai

    openai.OpenAI(api_key="x", base_url="http://127.0.0.1:9").close()
    anthropic.Anthropic(api_key="x", base_url="http://127.0.0.1:9").close()
    ollama.Client(host="http://127.0.0.1:9")


_import_the_transports()

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"

Serve = Callable[..., MockLLMServer]


def make_scenario(name: str = "test", **data: Any) -> Scenario:
    data.setdefault("reply", "Hello")
    return scenario_from_dict(data, name=name)


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start a server for the given scenarios (objects, dicts, or paths); stopped after the test."""
    servers: list[MockLLMServer] = []

    def start(*scenarios: Scenario | dict[str, Any] | str | Path, **kwargs: Any) -> MockLLMServer:
        built: list[Any] = []
        for item in scenarios:
            built.append(make_scenario(**item) if isinstance(item, dict) else item)
        server = MockLLMServer(built or None, **kwargs)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def served() -> Iterator[list[Served]]:
    """``mockllm serve`` subprocesses a test starts (with ``served.start()``); killed after the test."""
    started: list[Served] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate()
