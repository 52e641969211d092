"""``python -m bench.selection``: the cost of choosing among 1,000 scenarios with ``match``.

Two sets of scenarios. ``contains``: each matches a different word of the last user message
(``last_user: {contains: wordN, ignore_case: true}``, plus ``tool_result: false``). ``mixed``:
the conditions cycle through contains, equals, startswith, a regex, an OR-list, a literal
``model`` with ``turn``, ``tool_result`` text with ``tools``, and a glob ``model``; one in twenty
has only a ``turn`` (nothing to index it by). A request that matches the last scenario, or none,
is the worst case: a linear scan would run every scenario's conditions.

For each, microseconds per request for the parse alone (the format's request parser building the
conversation), the pick alone (building :class:`~mockllm.match.Seen` and
:meth:`~mockllm.selection.ScenarioSet.pick`) and both: the median of ``--repeats`` runs of
``--requests`` requests, as wall time (``perf_counter_ns``) and as CPU time (``process_time_ns``,
which another process's load does not inflate). The load average is printed with them. Not a
timed test: a figure to read (the issue's budget is about 50 µs per request, parse + pick).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from mockllm.conversation import Conversation
from mockllm.formats import FORMATS
from mockllm.loader import scenario_from_dict
from mockllm.match import Seen
from mockllm.selection import ScenarioSet

Figures = dict[str, float]


def _contains(i: int) -> dict[str, Any]:
    return {"last_user": {"contains": f"word{i}z", "ignore_case": True}, "tool_result": False}


#: The ``mixed`` set's conditions, by ``i % 8`` counted from the last scenario (kind 0 is last).
_MIXED: list[Callable[[int], dict[str, Any]]] = [
    _contains,
    lambda i: {"last_user": {"equals": f"Exact question {i}?"}},
    lambda i: {"last_user": {"startswith": f"start{i}z:", "ignore_case": True}},
    lambda i: {"last_user": {"regex": rf"regex{i}z (?P<city>\w+)"}},
    lambda i: {"last_user": [f"alpha{i}z", {"contains": f"BETA{i}z", "ignore_case": True}]},
    lambda i: {"model": f"model-{i}", "turn": {"min": 1}},
    lambda i: {"tool_result": {"contains": f"result{i}z"}, "tools": ["get_weather"]},
    lambda i: {"model": "gpt-4o*", "last_user": f"word{i}z", "turn": 0},
]


def scenarios(count: int, mixed: bool = False) -> ScenarioSet:
    def match(i: int) -> dict[str, Any]:
        if not mixed:
            return _contains(i)
        if i % 20 == 7:  # nothing to index: always a candidate
            return {"turn": {"min": 5}}
        return _MIXED[(count - 1 - i) % len(_MIXED)](i)

    # Mappings, not one YAML text: 1,000 scenarios are more nodes than one file may hold.
    built = [scenario_from_dict({"reply": f"r{i}", "match": match(i)}, name=f"s{i}") for i in range(count)]
    return ScenarioSet([*built, scenario_from_dict({"reply": "f"}, name="fallback")])


def _median(run: Callable[[], None], requests: int, repeats: int) -> tuple[float, float]:
    """Median µs per request over ``repeats`` runs: (wall, CPU)."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter_ns(), time.process_time_ns()
        run()
        walls.append((time.perf_counter_ns() - wall) / requests / 1000)
        cpus.append((time.process_time_ns() - cpu) / requests / 1000)
    return statistics.median(walls), statistics.median(cpus)


def measure(count: int, requests: int, repeats: int = 5, mixed: bool = False) -> dict[str, Figures]:
    chosen = scenarios(count, mixed)
    fmt = FORMATS["openai-chat"]
    text = "Please tell me about " + " ".join(["the weather"] * 20) + f" and word{count - 1}z"
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": text}],
    }
    figures = {}
    for label, wanted in (("last matches", text), ("none matches", "nothing here")):
        body["messages"][-1]["content"] = wanted
        conversation = fmt.parse_request(body).conversation
        expected = f"s{count - 1}" if label == "last matches" else "fallback"
        assert chosen.pick(None, Seen(conversation, fmt.name, {}, body)).scenario.name == expected

        def parse() -> None:
            for _ in range(requests):
                fmt.parse_request(body)

        def pick(conversation: Conversation = conversation) -> None:
            for _ in range(requests):
                chosen.pick(None, Seen(conversation, fmt.name, {}, body))

        def both() -> None:
            for _ in range(requests):
                chosen.pick(None, Seen(fmt.parse_request(body).conversation, fmt.name, {}, body))

        figures[label] = {}
        for part, run in (("parse", parse), ("pick", pick), ("parse + pick", both)):
            wall, cpu = _median(run, requests, repeats)
            figures[label][part] = wall
            figures[label][f"{part} cpu"] = cpu
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average {load}; µs per request, median of {args.repeats} × {args.requests} (wall / CPU)")
    for mixed in (False, True):
        kind = "mixed" if mixed else "contains"
        for label, parts in measure(args.scenarios, args.requests, args.repeats, mixed).items():
            shown = "  ".join(
                f"{part} {parts[part]:5.1f} / {parts[f'{part} cpu']:5.1f}"
                for part in ("parse", "pick", "parse + pick")
            )
            print(f"{args.scenarios} {kind:8} match scenarios, {label}: {shown}")


if __name__ == "__main__":
    main()
