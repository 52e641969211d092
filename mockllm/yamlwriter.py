"""The YAML a recording is written in: flow style where a line reads better (faults, gaps,
tokens), double quotes for bytes with ``malformed.raw``'s escapes, and the notes as a comment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml


class Flow(dict):  # type: ignore[type-arg]
    """A mapping written on one line (``{at: 3, stall: 0.5}``)."""


class FlowList(list):  # type: ignore[type-arg]
    """A list written on one line (``[0.031, 0.029]``)."""


class Escaped(str):
    """Text with ``malformed.raw``'s escapes, written double-quoted."""

    __slots__ = ()


def escape(data: bytes) -> str:
    r"""``data`` as text :func:`mockllm.faults.decode_raw` turns back into it: its UTF-8 as is, a
    backslash as ``\\``, each byte that is not UTF-8 as ``\xHH``."""
    out = []
    pos = 0
    while pos < len(data):
        try:
            text = data[pos:].decode("utf-8")
            out.append(text.replace("\\", "\\\\"))
            break
        except UnicodeDecodeError as exc:
            out.append(data[pos : pos + exc.start].decode("utf-8").replace("\\", "\\\\"))
            out.append("".join(f"\\x{b:02x}" for b in data[pos + exc.start : pos + exc.end]))
            pos += exc.end
    return "".join(out)


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    Flow, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v.items(), flow_style=True)
)
_Dumper.add_representer(
    FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)
_Dumper.add_representer(Escaped, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", str(v), style='"'))


def render(data: dict[str, Any], notes: Sequence[str]) -> str:
    """The scenario file: the notes as a comment, then the scenario."""
    header = "".join(f"# {line}\n" for line in notes)
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return header + body
