"""Bounded YAML reading: hostile text is a positioned problem, quickly, in little memory."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from mockllm.yamlnodes import MAX_BYTES, MAX_DEPTH, MAX_NODES, dotted, read_bytes, read_yaml

from .hostile import laughs


def problems(text: str | bytes) -> list[str]:
    documents, found = read_bytes(text, "x.yaml") if isinstance(text, bytes) else read_yaml(text, "x.yaml")
    assert documents == [] or not found
    return [str(p) for p in found]


TOO_MANY = f"more than {MAX_NODES:,} YAML nodes (aliases expanded): mockllm reads no more"
TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep (aliases expanded): mockllm reads no deeper"

HOSTILE = {
    # the ~560-byte bomb of the issue: 10⁹ nodes; refused at the alias that passes the limit
    "billion laughs": (laughs(9), [f"x.yaml:5:25: {TOO_MANY}"]),
    "six levels under reply": (laughs(5, "*a5"), [f"x.yaml:5:25: {TOO_MANY}"]),
    "merge-key bomb": (
        "a0: &a0 {k: v}\n"
        + "".join(f"a{n}: &a{n} {{<<: [" + ", ".join([f"*a{n - 1}"] * 10) + "]}\n" for n in range(1, 8))
        + "reply: hi\n",
        [f"x.yaml:5:20: {TOO_MANY}"],
    ),
    "recursive alias": ("x: &a [*a]\nreply: hi\n", ["x.yaml:1:8: recursive alias: *a is inside &a"]),
    "100,000 [": ("[" * 100_000, [f"x.yaml:1:101: {TOO_DEEP}"]),
    "deep block nesting": ("".join(" " * i + "a:\n" for i in range(1400)), [f"x.yaml:100:100: {TOO_DEEP}"]),
    "deep through aliases": (
        "a: &a " + "[" * 60 + "]" * 60 + "\nb: " + "[" * 50 + "*a" + "]" * 50 + "\n",
        [f"x.yaml:2:54: {TOO_DEEP}"],
    ),
    "a NUL byte": (
        "reply: a\x00b\n",
        [
            "x.yaml:1:9: invalid YAML: the character U+0000 is not allowed in YAML text "
            "(control characters other than tab and line breaks are not)"
        ],
    ),
    "a 5,000-digit at": (
        "reply: abc\nfaults: [{at: " + "1" * 5000 + ", stall: 1s}]\n",
        ["x.yaml:2:15: an integer of 5,000 digits: mockllm reads integers of at most 4,300"],
    ),
    # base 60, 1:1:1...: its value would take seconds of big-number arithmetic to compute
    "sexagesimal without end": (
        "at: 1" + ":1" * 3000 + "\n",
        ["x.yaml:1:5: an integer of 6,001 digits: mockllm reads integers of at most 4,300"],
    ),
    "an impossible date": (
        "reply: 2001-13-45\n",
        ["x.yaml:1:8: '2001-13-45' is not a timestamp: month must be in 1..12"],
    ),
    "2 MiB": (
        "reply: " + "x" * (2 * MAX_BYTES) + "\n",
        [f"x.yaml:1:{MAX_BYTES + 1}: more than 1 MiB of text (1,048,576 bytes): mockllm reads no more"],
    ),
    "a lone surrogate in the text": (
        "reply: a\ud800\n",
        ["x.yaml:1:9: not Unicode text: a lone surrogate (U+D800)"],
    ),
    "a PNG": (
        b"\x89PNG\r\n\x1a\n\x00\x00",
        [
            "x.yaml:1:1: not UTF-8 text: byte 0x89 here is an invalid start byte (scenarios are UTF-8 YAML or JSON)"
        ],
    ),
    "latin-1 on line 2": (
        b"name: x\nreply: caf\xe9\n",
        [
            "x.yaml:2:11: not UTF-8 text: byte 0xe9 here is an invalid continuation byte "
            "(scenarios are UTF-8 YAML or JSON)"
        ],
    ),
}


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
