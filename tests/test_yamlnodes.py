"""Bounded YAML reading: hostile text is a positioned problem, quickly, in little memory."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from mockllm.yamlnodes import MAX_DEPTH, MAX_NODES, dotted, read_bytes, read_yaml

from .hostile import HOSTILE, TOO_DEEP, TOO_MANY, laughs


def problems(text: str | bytes) -> list[str]:
    documents, found = read_bytes(text, "x.yaml") if isinstance(text, bytes) else read_yaml(text, "x.yaml")
    assert documents == [] or not found
    return [str(p) for p in found]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_text_is_a_positioned_problem_in_bounded_time_and_memory(name: str) -> None:
    text, expected = HOSTILE[name]
    tracemalloc.start()
    start = time.perf_counter()
    try:
        found = problems(text)
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert found == expected
    assert elapsed < 1.0, f"{name}: {elapsed:.2f}s"
    assert peak < 200 * 1024 * 1024, f"{name}: {peak / 2**20:.0f} MiB"


def test_a_document_at_the_limits_reads() -> None:
    nodes = "\n".join(f"k{i}: v" for i in range(MAX_NODES // 2 - 1))  # the root mapping and its pairs
    (document,), found = read_yaml(nodes + "\n", "x.yaml")
    assert found == []
    assert len(document.data) == MAX_NODES // 2 - 1
    over, found = read_yaml(nodes + "\nlast: straw\n", "x.yaml")
    assert over == []
    assert found[0].message == TOO_MANY
    deep = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert read_yaml(f"a: {deep}\n", "x.yaml")[1] == []
    assert read_yaml(f"a: [{deep}]\n", "x.yaml")[1][0].message == TOO_DEEP


def test_aliases_count_as_what_they_stand_for() -> None:
    (document,), found = read_yaml(laughs(3), "x.yaml")  # 2,000-odd nodes expanded: within the limit
    assert found == []
    assert document.data["a3"][9][9][9] == ["lol"]
    assert document.data["a3"][0] is document.data["a3"][1]  # built once, shared


def test_several_documents_each_with_their_marks() -> None:
    first, second = read_yaml("reply: a\n---\n# two\nname: b\nreply: b\n", "x.yaml")[0]
    assert (first.data, second.data) == ({"reply": "a"}, {"name": "b", "reply": "b"})
    assert second.locator()(("reply",), True) == (5, 1)


def test_keys_are_marked_as_the_mapping_holds_them() -> None:
    ((document,), found) = read_yaml("1: a\nnull: b\n'1': c\n0x1: d\n", "x.yaml")
    assert [str(p) for p in found] == ["x.yaml:4:1: [1]: duplicate key"]
    assert document.locator()((None,), True) == (2, 1)
    assert document.locator()(("1",), True) == (3, 1)


def test_dotted_quotes_keys_that_are_not_words() -> None:
    assert dotted(("faults", 2, "at")) == "faults[2].at"
    assert dotted(("headers", "X A", "\ud800")) == "headers.'X A'.'\\ud800'"
    assert dotted((None, True)) == "None.True"
