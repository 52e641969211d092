"""The public API is exactly what ``__all__`` says, sorted, every name in it exists, and
importing the package (as the pytest plugin does in every test run) stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mockllm


def test_all_is_sorted_and_complete() -> None:
    assert mockllm.__all__ == sorted(mockllm.__all__)
    for name in mockllm.__all__:
        assert getattr(mockllm, name) is not None, name


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchThing'"):
        mockllm.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


def test_importing_the_plugin_does_not_import_the_server() -> None:
    code = (
        "import sys, mockllm, mockllm.pytest_plugin\n"
        "heavy = [m for m in ('aiohttp', 'jsonschema', 'yaml', 'mockllm.server') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
