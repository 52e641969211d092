"""``python -m bench.selection``: the cost of choosing among 1,000 scenarios with ``match``.

Each scenario matches a different word of the last user message (``last_user: {contains: wordN,
ignore_case: true}``, plus ``tool_result: false``), so a request that matches the last one, or
none, runs every scenario's conditions: the worst case. Prints microseconds per request for the
parse (the format's request parser building the conversation) and the pick, measured with
``time.perf_counter_ns`` over ``--requests`` requests. Not a timed test: a figure to read
(the issue's budget is about 50 µs per request).
"""

from __future__ import annotations

import argparse
import time

from mockllm.formats import FORMATS
from mockllm.loader import scenario_from_dict
from mockllm.match import Seen
from mockllm.selection import ScenarioSet


def scenarios(count: int) -> ScenarioSet:
    # Mappings, not one YAML text: 1,000 scenarios are more nodes than one file may hold.
    built = [
        scenario_from_dict(
            {
                "reply": f"r{i}",
                "match": {"last_user": {"contains": f"word{i}z", "ignore_case": True}, "tool_result": False},
            },
            name=f"s{i}",
        )
        for i in range(count)
    ]
    return ScenarioSet([*built, scenario_from_dict({"reply": "f"}, name="fallback")])


def measure(count: int, requests: int) -> dict[str, float]:
    chosen = scenarios(count)
    fmt = FORMATS["openai-chat"]
    text = "Please tell me about " + " ".join(["the weather"] * 20) + f" and word{count - 1}z"
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": text}],
    }
    figures = {}
    for label, wanted in (("last matches", text), ("none matches", "nothing here")):
        body["messages"][-1]["content"] = wanted
        start = time.perf_counter_ns()
        for _ in range(requests):
            seen = Seen(fmt.parse_request(body).conversation, fmt.name, {}, body)
            choice = chosen.pick(None, seen)
        figures[label] = (time.perf_counter_ns() - start) / requests / 1000
        assert choice.scenario.name == (f"s{count - 1}" if label == "last matches" else "fallback")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    for label, micros in measure(args.scenarios, args.requests).items():
        print(f"{args.scenarios} match scenarios, {label}: {micros:.1f} µs per request (parse + pick)")


if __name__ == "__main__":
    main()
