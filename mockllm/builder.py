"""One scenario's data → a :class:`~mockllm.scenario.Scenario`, or every problem with it.

The contract: a scenario built here is one the server can serve. So beside the JSON Schema
(:mod:`mockllm.schemaerrors`) this module refuses, at their key, the values the schema cannot
see but the server or a client would trip on:

- text that is not Unicode (a lone surrogate: it cannot be encoded to be sent), a number that is
  not finite (``.inf``, ``.nan``), an integer beyond 64 bits;
- data nested or large past the YAML reader's limits, for mappings built in Python;
- a header name that is not an HTTP token, a header value (or ``wire.content_type``) with a control
  character, a ``Content-Length`` or ``Transfer-Encoding`` header (``wire.framing`` frames the
  body), headers longer than :data:`~mockllm.httpspecs.MAX_HEADER_BYTES` all told;
- a duration longer than a day; a ``body`` or tool-call ``arguments`` that are not JSON;
- a stream of more than :data:`MAX_TOKENS` tokens.

Then the checks that need the built model run (a fault's ``at`` beyond the reply, two faults
cutting one token, ...).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .duration import parse_duration
from .errors import Problem, show
from .faults import decode_raw
from .faultspecs import build_faults
from .httpspecs import body_ok, headers_ok, json_problem, reject_constant
from .latency import build_timing, gaps_ok
from .match import compile_match
from .scenario import Chaos, ChaosOption, Limits, Scenario, ToolCall, Usage, Wire, split_tokens
from .schemaerrors import Report, schema_problems
from .template import BUILT_IN, group_names, unknown
from .vectors import pinned_embeddings
from .yamlnodes import MAX_DEPTH, MAX_NODES, KeyPath, Locate, dotted

#: Tokens of one stream (reply tokens and tool-call argument fragments): planning a stream costs
#: time and memory per token, on the server's event loop.
MAX_TOKENS = 1_000_000
#: 64-bit signed: JSON, the JSON Schema and every client read integers as at most this.
MAX_INT = 2**63 - 1

_SURROGATE = re.compile("[\ud800-\udfff]")


def build_scenario(
    data: Any, path: str, locate: Locate, default_name: str | None, problems: list[Problem]
) -> Scenario | None:
    """The scenario ``data`` describes; ``None``, with its problems added to ``problems``, if it
    has any. ``default_name`` is the name when it sets none (``None``: it must)."""
    reported: set[tuple[KeyPath, str]] = set()

    def report(key: KeyPath, message: str, *, at_key: bool = False) -> None:
        reported.add((key, message))
        problems.append(Problem(path, *locate(key, at_key), dotted(key), message))

    before = len(problems)
    if not isinstance(data, Mapping):
        report((), f"a scenario must be a mapping with at least a 'reply', not {show(data)}")
        return None
    skip = value_problems(data, report)
    schema_problems(data, "scenario", report, skip=skip)
    if not {"reply", "tool_calls", "transcript", "embeddings"} & set(data) and () not in skip:
        report((), "missing key 'reply' (a scenario needs a reply, tool_calls, both, or a transcript)")
    if "name" not in data and default_name is None:
        report((), "missing key 'name' (required when a file holds several scenarios)")
    if len(problems) > before:
        return None

    name = data.get("name", default_name)
    source = f"{path}:{locate((), False)[0]}" if locate((), False)[0] else path
    base = {key: value for key, value in data.items() if key != "sequence"}
    main = _build(base, name, source, report)
    steps = []
    for index, step in enumerate(data.get("sequence", ())):
        merged = _merge(base, step)
        in_step = _step_reporter(report, reported, index, step)
        steps.append(_build(merged, name, source, in_step))
    match = compile_match(data["match"], report) if "match" in data else None
    if "match" in data and data.get("default"):
        report(("match",), "a default answers the requests no match holds for: it cannot have a match")
    for key, part in [
        ((), data),
        *((("sequence", i), step) for i, step in enumerate(data.get("sequence", ()))),
    ]:
        reply = part.get("reply") if isinstance(part, Mapping) else None
        if _merge(base, part).get("template") and isinstance(reply, str):
            for name in unknown(reply, match):
                known = ", ".join(f"${{{n}}}" for n in (*BUILT_IN, *sorted(group_names(match))))
                report((*key, "reply"), f"${{{name}}} is not a placeholder: the template knows {known}")
    chaos = (
        _chaos(data["chaos"], base, name, source, report) if "chaos" in data and main is not None else None
    )
    if main is None or None in steps or len(problems) > before:
        return None
    sequence = tuple(s for s in steps if s is not None)
    return Scenario(**{**main.__dict__, "sequence": sequence, "match": match, "chaos": chaos})


def _chaos(
    spec: Mapping[str, Any], base: Mapping[str, Any], name: str, source: str, report: Callable[..., None]
) -> Chaos | None:
    """The ``chaos`` of a scenario: each option built as a sequence step (an HTTP answer) or a
    fault of the reply (``at: random`` checked as ``at: 0``, drawn per request)."""
    options = []
    tokens = _build(base, name, source, lambda *a, **k: None)
    stream_tokens = (
        tokens.tokens + tuple(f for call in tokens.tool_calls for f in call.fragments(tokens.token_mode))
        if tokens is not None
        else ()
    )
    for index, item in enumerate(spec["faults"]):
        here: KeyPath = ("chaos", "faults", index)

        def in_item(key: KeyPath, message: str, *, at_key: bool = False, here: KeyPath = here) -> None:
            report((*here, *key), message, at_key=at_key)

        def in_fault(key: KeyPath, message: str, *, at_key: bool = False, here: KeyPath = here) -> None:
            report((*here, *key[2:]), message, at_key=at_key)  # key is ("faults", 0, ...)

        weight = float(item.get("weight", 1))
        if "status" in item:
            fields = {k: v for k, v in item.items() if k != "weight"}
            step = _build(_merge(base, fields), name, source, in_item)
            if step is not None:
                options.append(ChaosOption(weight, step=step))
            continue
        random_at = item.get("at") == "random"
        fault_spec = {k: v for k, v in item.items() if k != "weight"} | ({"at": 0} if random_at else {})
        if random_at and not stream_tokens:
            report((*here, "at"), "random needs a reply with tokens to draw from")
            continue
        faults = build_faults([fault_spec], stream_tokens, base.get("wire", {}), in_fault)
        if faults:
            options.append(ChaosOption(weight, fault=faults[0], random_at=random_at))
    if len(options) != len(spec["faults"]):
        return None
    return Chaos(int(spec["seed"]), float(spec["rate"]), tuple(options))


def value_problems(data: Any, report: Report) -> set[KeyPath]:
    """Report the values no key of a scenario can hold (see the module's docstring); return the
    keys reported, so the schema does not restate them."""
    reported: set[KeyPath] = set()
    count = 0

    def bad(key: KeyPath, message: str, *, at_key: bool = False) -> None:
        reported.add(key)
        report(key, message, at_key=at_key)

    def visit(key: KeyPath, value: Any, depth: int) -> None:
        nonlocal count
        count += 1
        if count == MAX_NODES + 1:
            bad((), f"more than {MAX_NODES:,} values: mockllm reads no more")
        if count > MAX_NODES:
            return
        if depth > MAX_DEPTH:
            bad(key, f"nested more than {MAX_DEPTH} levels deep (does it contain itself?)")
            return
        message = _bad_value(value)
        if message is not None:
            bad(key, message)
        elif isinstance(value, Mapping):
            for inner_key, inner in value.items():
                if isinstance(inner_key, str) and _SURROGATE.search(inner_key):
                    bad((*key, inner_key), _surrogate_message(inner_key), at_key=True)
                else:
                    visit((*key, inner_key), inner, depth + 1)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                visit((*key, index), item, depth + 1)

    visit((), data, 0)
    return reported


def _bad_value(value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{show(value)} is not a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        return f"{show(value)} is too large: integers are at most 2**63 - 1"
    if isinstance(value, str) and _SURROGATE.search(value):
        return _surrogate_message(value)
    return None


def _surrogate_message(text: str) -> str:
    match = _SURROGATE.search(text)
    assert match is not None
    return f"contains a lone surrogate (U+{ord(match.group()):04X}): not Unicode text, so it cannot be sent"


def _step_reporter(
    report: Callable[..., None],
    reported: set[tuple[KeyPath, str]],
    index: int,
    step: Mapping[str, Any],
) -> Callable[..., None]:
    """Report a problem of a merged sequence step at the step's own key when it set that key,
    and otherwise at the scenario's key, unless the scenario itself already has that problem."""

    def step_report(key: KeyPath, message: str, *, at_key: bool = False) -> None:
        if key and key[0] in step:
            report(("sequence", index, *key), message, at_key=at_key)
        elif (key, message) not in reported:
            report(key, f"{message} (in sequence[{index}])", at_key=at_key)

    return step_report


def _merge(base: Mapping[str, Any], step: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in step.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _build(data: Mapping[str, Any], name: str, source: str, report: Callable[..., None]) -> Scenario | None:
    checks = [_durations_ok(data, report), headers_ok(data, report), body_ok(data, report)]
    if not all(checks):
        return None
    reply = data.get("reply", "")
    mode = data.get("tokens", "rune")
    tokens = tuple(reply) if isinstance(reply, list) else split_tokens(reply, mode)
    tool_calls = _tool_calls(data.get("tool_calls", []), report)
    if tool_calls is None:
        return None
    timing = build_timing(data.get("timing", {}), report)
    if timing is None:
        return None
    wire = data.get("wire", {})
    transcript = _transcript(data, report)
    if transcript is None:
        return None
    stream_tokens = tokens + tuple(f for call in tool_calls for f in call.fragments(mode))
    if transcript:  # a fault's ``at`` is the index of a read
        stream_tokens = tuple(read.decode("utf-8", "replace") for _, read in transcript)
    if len(stream_tokens) > MAX_TOKENS:
        key = "reply" if len(tokens) > MAX_TOKENS else "tool_calls"
        message = f"a stream of {len(stream_tokens):,} tokens: mockllm streams at most {MAX_TOKENS:,}"
        report((key,), message + (" (tokens: word makes fewer)" if mode == "rune" else ""))
        return None
    gaps = tuple(parse_duration(gap) for gap in data.get("timing", {}).get("gaps", ()))
    if not gaps_ok(gaps, 0 if transcript else len(stream_tokens), bool(data.get("template")), report):
        return None
    faults = build_faults(data.get("faults", []), stream_tokens, wire, report)
    embeddings = pinned_embeddings(data.get("embeddings"), report)
    if faults is None or ("embeddings" in data and embeddings is None):
        return None
    return Scenario(
        name=name,
        tokens=tokens,
        description=data.get("description", ""),
        default=data.get("default", False),
        tool_calls=tool_calls,
        token_mode=mode,
        model=data.get("model"),
        finish_reason=data.get("finish_reason", "tool_calls" if tool_calls else "stop"),
        done=data.get("done", True),
        timing=dataclasses.replace(timing, gaps=gaps) if gaps else timing,
        faults=faults,
        status=data.get("status"),
        headers=tuple((str(k), str(v)) for k, v in data.get("headers", {}).items()),
        body=data.get("body"),
        first_byte=parse_duration(data.get("first_byte", 0)),
        template=bool(data.get("template", False)),
        limits=Limits(**data["limits"]) if data.get("limits") else None,
        context_window=data.get("context_window"),
        usage=Usage(**data["usage"]) if data.get("usage") else None,
        embeddings=embeddings,
        wire=Wire(**wire),
        transcript=transcript,
        source=source,
    )


def _durations_ok(data: Mapping[str, Any], report: Callable[..., None]) -> bool:
    """Every duration of the scenario is one (the schema cannot see ``25h`` is longer than a day)."""
    durations: list[tuple[KeyPath, Any]] = [(("first_byte",), data.get("first_byte", 0))]
    for key, value in data.get("timing", {}).items():
        if key == "first_token" and isinstance(value, Mapping):
            durations += [
                (("timing", key, part), value[part]) for part in ("base", "per_prompt_token") if part in value
            ]
        elif key == "clamp":
            durations += [(("timing", key, part), value[part]) for part in ("min", "max") if part in value]
        elif key == "gaps" and isinstance(value, list):
            durations += [(("timing", key, index), gap) for index, gap in enumerate(value)]
        elif key not in ("seed", "tokens_per_second", "distribution"):
            durations.append((("timing", key), value))
    durations += [
        (("transcript", i, "after"), item["after"]) for i, item in enumerate(data.get("transcript", []))
    ]
    for index, spec in enumerate(data.get("faults", [])):
        if spec.get("stall", "forever") != "forever":
            durations.append((("faults", index, "stall"), spec["stall"]))
        if "every" in spec.get("keepalive", {}):
            durations.append((("faults", index, "keepalive", "every"), spec["keepalive"]["every"]))
    ok = True
    for key, value in durations:
        try:
            parse_duration(value)
        except ValueError as exc:
            report(key, str(exc))
            ok = False
    return ok


def _transcript(
    data: Mapping[str, Any], report: Callable[..., None]
) -> tuple[tuple[float, bytes], ...] | None:
    """The reads of a ``transcript`` (``()`` without one); ``None`` after reporting a problem."""
    if "transcript" not in data:
        return ()
    ok = True
    for key in ("reply", "tool_calls"):
        if key in data:
            report((key,), "a transcript is the whole response: it cannot have a reply or tool_calls too")
            ok = False
    reads = []
    for index, item in enumerate(data["transcript"]):
        try:
            reads.append((parse_duration(item["after"]), decode_raw(item["bytes"])))
        except ValueError as exc:
            report(("transcript", index, "bytes"), str(exc))
            ok = False
    return tuple(reads) if ok else None


def _tool_calls(specs: list[Mapping[str, Any]], report: Callable[..., None]) -> tuple[ToolCall, ...] | None:
    calls = []
    for index, spec in enumerate(specs):
        arguments = spec.get("arguments", {})
        here: KeyPath = ("tool_calls", index, "arguments")
        chunks = tuple(arguments) if isinstance(arguments, list) else ()
        if chunks:
            arguments = "".join(chunks)
        if isinstance(arguments, str):
            try:
                parsed = json.loads(arguments, parse_constant=reject_constant)
            except json.JSONDecodeError as exc:
                report(here, f"is not valid JSON: {exc.msg}")
                return None
            except ValueError as exc:  # NaN, Infinity
                report(here, f"is not valid JSON: {exc}")
                return None
            except RecursionError:
                report(here, "is JSON nested too deeply to read")
                return None
            if not isinstance(parsed, dict):
                report(here, "must be JSON text of an object")
                return None
        else:
            problem = json_problem(arguments)
            if problem is not None:
                report(here, f"cannot be sent as JSON: {problem}")
                return None
            arguments = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
        calls.append(ToolCall(spec["name"], arguments, spec.get("id"), chunks))
    return tuple(calls)
