"""JSON Schema errors → short messages, each at the key it is about.

A Draft 2020-12 error names the keyword that failed; each kind gets one sentence saying what was
found and what is allowed. Three keys of ``data/scenario.schema.json`` steer the sentence:

- ``x-mockllm-duration``: a failing value written like a duration says why it is not one
  (negative, longer than a day: :func:`mockllm.duration.why_not`);
- a list or mapping that fails an ``anyOf`` is explained by the one branch of its own type, so
  ``reply: [a, 1]`` points at ``reply[1]`` rather than restating what a reply may be;
- ``x-mockllm-message``: the sentence for any other failure under that schema (``{value}`` is
  replaced by the value).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any

from .duration import why_not
from .errors import did_you_mean, show
from .yamlnodes import KeyPath

#: report(key, message, at_key=...)
Report = Callable[..., None]


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


def schema_problems(data: Any, definition: str, report: Report, *, skip: set[KeyPath]) -> None:
    """Report every way ``data`` fails ``$defs/definition``, except at or below the keys in ``skip``
    (already reported, for a reason the schema would restate less well)."""
    errors = _validator(definition).iter_errors(data)
    for error in sorted(errors, key=lambda e: list(map(str, e.path))):
        key: KeyPath = tuple(error.absolute_path)
        for sub_key, message, at_key in _explain(error):
            full = key + sub_key
            if not any(full[: len(done)] == done for done in skip):
                report(full, message, at_key=at_key)


def _explain(error: Any) -> Iterator[tuple[KeyPath, str, bool]]:
    """Yield (key below the error's path, message, point at the key rather than the value)."""
    sub = error.schema if isinstance(error.schema, Mapping) else {}
    value = error.instance
    kind = error.validator
    reason = why_not(value) if sub.get("x-mockllm-duration") else None
    branch = _branch_errors(error) if kind == "anyOf" and isinstance(value, Mapping | list) else None
    if reason is not None:
        yield (), f"{show(value)} is not a duration: {reason}", False
    elif branch:
        depth = len(error.absolute_path)
        for inner in branch:
            for sub_key, message, at_key in _explain(inner):
                yield tuple(inner.absolute_path)[depth:] + sub_key, message, at_key
    elif "x-mockllm-message" in sub:
        yield (), sub["x-mockllm-message"].replace("{value}", show(value)), False
    elif kind == "additionalProperties":
        allowed = sorted(sub.get("properties", {}))
        extras = [key for key in value if key not in allowed]
        for extra in sorted(extras, key=lambda key: (not isinstance(key, str), str(key))):
            if not isinstance(extra, str):
                yield (extra,), f"{extra!r} is not a key: keys are names ({', '.join(allowed)})", True
                continue
            hint = did_you_mean(extra, allowed)
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
        choices = [str(choice) for choice in error.validator_value]
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        yield (), f"{show(value)} is not one of {', '.join(choices)}{hint}", False
    elif kind == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else expected
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        yield (), f"expected {wanted}, not {show(value)}", False
    elif kind in ("minimum", "maximum"):
        word = "at least" if kind == "minimum" else "at most"
        yield (), f"must be {word} {error.validator_value}, not {show(value)}", False
    elif kind == "minItems":
        yield (), "must not be empty", False
    else:
        yield (), error.message, False


def _branch_errors(error: Any) -> list[Any]:
    """The errors of the one ``anyOf`` branch whose ``type`` is the value's, if exactly one is."""
    value = error.instance
    wanted = "object" if isinstance(value, Mapping) else "array"
    branches = [i for i, branch in enumerate(error.validator_value) if branch.get("type") == wanted]
    if len(branches) != 1:
        return []
    return [inner for inner in error.context if inner.relative_schema_path[0] == branches[0]]


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}
