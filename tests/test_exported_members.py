"""The public API is exactly what ``__all__`` says, sorted, and every name in it exists."""

from __future__ import annotations

import mockllm


def test_all_is_sorted_and_complete() -> None:
    assert mockllm.__all__ == sorted(mockllm.__all__)
    for name in mockllm.__all__:
        assert hasattr(mockllm, name), name


def test_public_names() -> None:
    public = {n for n in dir(mockllm) if not n.startswith("_")}
    modules = {"app", "cli", "clock", "duration", "errors", "events", "faults", "formats", "loader",
               "scenario", "selection", "server", "sse", "streaming", "timeline"}
    assert public - modules == set(mockllm.__all__) - {"__version__"}
