"""Record and replay over real sockets: every shipped scenario served by one mockllm (the
upstream), recorded through ``mockllm record`` (a second process), then the recordings served
by a third: the official SDKs see the same text, tool calls, finish reason and exception, at
about the same pace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mockllm import MockLLMServer, load_scenarios

from .conftest import SCENARIOS
from .recorded import Recording, View, anthropic_view, ollama_view, openai_view

pytestmark = pytest.mark.functional

SHIPPED = sorted(s.name for s in load_scenarios(sorted(SCENARIOS.glob("*.yaml"))))
TIME_SCALE = 0.1  # the 3 s stall is 0.3 s, under the clients' 1 s read timeout
#: How far a replayed gap between two text pieces may be from the upstream's. Generous: the
#: machine is shared; the stalls (0.2-0.3 s here) are what this tells apart from no wait.
GAP_SLACK = 0.08
READERS: dict[str, Callable[..., View]] = {
    "openai": openai_view,
    "anthropic": anthropic_view,
    "ollama": ollama_view,
}
#: The scenarios read through the other SDKs too (the openai SDK reads every one).
OTHERS = ["tool-call", "keepalive-comment", "error-event", "disconnect-fin", "stall", "rate-limited"]
CASES = [("openai", name) for name in SHIPPED] + [(sdk, n) for sdk in ("anthropic", "ollama") for n in OTHERS]


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[tuple[str, str], View], Path]:
    """What each SDK saw of each case through the recorder, and the recordings' directory."""
    out = tmp_path_factory.mktemp("recordings")
    seen = {}
    with MockLLMServer(sorted(SCENARIOS.glob("*.yaml")), time_scale=TIME_SCALE) as upstream:
        recording = Recording(upstream.url, out)
        try:
            for sdk, name in CASES:
                seen[(sdk, name)] = READERS[sdk](recording.url, name, f"{sdk} asks {name}")
        finally:
            code, stderr = recording.stop()
        assert code == 0, stderr
        direct = {
            case: READERS[case[0]](upstream.url, case[1], f"{case[0]} asks {case[1]}") for case in CASES[:3]
        }
    assert {c: seen[c] for c in direct} == direct  # the proxy changes nothing a client sees
    return seen, out


@pytest.fixture(scope="module")
def replay(round_trip: tuple[dict[tuple[str, str], View], Path]) -> Iterator[MockLLMServer]:
    with MockLLMServer([round_trip[1]]) as server:
        yield server


def test_each_exchange_is_one_file_and_the_set_loads(
    round_trip: tuple[dict[tuple[str, str], View], Path],
) -> None:
    _, out = round_trip
    files = sorted(out.glob("*.yaml"))
    assert len(files) == len(CASES)
    assert not list(out.glob(".*"))  # no temporary file left behind
    assert len(load_scenarios([out])) == len(CASES)


@pytest.mark.parametrize(("sdk", "name"), CASES)
def test_the_replay_looks_the_same_to_the_sdk(
    round_trip: tuple[dict[tuple[str, str], View], Path], replay: MockLLMServer, sdk: str, name: str
) -> None:
    upstream = round_trip[0][(sdk, name)]
    replayed = READERS[sdk](replay.url, name, f"{sdk} asks {name}")
    assert replayed == upstream
    assert len(replayed.gaps()) == len(upstream.gaps())
    for ours, theirs in zip(replayed.gaps(), upstream.gaps(), strict=True):
        assert abs(ours - theirs) < GAP_SLACK, (replayed.gaps(), upstream.gaps())
