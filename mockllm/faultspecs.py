"""A scenario's fault items → :class:`~mockllm.faults.Fault` objects, with every problem reported
at its position: an item with no action or two, an ``at`` beyond the reply or misplaced for its
fault (:meth:`Fault.placed`), what a fault's own :meth:`Fault.check` finds, two faults cutting one
token, faults that never fire after one that ends the stream.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from typing import Any

from .faults import AT_PHASES, FAULTS, PHASE_ORDER, Fault, SpecError, action_of
from .yamlnodes import KeyPath


def build_faults(
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
        phase = AT_PHASES.get(spec["at"], "reply") if isinstance(spec["at"], str) else "reply"
        at = None if isinstance(spec["at"], str) else spec["at"]
        if at is not None and at >= len(tokens):
            last = f"the last token is at {len(tokens) - 1}" if tokens else "the reply has no tokens"
            report((*here, "at"), f"{at} is beyond the reply: {last}; use 'end' for after it")
            ok = False
            continue
        try:
            fault = FAULTS[actions[0]].from_spec(at, spec)
        except SpecError as exc:
            report(here + tuple(exc.key.split(".")), str(exc))
            ok = False
            continue
        if phase != "reply":
            fault = dataclasses.replace(fault, phase=phase)
        for key, message in fault.placed() or fault.check(tokens):
            report(here + tuple(key.split(".")), message)
            ok = False
        built.append((index, fault))

    def position(item: tuple[int, Fault]) -> tuple[int, float, int]:
        index, fault = item
        rank = PHASE_ORDER.index(fault.phase)
        return (rank, float("inf") if fault.at is None else fault.at, index)

    ordered = sorted(built, key=position)
    for (first_index, first), (index, fault) in itertools.pairwise(ordered):
        if (first.at, first.phase) == (fault.at, fault.phase) and first.cuts and fault.cuts:
            report(("faults", index), f"cuts the same token as faults[{first_index}]")
            ok = False
    ender = next(((i, f) for i, f in ordered if f.ends_stream), None)
    if ender is not None:
        for index, later in ordered[ordered.index(ender) + 1 :]:
            if ender[1].key == "content_filter" and later.phase != "reply":
                continue  # it stops the reply; the finish and what follows it still go out
            report(("faults", index), f"never fires: faults[{ender[0]}] ends the stream before it")
            ok = False
    forever = any(f.ends_stream and f.key == "stall" for _, f in built)
    if forever and wire.get("framing") == "content-length":
        report(("wire", "framing"), "content-length cannot frame a stream that stalls forever")
        ok = False
    return tuple(f for _, f in built) if ok else None
