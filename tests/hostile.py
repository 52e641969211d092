"""Hostile scenario texts shared by the loader, CLI, control API and fuzz tests."""

from __future__ import annotations

from mockllm.yamlnodes import MAX_BYTES, MAX_DEPTH, MAX_NODES


def laughs(levels: int, under: str = "") -> str:
    """A "billion laughs": each level is ten aliases of the one before (9 levels: 10⁹ nodes)."""
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, levels + 1)]
    lines.append(f"reply: {under or 'hi'}")
    return "\n".join(lines) + "\n"


TOO_MANY = f"more than {MAX_NODES:,} YAML nodes (aliases expanded): mockllm reads no more"
TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep (aliases expanded): mockllm reads no deeper"

#: name → (text, what the YAML reader says about it, as x.yaml)
HOSTILE: dict[str, tuple[str | bytes, list[str]]] = {
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
        ["x.yaml:1:8: '2001-13-45' is not a valid !!timestamp: month must be in 1..12"],
    ),
    # found by the fuzz suite: PyYAML's constructors trust an explicit tag (IndexError, KeyError)
    "an empty !!int": ("at: !!int\n", ["x.yaml:1:5: '' is not a valid !!int"]),
    "!!bool maybe": ("done: !!bool maybe\n", ["x.yaml:1:7: 'maybe' is not a valid !!bool"]),
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


#: Texts that read as YAML but describe what the server could not serve (tests/test_loader.py pins
#: their messages).
UNSERVABLE = [
    "reply: abc\nfaults: [{at: 1, malformed: bogus}]\n",
    "reply: abc\nfaults: [{at: 1, malformed: 5}]\n",
    "1: a\nreply: hi\n",
    'name: "\\ud800"\nreply: hi\n',
    'reply: hi\nheaders: {X-A: "a\\r\\nb"}\n',
    'reply: hi\nstatus: 503\nheaders: {Retry-After: "1\\n"}\n',
    "reply: hi\nheaders: {Content-Length: 5}\n",
    "reply: hi\nheaders: {Transfer-Encoding: chunked}\n",
    "reply: hi\ntiming: {per_token: .inf}\n",
    "reply: hi\nfaults: [{at: 0, stall: .nan}]\n",
    'reply: "a\\udc00b"\n',
    "reply: [a, 1, b]\n",
    "reply: a\nstatus: 500\nbody: {when: 2001-01-01}\n",
]
