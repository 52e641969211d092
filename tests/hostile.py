"""Hostile scenario texts shared by the loader, CLI, control API and fuzz tests."""

from __future__ import annotations


def laughs(levels: int, under: str = "") -> str:
    """A "billion laughs": each level is ten aliases of the one before (9 levels: 10⁹ nodes)."""
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, levels + 1)]
    lines.append(f"reply: {under or 'hi'}")
    return "\n".join(lines) + "\n"
