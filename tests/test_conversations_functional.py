"""Tool loops driven to their end by the official SDKs, the scenario file alone deciding each
turn (scenarios/agent/weather.yaml): a question gets a tool call, the tool's result gets the
final answer, in every wire format."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest

from mockllm import MockLLMServer

from .conftest import SCENARIOS

AGENT = SCENARIOS / "agent"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
FINAL = "It is 18 °C in Paris."


def get_weather(city: str) -> str:
    return json.dumps({"city": city, "temp": 18})


@pytest.fixture
def agent() -> Any:
    with MockLLMServer([AGENT]) as server:
        yield server


@pytest.mark.parametrize("stream", [False, True])
def test_openai_chat_tool_loop(agent: MockLLMServer, stream: bool) -> None:
    client = openai.OpenAI(base_url=agent.openai_base_url, api_key="x", max_retries=0)
    tools = [{"type": "function", "function": WEATHER_TOOL}]
    messages: list[Any] = [{"role": "user", "content": "What's the Weather in Paris?"}]
    for _ in range(5):
        if stream:
            with client.chat.completions.stream(model="gpt-4o", messages=messages, tools=tools) as s:
                message = s.get_final_completion().choices[0].message
        else:
            message = client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
            message = message.choices[0].message
        if not message.tool_calls:
            break
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            result = get_weather(**json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    client.close()
    assert message.content == FINAL
    assert [(c.scenario, c.reason) for c in agent.calls] == [
        ("ask-weather", "match"),
        ("answer-weather", "match"),
    ]
    assert agent.calls[0].why == "ask-weather: last_user, tool_result held"


def test_openai_responses_tool_loop(agent: MockLLMServer) -> None:
    client = openai.OpenAI(base_url=agent.openai_base_url, api_key="x", max_retries=0)
    tools: Any = [{"type": "function", **WEATHER_TOOL}]
    items: list[Any] = [{"role": "user", "content": "weather in Paris, please"}]
    for _ in range(5):
        response = client.responses.create(model="gpt-4.1", input=items, tools=tools)
        calls = [item for item in response.output if item.type == "function_call"]
        if not calls:
            break
        items += [item.model_dump(exclude_none=True) for item in response.output]
        for call in calls:
            output = get_weather(**json.loads(call.arguments))
            items.append({"type": "function_call_output", "call_id": call.call_id, "output": output})
    client.close()
    assert response.output_text == FINAL
    assert [c.scenario for c in agent.calls] == ["ask-weather", "answer-weather"]


def test_anthropic_tool_loop(agent: MockLLMServer) -> None:
    client = anthropic.Anthropic(base_url=agent.url, api_key="x", max_retries=0)
    tools: Any = [{"name": WEATHER_TOOL["name"], "input_schema": WEATHER_TOOL["parameters"]}]
    messages: list[Any] = [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}]
    for _ in range(5):
        with client.messages.stream(model="claude-x", max_tokens=100, messages=messages, tools=tools) as s:
            message = s.get_final_message()
        uses = [block for block in message.content if block.type == "tool_use"]
        if not uses:
            break
        messages.append({"role": "assistant", "content": [b.model_dump() for b in message.content]})
        results = [
            {"type": "tool_result", "tool_use_id": u.id, "content": get_weather(**u.input)}  # type: ignore[arg-type]
            for u in uses
        ]
        messages.append({"role": "user", "content": results})
    client.close()
    assert [b.text for b in message.content if b.type == "text"] == [FINAL]
    assert [c.scenario for c in agent.calls] == ["ask-weather", "answer-weather"]
    # The user turn holding only tool_result blocks is not the last user text: the question is.
    assert agent.calls[1].conversation.last_user == "Weather in Paris?"


def test_ollama_tool_loop(agent: MockLLMServer) -> None:
    client = ollama.Client(host=agent.url)
    tools: Any = [{"type": "function", "function": WEATHER_TOOL}]
    messages: list[Any] = [{"role": "user", "content": "what is the weather like in Paris"}]
    for _ in range(5):
        message = client.chat(model="llama3", messages=messages, tools=tools, stream=False).message
        if not message.tool_calls:
            break
        messages.append(message)
        for call in message.tool_calls:
            messages.append({"role": "tool", "content": get_weather(**call.function.arguments)})
    client.close()
    assert message.content == FINAL
    assert [c.scenario for c in agent.calls] == ["ask-weather", "answer-weather"]


def test_anything_else_gets_the_default(agent: MockLLMServer) -> None:
    response = httpx.post(
        f"{agent.openai_base_url}/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hello"}]},
    )
    assert response.json()["choices"][0]["message"]["content"] == "I can only talk about the weather."
    assert (agent.calls.last.scenario, agent.calls.last.reason) == ("fallback", "default")


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
def test_an_agent_framework_runs_its_own_loop_to_the_answer(agent: MockLLMServer, api: str) -> None:
    """The OpenAI Agents SDK (openai-agents) drives the loop itself: it calls the model, runs the
    function tool the scenario asked for, sends the result back, and stops at the final text."""
    import agents

    agents.set_tracing_disabled(True)  # no trace export: nothing leaves the machine
    client = openai.AsyncOpenAI(base_url=agent.openai_base_url, api_key="x", max_retries=0)
    model: Any = (
        agents.OpenAIResponsesModel("gpt-4.1", client)
        if api == "responses"
        else agents.OpenAIChatCompletionsModel("gpt-4.1", client)
    )
    ran: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        ran.append(city)
        return json.dumps({"city": city, "temp": 18})

    weather_agent = agents.Agent(name="weather", instructions="Be brief.", model=model, tools=[get_weather])

    async def run() -> Any:
        async with client:  # closed on the loop it ran on
            return await agents.Runner.run(weather_agent, "What's the weather in Paris?")

    result = asyncio.run(run())
    assert result.final_output == FINAL
    assert ran == ["Paris"]
    assert [c.scenario for c in agent.calls] == ["ask-weather", "answer-weather"]
    assert {c.format for c in agent.calls} == {f"openai-{api.split('_')[0]}"}
