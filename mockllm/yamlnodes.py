"""Bounded YAML reading: bytes or text → documents, with the line and column of every key.

Scenarios arrive from files, from ``PUT /_mockllm/scenarios`` bodies and from tests, so reading
one is bounded whatever the text says (README, "Limits"):

- :data:`MAX_BYTES`: 1 MiB of UTF-8 text; a file is never read further.
- :data:`MAX_NODES`: 10,000 nodes (scalars, lists and mappings, keys included) in all the
  documents of the text, counted with aliases expanded: an alias counts as every node it stands
  for. A 560-byte "billion laughs" stands for 10⁹ nodes and is refused at the alias that passes
  the limit, without expanding anything.
- :data:`MAX_DEPTH`: 100 levels of lists and mappings, aliases expanded.
- A recursive alias (``x: &a [*a]``) is an error, and so is an integer of more than 4,300 digits.

:class:`_Composer` (PyYAML's pure-Python composer, bounded) keeps each finished node's expanded
size and height, so accounting for an alias costs the same as for a scalar. Only a document within
the limits is walked for marks (at most :data:`MAX_NODES` visits) and constructed by a
SafeConstructor (which builds an aliased node once and shares it).

PyYAML's pure-Python parser is used even where libyaml is installed, so that its error messages
are the same everywhere; within these limits it reads any text in well under a second.

Every failure to read is a positioned :class:`~mockllm.errors.Problem`: invalid UTF-8, a control
character, a scanner or parser error, a limit passed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from .errors import Problem, show

MAX_BYTES = 1024 * 1024
MAX_NODES = 10_000
MAX_DEPTH = 100
#: Python's own limit on converting decimal text to an int (``sys.get_int_max_str_digits()``).
MAX_DIGITS = 4300

KeyPath = tuple[Any, ...]
#: (mark of the key, mark of the value) for every key and list item of a document.
Marks = dict[KeyPath, tuple[yaml.Mark | None, yaml.Mark]]
#: A key path (and whether to point at the key rather than its value) → (line, column), 1-based.
Locate = Callable[[KeyPath, bool], tuple[int, int]]

_MERGE = "tag:yaml.org,2002:merge"
_SURROGATE = re.compile("[\ud800-\udfff]")


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


def read_bytes(data: bytes, path: str) -> tuple[list[Document], list[Problem]]:
    """The documents of UTF-8 YAML ``data`` and the problems reading it."""
    if len(data) > MAX_BYTES:
        line, column = _position(data[:MAX_BYTES].decode("utf-8", "ignore"), None)
        return [], [Problem(path, line, column, "", _too_large())]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(data[: exc.start].decode("utf-8"), None)
        byte = data[exc.start]
        message = (
            f"not UTF-8 text: byte 0x{byte:02x} here is an {exc.reason} (scenarios are UTF-8 YAML or JSON)"
        )
        return [], [Problem(path, line, column, "", message)]
    return read_yaml(text, path)


def read_yaml(text: str, path: str) -> tuple[list[Document], list[Problem]]:
    """The documents of YAML ``text`` (one per ``---``; none if it cannot be read) and the
    problems reading it. Everything is read or nothing: a problem in the third document
    leaves no documents."""
    surrogate = _SURROGATE.search(text)
    if surrogate is not None:
        line, column = _position(text, surrogate.start())
        code = f"U+{ord(surrogate.group()):04X}"
        return [], [Problem(path, line, column, "", f"not Unicode text: a lone surrogate ({code})")]
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        line, column = _position(text.encode("utf-8")[:MAX_BYTES].decode("utf-8", "ignore"), None)
        return [], [Problem(path, line, column, "", _too_large())]
    problems: list[Problem] = []
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, found up front
        return [], [_reader_problem(text, path, exc)]
    documents: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            assert node is not None  # check_node() said there is a document
            marks: Marks = {}
            _walk(node, (), marks, loader.keys, path, problems)
            documents.append(Document(loader.construct_document(node), node, marks))
    except Refusal as exc:
        at = exc.problem_mark
        return [], [Problem(path, at.line + 1, at.column + 1, "", exc.problem)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        return [], [Problem(path, *where, "", f"invalid YAML: {exc.problem or exc.context}")]
    except yaml.reader.ReaderError as exc:
        return [], [_reader_problem(text, path, exc)]
    except yaml.YAMLError as exc:
        return [], [Problem(path, 0, 0, "", f"invalid YAML: {exc}")]
    finally:
        loader.dispose()
    if not documents:
        return [], [Problem(path, 0, 0, "", "empty file: expected a scenario or a list of scenarios")]
    return documents, problems


class Refusal(yaml.MarkedYAMLError):
    """Reading stops at ``problem_mark``: a limit is passed there, or a value cannot be built.
    Its message is shown as it is (it is no YAML syntax error)."""

    def __init__(self, problem: str, mark: Any) -> None:  # a yaml.Mark (or libyaml's)
        super().__init__(problem=problem, problem_mark=mark)
        self.problem: str = problem
        self.problem_mark: Any = mark


class _Composer(Composer):
    """PyYAML's composer, counting nodes with aliases expanded and refusing past the limits."""

    def __init__(self) -> None:
        super().__init__()
        self.expanded = 0  # nodes so far, in every document of the stream
        self.depth = 0
        self.open_anchors: set[str] = set()
        #: each finished node's (expanded size, height); keeps every node alive (no id reuse)
        self.sizes: dict[yaml.Node, tuple[int, int]] = {}

    if TYPE_CHECKING:  # the parser's, in the loader this is mixed into

        def peek_event(self) -> Any: ...

    def compose_node(self, parent: yaml.Node | None, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self.open_anchors:
                message = f"recursive alias: *{event.anchor} is inside &{event.anchor}"
                raise Refusal(message, event.start_mark)
            target = self.anchors.get(event.anchor)
            if target is not None:  # an undefined alias is the composer's own error
                size, height = self.sizes[target]
                self._count(size, self.depth + height, event.start_mark)
            return super().compose_node(parent, index)
        self._count(1, self.depth + 1, event.start_mark)
        before = self.expanded
        self.depth += 1
        anchor = event.anchor
        if anchor is not None:
            self.open_anchors.add(anchor)
        try:
            node: Any = super().compose_node(parent, index)
        finally:
            self.depth -= 1
            self.open_anchors.discard(anchor)
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = node.value if isinstance(node, yaml.SequenceNode) else []
        height = 1 + max((self.sizes[child][1] for child in children), default=0)
        self.sizes[node] = (self.expanded - before + 1, height)
        return node

    def _count(self, nodes: int, depth: int, mark: Any) -> None:
        self.expanded += nodes
        if self.expanded > MAX_NODES:
            raise Refusal(
                f"more than {MAX_NODES:,} YAML nodes (aliases expanded): mockllm reads no more", mark
            )
        if depth > MAX_DEPTH:
            raise Refusal(_too_deep(), mark)


class _Scanner(Scanner):
    """PyYAML's scanner, refusing to nest deeper than the composer would read: it keeps a
    possible key per open ``[``/``{`` and looks at every one for each token, so 100,000 of them
    would cost seconds before the composer saw the first."""

    if TYPE_CHECKING:  # the reader's, in the loader this is mixed into

        def get_mark(self) -> Any: ...

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise Refusal(_too_deep(), self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) > MAX_DEPTH:
            raise Refusal(_too_deep(), self.get_mark())
        added: bool = super().add_indent(column)
        return added


class _Constructor(SafeConstructor):
    """SafeConstructor whose every failure to build a value is a positioned ConstructorError."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # PyYAML's constructors trust the tag: 2001-13-45, !!int '', !!bool x
            detail = f": {exc}" if isinstance(exc, ValueError) else ""
            raise Refusal(
                f"{show(node.value)} is not a valid !!{_tag(node)}{detail}", node.start_mark
            ) from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_DIGITS:
            digits = len(node.value)
            raise Refusal(
                f"an integer of {digits:,} digits: mockllm reads integers of at most {MAX_DIGITS:,}",
                node.start_mark,
            )
        value: int = super().construct_yaml_int(node)
        return value


_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_yaml_int)  # type: ignore[type-var]


class _Loader(Reader, _Scanner, Parser, _Composer, _Constructor, Resolver):
    """PyYAML's SafeLoader with the bounded composer and constructor."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        _Scanner.__init__(self)
        Parser.__init__(self)
        _Composer.__init__(self)
        _Constructor.__init__(self)
        Resolver.__init__(self)
        #: builds the scalar keys of mappings, for the key paths of marks
        self.keys = _Constructor()


def _walk(
    node: yaml.Node, at: KeyPath, marks: Marks, keys: _Constructor, path: str, problems: list[Problem]
) -> None:
    """Record the marks of every key and item below ``node`` (aliases expanded: the composer has
    bounded how many there are) and report duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
                continue  # merge keys: merged by the constructor; a list as a key: it says why not
            key = _key(key_node, keys)
            if key in seen:
                line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                problems.append(Problem(path, line, column, dotted((*at, key)), "duplicate key"))
            seen.add(key)
            marks[(*at, key)] = (key_node.start_mark, value_node.start_mark)
            _walk(value_node, (*at, key), marks, keys, path, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            marks[(*at, index)] = (None, item.start_mark)
            _walk(item, (*at, index), marks, keys, path, problems)


def _key(node: yaml.ScalarNode, keys: _Constructor) -> Any:
    """A key as the constructed mapping has it (``1`` is an int, ``null`` None); its text if it
    cannot be built (the constructor will say why)."""
    try:
        return keys.construct_object(node)
    except yaml.YAMLError:
        return node.value


def dotted(key: KeyPath) -> str:
    """``("faults", 2, "at")`` → ``faults[2].at``; a key that is not a plain word is quoted."""
    out = ""
    for part in key:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
            continue
        plain = isinstance(part, str) and part.isprintable() and " " not in part and part != ""
        name = part if plain else repr(part)
        out += f".{name}" if out else name
    return out


def _position(text: str, index: int | None) -> tuple[int, int]:
    """1-based (line, column) of ``text[index]`` (``None``: just after the end of ``text``)."""
    end = len(text) if index is None else index
    return text.count("\n", 0, end) + 1, end - (text.rfind("\n", 0, end) + 1) + 1


def _reader_problem(text: str, path: str, exc: yaml.reader.ReaderError) -> Problem:
    line, column = _position(text, exc.position)
    message = (
        f"invalid YAML: the character U+{exc.character:04X} is not allowed in YAML text "
        "(control characters other than tab and line breaks are not)"
    )
    return Problem(path, line, column, "", message)


def _too_large() -> str:
    return f"more than 1 MiB of text ({MAX_BYTES:,} bytes): mockllm reads no more"


def _too_deep() -> str:
    return f"nested more than {MAX_DEPTH} levels deep (aliases expanded): mockllm reads no deeper"


def _tag(node: yaml.Node) -> str:
    return str(node.tag).rpartition(":")[2] or "value"
