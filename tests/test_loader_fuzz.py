"""Fuzzing the scenario contract: random YAML, mutations of every shipped scenario and the hostile
cases, fed to the loader, to ``mockllm validate`` and to ``PUT /_mockllm/scenarios`` on a live
server. Every input is accepted or gets positioned problems (never a traceback, never a 5xx), in
under 2 s each (hypothesis's deadline) and 200 MB; after each PUT the server answers ``/healthz``
at once; and every accepted scenario streams to the official ``openai`` SDK to completion, or to
what it scripts (a status, a fault).

Hypothesis runs derandomized (the same examples on every run) and without an example database.
"""

from __future__ import annotations

import re
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from mockllm import MockLLMServer, Problem, Scenario, ScenarioError, parse_scenarios
from mockllm.cli import main
from mockllm.loader import load_set
from mockllm.schemaerrors import schema
from mockllm.timeline import stream_timeline

from .clients import Seen, openai_chat
from .conftest import SCENARIOS
from .hostile import HOSTILE, UNSERVABLE, laughs

FUZZ = settings(
    max_examples=60,
    deadline=2000,  # ms: no input may take longer
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- inputs ------------------------------------------------------------------------------------------

SHIPPED = {path.name: path.read_text(encoding="utf-8") for path in sorted(SCENARIOS.glob("*.yaml"))}
KEYS = sorted({key for definition in schema()["$defs"].values() for key in definition.get("properties", {})})
FRAGMENTS = [
    *(f"{key}: " for key in KEYS),
    *"\n \t-:[]{},'\"&*!#|>?%@`\\",
    "\n  ",
    "\n- ",
    "---\n",
    "&a ",
    "*a",
    "<<: ",
    "!!int ",
    "!!bool ",
    "!!float ",
    "!!timestamp ",
    "!!set ",
    "!!omap ",
    "!!binary ",
    "!!python/object:os.system ",
    ".inf",
    ".nan",
    "-1",
    "1" * 30,
    "0x1F",
    "1:30",
    "2001-13-45",
    "~",
    "end",
    "forever",
    "1s",
    "25h",
    "\\ud800",
    "\\x00",
    "\r\n",
    "\x00",
    "\ufeff",
    "日本",
    "🎉",
]
YAML_TEXT = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=60).map("".join)

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-5, 30)
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "1s",
            "10ms",
            "-1s",
            "25h",
            "1h",
            "forever",
            "end",
            "rst",
            "reset",
            "bogus",
            "utf8",
            "a\r\nb",
            "Content-Length",
            "chunked",
            "text/event-stream",
            "",
            "\x00",
            "é🎉",
        ]
    )
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)


def paths(data: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path in ``data``, the document itself included."""
    yield at
    if isinstance(data, dict):
        for key, value in data.items():
            yield from paths(value, (*at, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from paths(value, (*at, index))


def mutate(data: Any, path: tuple[Any, ...], how: str, value: Any, key: str) -> Any:
    if not path:
        return value if how == "replace" else data
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][key] = value
    return data


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A shipped scenario file with one change: a value replaced, a key deleted or added (then
    dumped as YAML), or the text itself cut, spliced or extended."""
    text = SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        end = draw(st.integers(at, min(len(text), at + 20)))
        return text[:at] + draw(YAML_TEXT) + text[end:]
    data = yaml.safe_load(text)
    path = draw(st.sampled_from(list(paths(data))))
    how = draw(st.sampled_from(["replace", "delete", "add"]))
    changed = mutate(data, path, how, draw(VALUES), draw(st.sampled_from(KEYS)))
    try:
        return yaml.safe_dump(changed, allow_unicode=True, sort_keys=False)
    except yaml.YAMLError:
        assume(False)
        raise


HOSTILE_TEXTS = [text for text, _ in HOSTILE.values()] + UNSERVABLE + [laughs(9), laughs(5, "*a5")]
UNCHANGED = st.sampled_from(sorted(SHIPPED.values()))
INPUTS = st.one_of(YAML_TEXT, mutated(), mutated(), UNCHANGED, st.sampled_from(HOSTILE_TEXTS))

# -- what every answer must be ---------------------------------------------------------------------

WHOLE_DOCUMENT = {"empty file: expected a scenario or a list of scenarios"}
POSITIONED = re.compile(r"^(?P<path>.+?):(?P<line>[1-9]\d*):(?P<column>[1-9]\d*): \S")


def check_problems(problems: tuple[Problem, ...], path: str, *, positioned: bool = True) -> None:
    """Problems of text have a line and column; of a mapping, the key they are about."""
    assert problems
    for problem in problems:
        assert problem.path == path
        text = str(problem)
        text.encode("utf-8")  # printable, whatever the input held
        if positioned:
            assert problem.line >= 1 or problem.message in WHOLE_DOCUMENT, text
        else:
            assert (problem.line, problem.column) == (0, 0), text
        if problem.line:
            assert POSITIONED.match(text), text


def check_servable(scenarios: tuple[Scenario, ...]) -> None:
    """What the server does first with a scenario, without a server: plan its stream."""
    for scenario in scenarios:
        for step in (scenario, *scenario.sequence):
            list(stream_timeline(step, time_scale=0.0))


def as_bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")


# -- the loader --------------------------------------------------------------------------------------


@FUZZ
@given(INPUTS)
def test_the_loader_accepts_or_positions_every_problem(text: str | bytes) -> None:
    tracemalloc.start()
    try:
        try:
            scenarios = parse_scenarios(text, "f.yaml")
        except ScenarioError as exc:
            event("refused")
            check_problems(exc.problems, "f.yaml")
        else:
            event("accepted")
            check_servable(scenarios)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 1024 * 1024


@FUZZ
@given(mutated())
def test_the_same_scenarios_as_python_mappings(text: str) -> None:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        assume(False)
        raise
    items = data if isinstance(data, list) else [data]
    assume(all(isinstance(item, dict) for item in items) and items)
    loaded = load_set(items)
    if loaded.problems:
        check_problems(loaded.problems, "<inline>", positioned=False)
    else:
        check_servable(loaded.scenarios)


# -- mockllm validate ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


@FUZZ
@given(text=INPUTS)
def test_validate_prints_ok_or_positioned_problems(folder: Path, text: str | bytes) -> None:
    file = folder / "s.yaml"
    file.write_bytes(as_bytes(text))
    result = CliRunner().invoke(main, ["validate", str(file)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1)
    if result.exit_code == 0:
        assert re.fullmatch(rf"{re.escape(str(file))}: ok \(.+\)\n", result.stdout, re.DOTALL)
        assert result.stderr == ""
    else:
        assert result.stdout == ""
        for line in result.stderr.splitlines():
            assert POSITIONED.match(line) or line.endswith(tuple(WHOLE_DOCUMENT)), line


# -- PUT /_mockllm/scenarios and the openai SDK, over real sockets ---------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[MockLLMServer]:
    with MockLLMServer({"name": "before", "reply": "x"}, time_scale=0.0) as running:
        yield running
        assert running.errors == []


def stalls_forever(scenario: Scenario) -> bool:
    return any(fault.key == "stall" and fault.ends_stream for fault in scenario.faults)


def plain(scenario: Scenario) -> bool:
    """Nothing in the scenario is meant to change what the SDK reads."""
    wire = scenario.wire
    preamble = wire.comment_first or ""
    return (
        not scenario.faults
        and not wire.bom
        and wire.content_type == "text/event-stream"
        and "\n" not in preamble
        and "\r" not in preamble
    )


@pytest.mark.functional
@FUZZ
@given(text=INPUTS)
def test_put_then_stream_every_accepted_scenario(server: MockLLMServer, text: str | bytes) -> None:
    answer = httpx.put(f"{server.url}/_mockllm/scenarios", content=as_bytes(text), timeout=5)
    assert answer.status_code in (200, 400), answer.text
    assert httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200
    event(f"PUT {answer.status_code}")
    if answer.status_code == 400:
        problems = answer.json()["error"]["problems"]
        assert problems
        assert all(POSITIONED.match(p) or p.endswith(tuple(WHOLE_DOCUMENT)) for p in problems), problems
        return
    for scenario in server.scenarios:
        step = scenario.step(0)  # the PUT started every sequence again
        if stalls_forever(step):  # its scripted fault is to never end (tests/test_faults_functional.py)
            continue
        seen = openai_chat(server.url, scenario.name)
        assert server.errors == []
        event(
            "streamed: status" if step.status else ("streamed: plain" if plain(step) else "streamed: faults")
        )
        if step.status is not None:
            assert seen.error is not None
            assert issubclass(seen.error, openai.APIStatusError), seen
        elif plain(step):
            assert seen == Seen(step.reply_text), step
        else:
            assert seen.error is None or not issubclass(seen.error, openai.APIStatusError), seen
