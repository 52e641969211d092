"""The pytest plugin: a ``mockllm`` fixture, a ``mockllm`` marker, ``--mockllm-time-scale``.

Loaded through the ``pytest11`` entry point into every pytest run of every project that installs
mockllm, so this module imports nothing heavy: the server (aiohttp) is imported the first time a
test asks for the fixture.

One server runs for the whole session on its own thread and event loop (so a blocking SDK call in a
sync test cannot deadlock it, and async tests work the same). Before each test its scenarios, time
scale, sequence counters, call log and recorded errors are reset. An exception raised inside the
server while a test runs fails that test with the original traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .server import MockLLMServer

ENV_TIME_SCALE = "MOCKLLM_TIME_SCALE"
_SERVER = pytest.StashKey["MockLLMServer"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockllm", "mockllm mock LLM server")
    group.addoption(
        "--mockllm-time-scale",
        type=float,
        default=None,
        metavar="FACTOR",
        help=f"Multiply every scenario delay: 0 collapses them, 2 doubles them "
        f"(default: ${ENV_TIME_SCALE} or 1).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mockllm(scenario=None, scenarios=None, time_scale=None, strict=False): the scenarios "
        "(paths, mappings, YAML text) and time scale the mockllm fixture serves in this test; "
        "strict: no default scenario, so an unscripted request is a 404 that explains each miss",
    )


def _time_scale(config: pytest.Config, marker: pytest.Mark | None) -> float:
    if marker is not None and marker.kwargs.get("time_scale") is not None:
        return float(marker.kwargs["time_scale"])
    option = config.getoption("--mockllm-time-scale")
    if option is not None:
        return float(option)
    env = os.environ.get(ENV_TIME_SCALE)
    if env:
        try:
            return float(env)
        except ValueError:
            raise pytest.UsageError(f"${ENV_TIME_SCALE} must be a number, not {env!r}") from None
    return 1.0


@pytest.fixture(scope="session")
def mockllm_server() -> Iterator[MockLLMServer]:
    """The session's server. Tests use the ``mockllm`` fixture, which resets it for each test."""
    from .server import MockLLMServer

    with MockLLMServer() as server:
        yield server


@pytest.fixture
def mockllm_scenarios() -> Any:
    """The scenarios a test gets without a marker or ``use()``: ``None`` is the built-in default.

    Override it in a conftest.py to give every test your own set::

        @pytest.fixture
        def mockllm_scenarios():
            return "tests/scenarios/"
    """
    return None


@pytest.fixture
def mockllm(
    request: pytest.FixtureRequest, mockllm_server: MockLLMServer, mockllm_scenarios: Any
) -> Iterator[MockLLMServer]:
    """A mock LLM server on 127.0.0.1, reset for this test. See ``mockllm.MockLLM``."""
    from .server import resolve_scenarios

    marker = request.node.get_closest_marker("mockllm")
    kwargs = marker.kwargs if marker is not None else {}
    unknown = set(kwargs) - {"scenario", "scenarios", "time_scale", "strict"}
    if unknown:
        pytest.fail(
            f"@pytest.mark.mockllm got unknown arguments {sorted(unknown)}; "
            "it takes scenario=, scenarios=, time_scale= and strict=",
            pytrace=False,
        )
    sources = kwargs.get("scenarios")
    if sources is None and kwargs.get("scenario") is not None:
        sources = [kwargs["scenario"]]
    if sources is None:
        sources = mockllm_scenarios
    rootdir = Path(request.config.rootpath)
    scenarios = resolve_scenarios(sources, base=rootdir) if sources is not None else None
    strict = bool(kwargs.get("strict", False))
    mockllm_server.reset(scenarios, time_scale=_time_scale(request.config, marker), strict=strict)
    request.node.stash[_SERVER] = mockllm_server
    yield mockllm_server
    mockllm_server.reset()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail a test whose requests raised inside the server, with the server's traceback."""
    try:
        return (yield)
    finally:
        server = item.stash.get(_SERVER, None)
        if server is not None and server.errors:
            error = server.errors[0]
            error.add_note(
                f"(raised inside the mockllm server while this test ran; "
                f"{len(server.errors)} error(s) in all)"
            )
            raise error
