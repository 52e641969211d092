"""The control API under ``/_mockllm/``, for tests in any language and for CI services.

- ``GET /_mockllm/scenarios``: the scenarios served, the default first.
- ``PUT /_mockllm/scenarios``: replace them all from YAML or JSON in the body, validated,
  all or nothing (a 400 lists every problem with its line and column; the old set keeps serving).
- ``POST /_mockllm/reset``: sequence counters to zero, call log emptied.
- ``GET /_mockllm/calls`` / ``DELETE /_mockllm/calls``: the call log / emptied.
- ``GET /_mockllm/config``: how this server runs.
- ``GET /_mockllm/openapi.json``: this API, described (``mockllm/data/openapi.json``, plus every
  wire format route it does not list itself).

With ``--workers N`` each worker process has its own scenarios, counters and call log: a control
request reaches one worker (whichever the kernel hands the connection to). Use one worker when
tests assert on the call log or swap scenarios at runtime.

No request path or body is ever used to open a file: ``PUT`` takes the scenarios' text itself.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import os
import re
from importlib import resources
from typing import Any

from aiohttp import web

from .errors import MockLLMError, ScenarioError
from .formats import FORMATS
from .loader import parse_scenarios
from .scenario import Scenario
from .selection import ScenarioSet
from .state import STATE, dumps

PREFIX = "/_mockllm"


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/scenarios", get_scenarios)
    app.router.add_put(f"{PREFIX}/scenarios", put_scenarios)
    app.router.add_post(f"{PREFIX}/reset", reset)
    app.router.add_get(f"{PREFIX}/calls", get_calls)
    app.router.add_delete(f"{PREFIX}/calls", delete_calls)
    app.router.add_get(f"{PREFIX}/config", get_config)
    app.router.add_get(f"{PREFIX}/verdict", get_verdict)
    app.router.add_get(f"{PREFIX}/openapi.json", openapi)


def describe(scenario: Scenario) -> dict[str, Any]:
    return {
        "name": scenario.name,
        "description": scenario.description,
        "source": scenario.source,
        "reply": scenario.reply_text,
        "tokens": scenario.stream_token_count,
        "tool_calls": [call.name for call in scenario.tool_calls],
        "faults": [fault.key for fault in scenario.faults],
        "status": scenario.status,
        "sequence_steps": len(scenario.sequence),
    }


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"message": message, **extra}}, status=status)


async def get_scenarios(request: web.Request) -> web.Response:
    scenarios = request.app[STATE].scenarios
    body = {"default": scenarios.default.name, "scenarios": [describe(s) for s in scenarios.scenarios]}
    return web.json_response(body, dumps=dumps)


async def put_scenarios(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        # Off the event loop: reading is bounded (mockllm.yamlnodes) but is still pure Python
        # work that would hold up every stream while it runs.
        replacement = await asyncio.to_thread(_scenario_set, body)
    except ScenarioError as exc:
        problems = [str(p) for p in exc.problems]
        return _error(400, "Invalid scenarios; the old ones are still served.", problems=problems)
    except MockLLMError as exc:
        return _error(400, str(exc))
    request.app[STATE].scenarios = replacement
    return web.json_response({"scenarios": replacement.names, "default": replacement.default.name})


def _scenario_set(body: bytes) -> ScenarioSet:
    return ScenarioSet(parse_scenarios(body, "<request body>"))


async def reset(request: web.Request) -> web.Response:
    """``?test=ID``: that test's counters and calls only; without it, everything."""
    state = request.app[STATE]
    test = request.query.get("test") or None
    state.scenarios.reset_counters(test)
    state.reset_chaos(test)
    state.clear_calls(test)
    return web.json_response({"reset": True, **({"test": test} if test else {})})


async def get_calls(request: web.Request) -> web.Response:
    """``?test=ID``: the calls that carried ``X-Mockllm-Test: ID``; without it, the others."""
    state = request.app[STATE]
    log = state.calls_for(request.query.get("test") or None)
    calls = log.to_list(state.epoch, state.clock.now(), state.options.secret_headers)
    return web.json_response({"calls": calls, "dropped": log.dropped, "limit": log.limit}, dumps=dumps)


async def delete_calls(request: web.Request) -> web.Response:
    state = request.app[STATE]
    cleared = state.clear_calls()
    return web.json_response({"cleared": cleared})


async def get_verdict(request: web.Request) -> web.Response:
    """The verdict (:mod:`mockllm.verdict`) over the calls so far: ``?checks=retry,abort`` and
    ``?abort_within=30s`` choose; ``?format=junit`` gives JUnit XML instead of JSON."""
    from .duration import parse_duration
    from .verdict import parse_checks, verdict

    try:
        checks = parse_checks(request.query.get("checks", "all"))
        abort_within = parse_duration(request.query.get("abort_within", "30s"))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    result = verdict(request.app[STATE].all_calls(), checks, abort_within)
    if request.query.get("format") == "junit":
        return web.Response(text=result.to_junit(), content_type="application/xml")
    return web.json_response(result.to_dict(), dumps=dumps)


async def get_config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    options = state.options
    body = {
        **options.config,
        "pid": os.getpid(),
        "time_scale": state.time_scale,
        "scenarios": state.scenarios.names,
        "api_key_required": options.api_key is not None,
        "control_token_required": options.control_token is not None,
        "max_body": options.max_body,
    }
    return web.json_response(body, dumps=dumps)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(_openapi(), dumps=dumps)


@functools.cache
def _openapi() -> dict[str, Any]:
    """``data/openapi.json``, with an entry for every route of a wire format it does not describe
    itself (routes with ``{placeholders}``, formats added since): each like the OpenAI chat
    route's, its path parameters declared."""
    spec: dict[str, Any] = json.loads(
        resources.files("mockllm").joinpath("data/openapi.json").read_text("utf-8")
    )
    template = spec["paths"]["/v1/chat/completions"]["post"]
    for fmt in FORMATS.values():
        for route in (*fmt.all_routes(), *fmt.utilities):
            if route in spec["paths"]:
                continue
            operation = copy.deepcopy(template)
            title = fmt.title or fmt.name
            operation["summary"] = (
                f"{title} ({route.rsplit(':', 1)[-1]})" if route in fmt.utilities else title
            )
            operation["parameters"] = operation.get("parameters", []) + [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"\{(\w+)\}", route)
            ]
            spec["paths"][route] = {"post": operation}
    return spec
