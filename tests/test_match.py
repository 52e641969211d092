"""``match`` conditions, the selection order 1-5, the no-match message, and the normalised request
every format's parser builds."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mockllm import parse_scenarios
from mockllm.errors import NoScenarioMatched, ScenarioError
from mockllm.formats import FORMATS
from mockllm.match import Seen
from mockllm.selection import ScenarioSet

from .conftest import Serve

AGENT = """
- name: ask-weather
  match:
    last_user: {contains: weather, ignore_case: true}
    tool_result: false
  reply: "Let me check."
  tool_calls: [{name: get_weather, arguments: {city: Paris}}]
- name: answer-weather
  match:
    tool_result: {contains: '"temp"'}
  reply: "It is 18 °C in Paris."
"""


def chat(*messages: dict[str, Any], fmt: str = "openai-chat", **body: Any) -> Seen:
    data = {"model": "gpt-4o", "messages": list(messages), **body}
    return Seen(FORMATS[fmt].parse_request(data).conversation, fmt, body.pop("_headers", {}), data)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def miss(condition: str, seen: Seen) -> str | None:
    (scenario,) = parse_scenarios(f"name: s\nreply: x\nmatch:\n  {condition}\n")
    assert scenario.match is not None
    why = scenario.match.miss(seen)
    return None if why is None else str(why)


TOOL_TURN = (
    user("weather?"),
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "1", "type": "function", "function": {"name": "w", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "1", "content": '{"temp": 18}'},
)


@pytest.mark.parametrize(
    ("condition", "seen", "expected"),
    [
        ("last_user: weather", chat(user("the weather")), None),
        ("last_user: weather", chat(user("hello")), "last_user does not contain 'weather' (it was 'hello')"),
        ("last_user: {contains: WEATHER, ignore_case: true}", chat(user("Weather")), None),
        (
            "last_user: {contains: WEATHER}",
            chat(user("Weather")),
            "last_user does not contain 'WEATHER' (it was 'Weather')",
        ),
        ("last_user: {equals: hi}", chat(user("hi!")), "last_user does not equal 'hi' (it was 'hi!')"),
        ("last_user: {startswith: Hi, ignore_case: true}", chat(user("hi there")), None),
        (
            "last_user: {regex: '^\\d+$'}",
            chat(user("12a")),
            "last_user does not match /^\\d+$/ (it was '12a')",
        ),
        ("last_user: [a, {equals: b}]", chat(user("b")), None),
        (
            "last_user: [a, {equals: b}]",
            chat(user("c")),
            "last_user does not any of: contain 'a', equal 'b' (it was 'c')",
        ),
        ("system: RAG", chat({"role": "developer", "content": "RAG context"}, user("q")), None),
        ("system: RAG", chat(user("q")), "system does not contain 'RAG' (there was none)"),
        (
            "any_message: secret",
            chat(user("a secret"), {"role": "assistant", "content": "b"}, user("c")),
            None,
        ),
        ("tool_result: true", chat(*TOOL_TURN), None),
        (
            "tool_result: true",
            chat(user("x")),
            "tool_result: the last message is not a tool result (it is a user message)",
        ),
        (
            "tool_result: false",
            chat(*TOOL_TURN),
            "tool_result: the last message is a tool result ('{\"temp\": 18}')",
        ),
        ("tool_result: temp", chat(*TOOL_TURN), None),
        (
            "tools: [get_weather]",
            chat(user("x"), tools=[{"type": "function", "function": {"name": "get_weather"}}]),
            None,
        ),
        (
            "tools: [get_weather, search]",
            chat(user("x"), tools=[{"type": "function", "function": {"name": "get_weather"}}]),
            "tools: the request does not offer 'search' (it offers 'get_weather')",
        ),
        ("turn: 1", chat(*TOOL_TURN), None),
        ("turn: 0", chat(*TOOL_TURN), "turn is 1, not 0"),
        ("turn: {min: 2}", chat(*TOOL_TURN), "turn is 1, not at least 2"),
        ("turn: {max: 3}", chat(*TOOL_TURN), None),
        ("model: 'gpt-4o*'", chat(user("x")), None),
        ("model: 'claude-*'", chat(user("x")), "model 'gpt-4o' does not match 'claude-*'"),
        (
            "body: {temperature: 0, response_format: {type: json_object}}",
            chat(user("x"), temperature=0.0, response_format={"type": "json_object"}),
            None,
        ),
        ("body: {temperature: 0}", chat(user("x"), temperature=0.7), "body.temperature is 0.7, not 0"),
        ("body: {response_format: {type: json_object}}", chat(user("x")), "body.response_format is missing"),
        (
            "format: [anthropic, ollama-chat]",
            chat(user("x")),
            "format is 'openai-chat', not 'anthropic' or 'ollama-chat'",
        ),
        ("format: openai-chat", chat(user("x")), None),
    ],
)
def test_each_condition(condition: str, seen: Seen, expected: str | None) -> None:
    assert miss(condition, seen) == expected


def test_headers_are_matched_by_any_case_of_their_name() -> None:
    seen = Seen(chat(user("x")).conversation, "openai-chat", {"x-tenant": "acme"})
    assert miss("headers: {X-Tenant: acme}", seen) is None
    assert (
        miss("headers: {X-Tenant: {equals: other}}", seen)
        == "header X-Tenant does not equal 'other' (it was 'acme')"
    )
    assert miss("headers: {X-Missing: a}", seen) == "header X-Missing does not contain 'a' (there was none)"


def test_conditions_all_hold_and_the_first_that_fails_is_named() -> None:
    seen = chat(user("weather?"))
    assert miss("{last_user: weather, turn: 0}", seen) is None
    assert miss("{last_user: weather, turn: 3, model: x}", seen) == "turn is 0, not 3"


# -- the normalised request of every format --------------------------------------------------------


def conversation(fmt: str, body: dict[str, Any]) -> dict[str, Any]:
    return FORMATS[fmt].parse_request(body).conversation.to_dict()


def test_every_format_reads_the_same_conversation() -> None:
    tool_result = {"role": "tool", "text": '{"temp": 18}'}
    expected_tail = [
        {"role": "user", "text": "weather?"},
        {"role": "assistant", "text": "", "tool_calls": ["w"]},
        tool_result,
    ]
    anthropic = conversation(
        "anthropic",
        {
            "model": "c",
            "max_tokens": 5,
            "system": [{"type": "text", "text": "sys"}],
            "tools": [{"name": "w", "input_schema": {}}],
            "messages": [
                user("weather?"),
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "w", "input": {}}]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t", "content": '{"temp": 18}'}],
                },
            ],
        },
    )
    responses = conversation(
        "openai-responses",
        {
            "model": "c",
            "instructions": "sys",
            "tools": [{"type": "function", "name": "w"}],
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
                {"type": "function_call", "call_id": "1", "name": "w", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "1", "output": '{"temp": 18}'},
            ],
        },
    )
    messages = [{"role": "system", "content": "sys"}, *TOOL_TURN]
    tools = [{"type": "function", "function": {"name": "w"}}]
    openai_chat = conversation("openai-chat", {"model": "c", "messages": messages, "tools": tools})
    ollama = conversation(
        "ollama-chat",
        {
            "model": "c",
            "tools": tools,
            "messages": [
                {"role": "system", "content": "sys"},
                user("weather?"),
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "w", "arguments": {}}}],
                },
                {"role": "tool", "content": '{"temp": 18}'},
            ],
        },
    )
    for seen in (anthropic, responses, openai_chat, ollama):
        assert (seen["system"], seen["messages"], seen["tools"]) == ("sys", expected_tail, ["w"])
    generate = conversation("ollama-generate", {"model": "c", "prompt": "p", "system": "s"})
    assert (generate["system"], generate["messages"]) == ("s", [{"role": "user", "text": "p"}])
    completions = conversation("openai-completions", {"model": "c", "prompt": "p"})
    assert completions["messages"] == [{"role": "user", "text": "p"}]


# -- selection --------------------------------------------------------------------------------------


def test_selection_order() -> None:
    scenarios = ScenarioSet(
        parse_scenarios(
            """
- {name: first, reply: a}
- {name: by-match, reply: b, match: {last_user: pick}}
- {name: gpt-4o, reply: c}
- {name: by-match-too, reply: d, match: {last_user: pick}}
"""
        )
    )
    picked = chat(user("pick me"))
    assert scenarios.pick("first", picked).reason == "header"  # 1. the header beats a match
    choice = scenarios.pick(None, picked)
    assert (choice.scenario.name, choice.reason, choice.why) == (
        "by-match",
        "match",
        "by-match: last_user held",
    )
    assert scenarios.pick(None, chat(user("no"))).scenario.name == "gpt-4o"  # 3. model name
    other = Seen(chat(user("no")).conversation.__class__("other"), "openai-chat")
    assert (scenarios.pick(None, other).scenario.name, scenarios.pick(None, other).reason) == (
        "first",
        "default",
    )
    with pytest.raises(NoScenarioMatched):
        scenarios.pick(None, other, strict=True)  # --strict: no step 4
    assert scenarios.pick(None, chat(user("no")), strict=True).reason == "model"


def test_marked_default_and_first_without_match() -> None:
    loaded = parse_scenarios(
        "- {name: m, reply: a, match: {turn: 5}}\n- {name: plain, reply: b}\n- {name: d, reply: c, default: true}\n"
    )
    assert ScenarioSet(loaded).pick(None, chat(user("x"))).scenario.name == "d"
    loaded = parse_scenarios("- {name: m, reply: a, match: {turn: 5}}\n- {name: plain, reply: b}\n")
    assert ScenarioSet(loaded).pick(None, chat(user("x"))).scenario.name == "plain"


def test_no_match_message_explains_each_miss() -> None:
    scenarios = ScenarioSet(parse_scenarios(AGENT))
    with pytest.raises(NoScenarioMatched) as caught:
        scenarios.pick(None, chat(user("hello")))
    assert str(caught.value) == (
        "No scenario matches this request (model 'gpt-4o', last_user 'hello'; "
        "no scenario without a match to default to):\n"
        "  ask-weather: last_user does not contain 'weather' (it was 'hello')\n"
        "  answer-weather: tool_result: the last message is not a tool result (it is a user message)"
    )


def test_no_match_is_a_404_in_each_route_shape(serve: Serve) -> None:
    server = serve(*parse_scenarios(AGENT))
    body = {"model": "m", "max_tokens": 5, "messages": [user("hello")]}
    response = httpx.post(f"{server.url}/v1/messages", json=body)
    assert response.status_code == 404
    error = response.json()
    assert error["type"] == "error"
    assert "ask-weather: last_user does not contain 'weather' (it was 'hello')" in error["error"]["message"]
    response = httpx.post(f"{server.url}/api/chat", json={"model": "m", "messages": [user("hello")]})
    assert response.status_code == 404
    assert response.json()["error"].startswith("No scenario matches this request")
    response = httpx.post(
        f"{server.openai_base_url}/chat/completions", json={"model": "m", "messages": [user("hi")]}
    )
    assert response.json()["error"]["code"] == "no_scenario_matched"
    calls = httpx.get(f"{server.url}/_mockllm/calls").json()["calls"]
    assert [(c["status"], c["reason"]) for c in calls] == [(404, None)] * 3


def test_strict_server_turns_the_default_off(serve: Serve) -> None:
    from mockllm.state import Options

    server = serve({"name": "plain", "reply": "x"}, options=Options(strict=True))
    body = {"model": "m", "messages": [user("hi")]}
    response = httpx.post(f"{server.openai_base_url}/chat/completions", json=body)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == (
        "No scenario matches this request (model 'm', last_user 'hi'; --strict: no default answers):\n"
        "  (no scenario has a match)"
    )
    response = httpx.post(f"{server.openai_base_url}/chat/completions", json={**body, "model": "plain"})
    assert response.status_code == 200


def test_call_log_shows_reason_why_and_the_conversation(serve: Serve) -> None:
    server = serve(*parse_scenarios(AGENT))
    httpx.post(
        f"{server.openai_base_url}/chat/completions", json={"model": "m", "messages": [user("Weather?")]}
    )
    (call,) = httpx.get(f"{server.url}/_mockllm/calls").json()["calls"]
    assert (call["scenario"], call["reason"], call["why"]) == (
        "ask-weather",
        "match",
        "ask-weather: last_user, tool_result held",
    )
    assert call["conversation"]["messages"] == [{"role": "user", "text": "Weather?"}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "match: {lastuser: x}",
            "s.yaml:3:9: match.lastuser: unknown key (allowed: any_message, body, format, headers, "
            "last_user, model, system, tool_result, tools, turn); did you mean 'last_user'?",
        ),
        (
            "match: {last_user: {regex: '(a'}}",
            "s.yaml:3:28: match.last_user.regex: '(a' is not a regular expression: "
            "missing ), unterminated subpattern at position 0",
        ),
        (
            "match: {turn: many}",
            "s.yaml:3:15: match.turn: 'many' is not valid under any of the given schemas",
        ),
        ("match: {tools: get_weather}", "s.yaml:3:16: match.tools: expected a list, not 'get_weather'"),
        (
            "match: {format: grpc}",
            "s.yaml:3:17: match.format: 'grpc' is not valid under any of the given schemas",
        ),
        (
            "match: {last_user: {contains: a, equals: b}}",
            "s.yaml:3:20: match.last_user: needs exactly one of contains, equals, startswith, regex (found: contains, equals)",
        ),
        (
            "default: true\nmatch: {turn: 1}",
            "s.yaml:4:8: match: a default answers the requests no match holds for: it cannot have a match",
        ),
    ],
)
def test_bad_match_is_a_positioned_load_error(text: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenarios(f"name: s\nreply: x\n{text}\n", "s.yaml")
    assert [str(p) for p in caught.value.problems] == [expected]


def test_the_index_keeps_load_order_and_misses_nothing() -> None:
    loaded = parse_scenarios(
        """
- {name: regex-first, reply: a, match: {last_user: {regex: 'Pa.is'}}}
- {name: short, reply: b, match: {last_user: is}}
- {name: folded, reply: c, match: {last_user: {contains: PARIS, ignore_case: true}}}
- {name: exact, reply: d, match: {last_user: Paris}}
- {name: shared-prefix, reply: e, match: {last_user: weather in Rome}}
- {name: shared-prefix-2, reply: f, match: {last_user: weather in Oslo}}
- {name: plain, reply: g}
"""
    )
    scenarios = ScenarioSet(loaded)

    def name(text: str) -> str:
        return scenarios.pick(None, chat(user(text))).scenario.name

    assert name("to Paris") == "regex-first"
    assert name("this") == "short"
    assert name("PARIS!") == "folded"
    assert name("weather in Oslo") == "shared-prefix-2"
    assert name("weather in Rome") == "shared-prefix"
    assert name("nothing") == "plain"
    without_regex = ScenarioSet(loaded[2:])
    assert (
        without_regex.pick(None, chat(user("Paris"))).scenario.name == "folded"
    )  # load order, not bucket order


def test_x_mockllm_test_scopes_counters_and_the_call_log(serve: Serve) -> None:
    server = serve({"name": "steps", "reply": "x", "sequence": [{"reply": "one"}, {"reply": "two"}]})
    url = f"{server.openai_base_url}/chat/completions"
    body = {"model": "steps", "messages": [user("hi")]}

    def ask(test: str | None) -> str:
        headers = {"X-Mockllm-Test": test} if test else {}
        reply: str = httpx.post(url, json=body, headers=headers).json()["choices"][0]["message"]["content"]
        return reply

    # two "tests" interleaved on one server, and a request of neither
    assert [ask("a"), ask("b"), ask("a"), ask(None), ask("b")] == ["one", "one", "two", "one", "two"]
    calls = {t: httpx.get(f"{server.url}/_mockllm/calls", params={"test": t}).json()["calls"] for t in "ab"}
    assert [c["test"] for c in calls["a"]] == ["a", "a"]
    assert len(calls["b"]) == 2
    assert [c["test"] for c in httpx.get(f"{server.url}/_mockllm/calls").json()["calls"]] == [None]
    assert httpx.post(f"{server.url}/_mockllm/reset", params={"test": "a"}).json() == {
        "reset": True,
        "test": "a",
    }
    assert httpx.get(f"{server.url}/_mockllm/calls", params={"test": "a"}).json()["calls"] == []
    assert len(httpx.get(f"{server.url}/_mockllm/calls", params={"test": "b"}).json()["calls"]) == 2
    assert [ask("a"), ask("b")] == ["one", "two"]  # a starts again; b goes on (its last step repeats)
    # an EventSource cannot send headers: test= in the query of GET /v1/stream
    with httpx.stream(
        "GET", f"{server.url}/v1/stream", params={"scenario": "steps", "test": "c"}
    ) as response:
        data = response.read()
    assert b'"content":"o"' in data
    assert b'"content":"w"' not in data  # step one of c's own counter
    assert [
        c["path"] for c in httpx.get(f"{server.url}/_mockllm/calls", params={"test": "c"}).json()["calls"]
    ] == ["/v1/stream"]


def test_test_scopes_are_bounded(monkeypatch: pytest.MonkeyPatch, serve: Serve) -> None:
    monkeypatch.setattr("mockllm.state.MAX_SCOPES", 3)
    server = serve({"name": "steps", "reply": "x", "sequence": [{"reply": "one"}, {"reply": "two"}]})
    url = f"{server.openai_base_url}/chat/completions"
    body = {"model": "steps", "messages": [user("hi")]}
    for test in ("t1", "t1", "t2", "t3", "t4"):  # t4 pushes t1, the oldest, out
        httpx.post(url, json=body, headers={"X-Mockllm-Test": test})
    assert sorted(server.state.scoped) == ["t2", "t3", "t4"]
    reply = httpx.post(url, json=body, headers={"X-Mockllm-Test": "t1"}).json()["choices"][0]["message"]
    assert reply["content"] == "one"  # t1's counter went with it
