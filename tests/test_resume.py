"""EventSource resume without a server: ids name events, a reconnect continues after the one
named, with the faults that made the client reconnect behind it (mockllm.resume)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from mockllm.events import Close, Hang
from mockllm.formats import FORMATS, ApiRequest, StreamContext
from mockllm.resume import resumed
from mockllm.scenario import Scenario
from mockllm.timeline import build_timeline

from .conftest import make_scenario

CONTEXT = StreamContext(id="X", created=0, model="m")
TOOLS = [{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {"b": 2}}]


def connect(scenario: Scenario, last_id: int | None) -> tuple[list[tuple[int, str]], bool] | None:
    """The events (id, data) a client gets from one connection, and whether it saw the end."""
    encoder = FORMATS["openai-chat"].stream_encoder(scenario, ApiRequest("m", True, 0), CONTEXT)
    steps = build_timeline(scenario) if last_id is None else resumed(scenario, encoder, last_id)
    if steps is None:
        return None  # 204
    data, ended = b"", True
    for step in steps:
        if isinstance(step.event, Close | Hang):
            ended = step.event.outcome == "completed" if isinstance(step.event, Close) else False
            break
        data += encoder.encode(step.event)
    events = []
    for block in data.decode().split("\n\n")[:-1]:  # the part after the last blank line is not an event
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        events.append((int(fields["id"]), fields.get("data", "")))
    return events, ended


def reconnecting(scenario: Scenario) -> tuple[str, dict[int, str], list[int | None]]:
    """The reply text, tool arguments and Last-Event-IDs of a client that reconnects until [DONE]."""
    scenario = replace(scenario, wire=replace(scenario.wire, event_ids=True))
    text, arguments, last, sent = "", {}, None, []
    for _ in range(6):
        sent.append(last)
        got = connect(scenario, last)
        assert got is not None, "204 before [DONE]"
        events, _ = got
        for event_id, data in events:
            last = event_id
            if data == "[DONE]":
                return text, arguments, sent
            try:
                chunk = json.loads(data)
            except json.JSONDecodeError:
                continue
            if "error" in chunk:
                break
            delta = chunk["choices"][0]["delta"]
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                arguments[call["index"]] = arguments.get(call["index"], "") + call["function"]["arguments"]
    raise AssertionError(f"no [DONE]: {text!r}, {arguments}")


@pytest.mark.parametrize(
    ("faults", "connections"),
    [
        ([{"at": 1, "disconnect": "reset"}], 2),
        ([{"at": 2, "disconnect": "fin"}], 2),  # before the first tool call starts
        ([{"at": 4, "disconnect": "mid-event"}], 2),  # inside the first call's arguments
        ([{"at": 9, "disconnect": "reset"}], 2),  # the second call's first fragment: after the first's end
        ([{"at": 3, "malformed": "not-json"}, {"at": 6, "error_event": {"message": "x"}}], 2),
        ([{"at": 5, "stall": "1s", "mid_event": True}, {"at": 7, "disconnect": "truncate"}], 2),
        ([{"at": "end", "disconnect": "reset"}], 2),
    ],
)
def test_text_and_tool_arguments_arrive_exactly_once(faults: list[dict[str, Any]], connections: int) -> None:
    scenario = make_scenario(reply="Hi", tool_calls=TOOLS, faults=faults)
    text, arguments, sent = reconnecting(scenario)
    assert (text, arguments) == ("Hi", {0: '{"a":1}', 1: '{"b":2}'})
    assert len(sent) == connections


def test_ids_continue_from_the_one_named_and_faults_after_it_still_fire() -> None:
    scenario = make_scenario(
        reply="abcdef", faults=[{"at": 1, "malformed": "not-json"}, {"at": 4, "malformed": "not-json"}]
    )
    scenario = replace(scenario, wire=replace(scenario.wire, event_ids=True))
    first = connect(scenario, None)
    assert first is not None
    assert [data[:5] for _, data in first[0]] == [
        '{"id"',  # the role chunk
        '{"id"',
        "hello",
        *['{"id"'] * 3,
        "hello",
        *['{"id"'] * 3,
        "[DONE",
    ]
    again = connect(scenario, 3)  # the first bad line's id
    assert again is not None
    assert again[0] == first[0][3:]  # the same events with the same ids, the later bad line included


def test_nothing_after_the_last_event_or_an_id_never_sent() -> None:
    scenario = make_scenario(reply="ab", wire={"event_ids": True})
    assert connect(scenario, 4) == ([(5, "[DONE]")], True)  # after the role chunk, a, b, the finish
    assert connect(scenario, 5) is None
    assert connect(scenario, 99) is None


def test_the_first_resumed_event_goes_at_once_and_the_rest_keep_their_spacing() -> None:
    scenario = make_scenario(
        reply="abcd", timing={"first_token": "1s", "per_token": "100ms"}, wire={"event_ids": True}
    )
    encoder = FORMATS["openai-chat"].stream_encoder(scenario, ApiRequest("m", True, 0), CONTEXT)
    steps = resumed(scenario, encoder, 3)  # the role chunk, a, b
    assert steps is not None
    assert [(round(step.deadline, 6), type(step.event).__name__) for step in steps] == [
        (0.0, "Preamble"),
        (0.0, "Token"),
        (0.1, "Token"),
        (0.1, "Finish"),
        (0.1, "Done"),
        (0.1, "Close"),
    ]
