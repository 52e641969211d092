"""Scenario files → validated :class:`~mockllm.scenario.Scenario` objects, or every problem at once.

YAML is read by :mod:`mockllm.yamlnodes`, which keeps every key's line and column. Each scenario is
validated against the published JSON Schema (``data/scenario.schema.json``), whose errors are
rewritten into short, positioned messages; then the checks a schema cannot express (a fault's
``at`` beyond the reply, two faults cutting one token, ...) run on the built model. Nothing stops
at the first problem: a file reports all of its problems in one pass.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .duration import parse_duration
from .errors import Problem, ScenarioError
from .faults import FAULTS, Fault, action_of
from .scenario import Scenario, Timing, ToolCall, Wire, split_tokens
from .yamlnodes import KeyPath, Locate, dotted, read_yaml

SCENARIO_SUFFIXES = (".yaml", ".yml")


@cache
def schema() -> dict[str, Any]:
    """The scenario JSON Schema shipped in the package (also what editors use for completion)."""
    text = resources.files("mockllm").joinpath("data/scenario.schema.json").read_text("utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


@cache
def _validator(definition: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator({"$ref": f"#/$defs/{definition}", "$defs": schema()["$defs"]})


def load_scenarios(paths: Iterable[str | Path]) -> tuple[Scenario, ...]:
    """Load every scenario from files and directories (``*.yaml``/``*.yml``, sorted by name).

    Raises :class:`~mockllm.errors.ScenarioError` listing every problem in every file.
    """
    scenarios: list[Scenario] = []
    problems: list[Problem] = []
    for path in paths:
        for file_scenarios, file_problems in _load_path(Path(path)):
            scenarios += file_scenarios
            problems += file_problems
    problems += duplicate_names(scenarios)
    if problems:
        raise ScenarioError(problems)
    return tuple(scenarios)


def check_files(paths: Iterable[str | Path]) -> Iterator[tuple[str, list[Scenario], list[Problem]]]:
    """For ``mockllm validate``: each file with its scenarios and problems."""
    for path in paths:
        path = Path(path)
        for file, (scenarios, problems) in zip(_files(path), _load_path(path), strict=False):
            yield str(file), scenarios, problems


def parse_scenarios(text: str, path: str = "<string>") -> tuple[Scenario, ...]:
    """Scenarios from YAML (or JSON) text; ``path`` names it in messages."""
    scenarios, problems = _load_text(text, path, stem="inline")
    problems += duplicate_names(scenarios)
    if problems:
        raise ScenarioError(problems)
    return tuple(scenarios)


def scenario_from_dict(data: Mapping[str, Any], *, name: str = "inline") -> Scenario:
    """One scenario from a Python mapping, e.g. ``{"reply": "ok", "timing": {"per_token": "10ms"}}``."""
    problems: list[Problem] = []
    built = _scenario(dict(data), "<inline>", lambda key, at_key: (0, 0), name, problems)
    if problems or built is None:
        raise ScenarioError(problems)
    return built


def default_scenarios() -> tuple[Scenario, ...]:
    """The built-in scenario served when no ``--scenario`` is given."""
    text = resources.files("mockllm").joinpath("data/default.yaml").read_text("utf-8")
    return parse_scenarios(text, "<built-in default.yaml>")


# -- files -------------------------------------------------------------------------------------


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in SCENARIO_SUFFIXES and p.is_file())
    return [path]


def _load_path(path: Path) -> Iterator[tuple[list[Scenario], list[Problem]]]:
    if not path.exists():
        yield [], [Problem(str(path), 0, 0, "", "no such file or directory")]
        return
    files = _files(path)
    if not files:
        yield [], [Problem(str(path), 0, 0, "", "no *.yaml or *.yml files in this directory")]
    for file in files:
        try:
            text = file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            yield [], [Problem(str(file), 0, 0, "", f"cannot read: {exc}")]
            continue
        yield _load_text(text, str(file), stem=file.stem)


def _load_text(text: str, path: str, *, stem: str) -> tuple[list[Scenario], list[Problem]]:
    document, problems = read_yaml(text, path)
    if document is None:
        return [], problems
    data = document.data
    scenarios: list[Scenario] = []
    if isinstance(data, list):
        for index, item in enumerate(data):
            default_name = None if len(data) > 1 else stem
            built = _scenario(item, path, document.locator((index,)), default_name, problems)
            if built is not None:
                scenarios.append(built)
    else:
        built = _scenario(data, path, document.locator(), stem, problems)
        if built is not None:
            scenarios.append(built)
    return scenarios, sorted(problems, key=lambda p: (p.line, p.column))


# -- one scenario --------------------------------------------------------------------------------


def _scenario(
    data: Any, path: str, locate: Locate, default_name: str | None, problems: list[Problem]
) -> Scenario | None:
    reported: set[tuple[KeyPath, str]] = set()

    def report(key: KeyPath, message: str, *, at_key: bool = False) -> None:
        reported.add((key, message))
        problems.append(Problem(path, *locate(key, at_key), dotted(key), message))

    before = len(problems)
    if not isinstance(data, Mapping):
        report((), f"a scenario must be a mapping with at least a 'reply', not {_show(data)}")
        return None
    _schema_problems(data, "scenario", report)
    if "reply" not in data and "tool_calls" not in data:
        report((), "missing key 'reply' (a scenario needs a reply, tool_calls, or both)")
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
    if main is None or None in steps or len(problems) > before:
        return None
    return Scenario(**{**main.__dict__, "sequence": tuple(s for s in steps if s is not None)})


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
    reply = data.get("reply", "")
    mode = data.get("tokens", "rune")
    tokens = tuple(reply) if isinstance(reply, list) else split_tokens(reply, mode)
    tool_calls = _tool_calls(data.get("tool_calls", []), report)
    if tool_calls is None:
        return None
    timing = data.get("timing", {})
    wire = data.get("wire", {})
    stream_tokens = tokens + tuple(f for call in tool_calls for f in call.fragments(mode))
    faults = _faults(data.get("faults", []), stream_tokens, wire, report)
    if faults is None:
        return None
    return Scenario(
        name=name,
        tokens=tokens,
        description=data.get("description", ""),
        tool_calls=tool_calls,
        token_mode=mode,
        model=data.get("model"),
        finish_reason=data.get("finish_reason", "tool_calls" if tool_calls else "stop"),
        done=data.get("done", True),
        timing=Timing(
            first_token=parse_duration(timing.get("first_token", 0)),
            per_token=parse_duration(timing.get("per_token", 0)),
            jitter=parse_duration(timing.get("jitter", 0)),
            seed=timing.get("seed", 0),
        ),
        faults=faults,
        status=data.get("status"),
        headers=tuple((str(k), str(v)) for k, v in data.get("headers", {}).items()),
        body=data.get("body"),
        first_byte=parse_duration(data.get("first_byte", 0)),
        wire=Wire(**wire),
        source=source,
    )


def _tool_calls(specs: list[Mapping[str, Any]], report: Callable[..., None]) -> tuple[ToolCall, ...] | None:
    calls = []
    for index, spec in enumerate(specs):
        arguments = spec.get("arguments", {})
        if isinstance(arguments, str):
            try:
                parsed = json.loads(arguments)
            except json.JSONDecodeError as exc:
                report(("tool_calls", index, "arguments"), f"is not valid JSON: {exc.msg}")
                return None
            if not isinstance(parsed, dict):
                report(("tool_calls", index, "arguments"), "must be JSON text of an object")
                return None
        else:
            arguments = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
        calls.append(ToolCall(spec["name"], arguments, spec.get("id")))
    return tuple(calls)


def _faults(
    specs: list[Mapping[str, Any]],
    tokens: tuple[str, ...],
    wire: Mapping[str, Any],
    report: Callable[..., None],
) -> tuple[Fault, ...] | None:
    built: list[tuple[int, Fault]] = []  # (index in the file's list, fault)
    ok = True
    for index, spec in enumerate(specs):
        here: KeyPath = ("faults", index)
        actions = action_of(spec)
        if len(actions) != 1:
            found = ", ".join(actions) if actions else "none"
            report(here, f"needs exactly one of {', '.join(FAULTS)} (found: {found})")
            ok = False
            continue
        at = None if spec["at"] == "end" else spec["at"]
        if at is not None and at >= len(tokens):
            last = f"the last token is at {len(tokens) - 1}" if tokens else "the reply has no tokens"
            report((*here, "at"), f"{at} is beyond the reply: {last}; use 'end' for after it")
            ok = False
            continue
        fault = FAULTS[actions[0]].from_spec(at, spec)
        for key, message in fault.check(tokens):
            report(here + tuple(key.split(".")), message)
            ok = False
        built.append((index, fault))

    def position(item: tuple[int, Fault]) -> tuple[float, int]:
        index, fault = item
        return (float("inf") if fault.at is None else fault.at, index)

    ordered = sorted(built, key=position)
    for (first_index, first), (index, fault) in itertools.pairwise(ordered):
        if first.at == fault.at and first.cuts and fault.cuts:
            report(("faults", index), f"cuts the same token as faults[{first_index}]")
            ok = False
    ender = next(((i, f) for i, f in ordered if f.ends_stream), None)
    if ender is not None:
        for index, _ in ordered[ordered.index(ender) + 1 :]:
            report(("faults", index), f"never fires: faults[{ender[0]}] ends the stream before it")
            ok = False
    forever = any(f.ends_stream and f.key == "stall" for _, f in built)
    if forever and wire.get("framing") == "content-length":
        report(("wire", "framing"), "content-length cannot frame a stream that stalls forever")
        ok = False
    return tuple(f for _, f in built) if ok else None


# -- JSON Schema errors → short messages -----------------------------------------------------------


def _schema_problems(data: Any, definition: str, report: Callable[..., None]) -> None:
    for error in sorted(_validator(definition).iter_errors(data), key=lambda e: list(map(str, e.path))):
        key: KeyPath = tuple(error.absolute_path)
        for sub_key, message, at_key in _explain(error):
            report(key + sub_key, message, at_key=at_key)


def _explain(error: Any) -> Iterator[tuple[KeyPath, str, bool]]:
    """Yield (key below the error's path, message, point at the key rather than the value)."""
    sub = error.schema if isinstance(error.schema, Mapping) else {}
    value = error.instance
    kind = error.validator
    if "x-mockllm-message" in sub:
        yield (), sub["x-mockllm-message"].format(value=_show(value)), False
    elif kind == "additionalProperties":
        allowed = sorted(sub.get("properties", {}))
        for extra in sorted(set(value) - set(allowed)):
            close = difflib.get_close_matches(str(extra), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            yield (extra,), f"unknown key (allowed: {', '.join(allowed)}){hint}", True
    elif kind == "required":
        for missing in error.validator_value:
            if missing not in value:
                yield (), f"missing required key {missing!r}", False
    elif kind == "dependentRequired":
        for key, needs in error.validator_value.items():
            if key in value and any(need not in value for need in needs):
                yield (key,), f"only goes with {' and '.join(map(repr, needs))}", True
    elif kind == "enum":
        yield (), f"{_show(value)} is not one of {', '.join(map(str, error.validator_value))}", False
    elif kind == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else expected
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        yield (), f"expected {wanted}, not {_show(value)}", False
    elif kind in ("minimum", "maximum"):
        word = "at least" if kind == "minimum" else "at most"
        yield (), f"must be {word} {error.validator_value}, not {_show(value)}", False
    elif kind == "minItems":
        yield (), "must not be empty", False
    else:
        yield (), error.message, False


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return repr(value)


def duplicate_names(scenarios: Iterable[Scenario]) -> list[Problem]:
    seen: dict[str, Scenario] = {}
    problems = []
    for scenario in scenarios:
        first = seen.setdefault(scenario.name, scenario)
        if first is not scenario:
            path, _, line = scenario.source.rpartition(":")
            problems.append(
                Problem(
                    path or scenario.source,
                    int(line) if line.isdigit() else 0,
                    1 if line.isdigit() else 0,
                    "name",
                    f"duplicate scenario name {scenario.name!r} (first in {first.source})",
                )
            )
    return problems
