"""Shared fixtures: real servers on 127.0.0.1 with an ephemeral port, on a background thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mockllm import MockLLMServer, Scenario, scenario_from_dict

from .served import Served

pytest_plugins = ["pytester"]

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
