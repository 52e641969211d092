"""YAML text → data plus the line and column of every key and list item.

The text is read with PyYAML's SafeLoader, composing nodes first so that every key keeps its
:class:`yaml.Mark`; the loader turns a key path into a position with :func:`locator`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from .errors import Problem

KeyPath = tuple[str | int, ...]
#: (mark of the key, mark of the value) for every key and list item of a document.
Marks = dict[KeyPath, tuple[yaml.Mark | None, yaml.Mark]]
#: A key path (and whether to point at the key rather than its value) → (line, column), 1-based.
Locate = Callable[[KeyPath, bool], tuple[int, int]]


@dataclass(frozen=True)
class Document:
    """One YAML document: its data, and where each key of it is."""

    data: Any
    node: yaml.Node
    marks: Marks

    def locator(self, prefix: KeyPath = ()) -> Locate:
        """Positions of keys below ``prefix``; a key without a mark of its own is placed at the
        nearest enclosing one."""

        def locate(key: KeyPath, at_key: bool) -> tuple[int, int]:
            full = prefix + key
            while full not in self.marks and full:
                full = full[:-1]
            key_mark, value_mark = self.marks.get(full, (None, self.node.start_mark))
            mark = key_mark if at_key and key_mark is not None else value_mark
            return mark.line + 1, mark.column + 1

        return locate


def read_yaml(text: str, path: str) -> tuple[Document | None, list[Problem]]:
    """The document in ``text`` (``None`` if there is none or it cannot be read), and its problems."""
    problems: list[Problem] = []
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        return None, [Problem(path, *where, "", f"invalid YAML: {exc.problem or exc.context}")]
    except yaml.YAMLError as exc:
        return None, [Problem(path, 0, 0, "", f"invalid YAML: {exc}")]
    finally:
        loader.dispose()
    if node is None:
        return None, [Problem(path, 0, 0, "", "empty file: expected a scenario or a list of scenarios")]
    marks: Marks = {}
    _walk(node, (), marks, path, problems)
    return Document(data, node, marks), problems


def _walk(node: yaml.Node, at: KeyPath, marks: Marks, path: str, problems: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key == "<<":  # YAML merge keys: the constructor has merged them already
                continue
            if key in seen:
                line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                problems.append(Problem(path, line, column, dotted((*at, key)), "duplicate key"))
            seen.add(key)
            marks[(*at, key)] = (key_node.start_mark, value_node.start_mark)
            _walk(value_node, (*at, key), marks, path, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            marks[(*at, index)] = (None, item.start_mark)
            _walk(item, (*at, index), marks, path, problems)


def dotted(key: KeyPath) -> str:
    """``("faults", 2, "at")`` → ``faults[2].at``."""
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
