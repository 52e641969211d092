"""Scenario sources → validated :class:`~mockllm.scenario.Scenario` objects, or every problem at once.

A source is a file, a directory (its ``*.yaml``/``*.yml`` files, sorted by name), YAML text, a
mapping, a ``Scenario``, or the chaos pack (``pack:`` or ``pack:NAME``: :mod:`mockllm.pack`).
:func:`load_set` decides what a set of sources loads to, for every way scenarios arrive: ``mockllm
validate`` and ``serve`` (:func:`load_scenarios`), ``PUT /_mockllm/scenarios``
(:func:`parse_scenarios`), ``MockLLMServer`` and the pytest fixture (:func:`resolve`). So a set
``validate`` accepts is a set ``serve`` serves.

Text is read by :mod:`mockllm.yamlnodes` (bounded; every key keeps its line and column), a
document being one scenario or a list of them, as many documents as ``---`` separates. Each
scenario is built by :mod:`mockllm.builder`. Then the rules of a set: names are unique, at most
one scenario says ``default: true``, and the default comes first. Nothing stops at the first
problem: every problem of every source is reported in one pass, a set's own problems under the
source that holds the offending scenario.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .builder import build_scenario
from .errors import MockLLMError, Problem, ScenarioError, did_you_mean
from .pack import is_pack, pack_dir, pack_name
from .scenario import Scenario, default_first
from .yamlnodes import MAX_BYTES, Locate, read_bytes, read_yaml

SCENARIO_SUFFIXES = (".yaml", ".yml")
#: What :func:`load_set` takes: also ``bytes`` (YAML text, as a request body holds it).
Source = Scenario | Mapping[str, Any] | str | bytes | Path


@dataclass(frozen=True)
class Loaded:
    """One file, text or mapping of a set: the scenarios it holds and its problems."""

    name: str
    scenarios: tuple[Scenario, ...] = ()
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class LoadedSet:
    """What a set of sources loads to: each file, text or mapping, in order."""

    sources: tuple[Loaded, ...]

    @property
    def problems(self) -> tuple[Problem, ...]:
        return tuple(problem for source in self.sources for problem in source.problems)

    @property
    def scenarios(self) -> tuple[Scenario, ...]:
        """Every scenario, the default first."""
        return default_first([scenario for source in self.sources for scenario in source.scenarios])

    def result(self) -> tuple[Scenario, ...]:
        """The scenarios; raises :class:`~mockllm.errors.ScenarioError` with every problem."""
        if self.problems:
            raise ScenarioError(self.problems)
        return self.scenarios


def load_set(sources: Iterable[Source], *, base: Path | None = None) -> LoadedSet:
    """Load every source (see the module's docstring); a string names a file when
    :func:`looks_like_path` says so, and relative paths are tried against ``base`` first."""
    loaded: list[Loaded] = []
    for source in sources:
        if isinstance(source, Scenario):
            loaded.append(Loaded(source.source, (source,)))
        elif isinstance(source, Mapping):
            loaded.append(_mapping(source, str(source.get("name", "inline"))))
        elif isinstance(source, bytes):
            loaded.append(_text(source, "<bytes>", stem="inline"))
        elif is_pack(source):
            loaded += _pack(str(source))
        elif isinstance(source, Path) or looks_like_path(source, base):
            loaded += _path(source, base)
        else:
            loaded.append(_text(source, "<string>", stem="inline"))
    return _with_set_rules(loaded)


def load_scenarios(paths: Iterable[str | Path]) -> tuple[Scenario, ...]:
    """Load every scenario from files and directories (``*.yaml``/``*.yml``, sorted by name).

    Raises :class:`~mockllm.errors.ScenarioError` listing every problem in every file.
    """
    return load_set(Path(path) for path in paths).result()


def parse_scenarios(text: str | bytes, path: str = "<string>") -> tuple[Scenario, ...]:
    """Scenarios from YAML (or JSON) text, or its UTF-8 bytes; ``path`` names it in messages."""
    return _with_set_rules([_text(text, path, stem="inline")]).result()


def scenario_from_dict(data: Mapping[str, Any], *, name: str = "inline") -> Scenario:
    """One scenario from a Python mapping, e.g. ``{"reply": "ok", "timing": {"per_token": "10ms"}}``."""
    loaded = _mapping(data, name)
    if loaded.problems or not loaded.scenarios:
        raise ScenarioError(loaded.problems)
    return loaded.scenarios[0]


def resolve(sources: Iterable[Source], *, base: Path | None = None) -> tuple[Scenario, ...]:
    """:func:`load_set`, raising every problem, and refusing an empty set."""
    scenarios = load_set(sources, base=base).result()
    if not scenarios:
        raise MockLLMError("No scenarios given.")
    return scenarios


def default_scenarios() -> tuple[Scenario, ...]:
    """The built-in scenario served when no ``--scenario`` is given."""
    text = resources.files("mockllm").joinpath("data/default.yaml").read_text("utf-8")
    return parse_scenarios(text, "<built-in default.yaml>")


def looks_like_path(text: str, base: Path | None = None) -> bool:
    """Whether a string names a file or directory rather than being YAML text: one line that
    exists (against ``base`` or here), or one line without ``": "`` (which a YAML mapping on one
    line needs) that ends in ``.yaml``/``.yml`` or holds a path separator."""
    if "\n" in text:
        return False
    if Path(text).exists() or (base is not None and (base / text).exists()):
        return True
    separator = "/" in text or os.sep in text
    return ": " not in text and (text.rstrip().endswith(SCENARIO_SUFFIXES) or separator)


# -- sources ---------------------------------------------------------------------------------------


def _path(given: str | Path, base: Path | None) -> list[Loaded]:
    path = Path(given)
    if base is not None and not path.is_absolute() and (base / path).exists():
        path = base / path
    if not path.exists():
        return [Loaded(str(given), problems=(Problem(str(given), 0, 0, "", _no_such_file(path, base)),))]
    if not path.is_dir():
        return [_file(path)]
    files = sorted(p for p in path.iterdir() if p.suffix in SCENARIO_SUFFIXES and p.is_file())
    if not files:
        problem = Problem(str(path), 0, 0, "", "no *.yaml or *.yml files in this directory")
        return [Loaded(str(path), problems=(problem,))]
    return [_file(file) for file in files]


def _pack(source: str) -> list[Loaded]:
    name = pack_name(source)
    folder = pack_dir() / name.rstrip("/") if name else pack_dir()
    if not name or folder.is_dir():  # pack: or a folder of it, pack:agent/ (click drops the slash)
        return _path(folder, None)
    subfolders = sorted(p for p in pack_dir().iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    files = [loaded for where in (pack_dir(), *subfolders) for loaded in _path(where, None)]
    for loaded in files:
        for scenario in loaded.scenarios:
            if scenario.name == name:
                return [Loaded(loaded.name, (replace(scenario, default=False),))]
    names = [scenario.name for loaded in files for scenario in loaded.scenarios]
    hint = did_you_mean(name, names)
    message = f"no scenario {name!r} in the chaos pack{hint} (`mockllm validate pack:` lists them)"
    return [Loaded(source, problems=(Problem(source, 0, 0, "", message),))]


def _no_such_file(path: Path, base: Path | None) -> str:
    if path.is_absolute():
        return "no such file or directory"
    here = Path.cwd()
    if base is None or base.resolve() == here:
        return f"no such file or directory (relative to {here})"
    return f"no such file or directory (looked in {base}, then in {here})"


def _file(file: Path) -> Loaded:
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)  # a larger file is refused unread
    except OSError as exc:
        problem = Problem(str(file), 0, 0, "", f"cannot read: {exc.strerror or exc}")
        return Loaded(str(file), problems=(problem,))
    return _text(data, str(file), stem=file.stem)


def _text(text: str | bytes, path: str, *, stem: str) -> Loaded:
    documents, problems = read_bytes(text, path) if isinstance(text, bytes) else read_yaml(text, path)
    items: list[tuple[Any, Locate]] = []
    for document in documents:
        if isinstance(document.data, list):
            if not document.data:
                mark = document.node.start_mark
                message = "an empty list: expected at least one scenario"
                problems.append(Problem(path, mark.line + 1, mark.column + 1, "", message))
            items += [(item, document.locator((index,))) for index, item in enumerate(document.data)]
        else:
            items.append((document.data, document.locator()))
    default_name = stem if len(items) == 1 else None
    scenarios = []
    for data, locate in items:
        built = build_scenario(data, path, locate, default_name, problems)
        if built is not None:
            scenarios.append(built)
    ordered = sorted(problems, key=lambda p: (p.line, p.column))
    return Loaded(path, tuple(scenarios), tuple(ordered))


def _mapping(data: Mapping[str, Any], name: str) -> Loaded:
    problems: list[Problem] = []
    built = build_scenario(dict(data), "<inline>", lambda key, at_key: (0, 0), name, problems)
    return Loaded("<inline>", () if built is None else (built,), tuple(problems))


# -- the rules of a set ----------------------------------------------------------------------------


def _with_set_rules(sources: list[Loaded]) -> LoadedSet:
    """Names are unique and at most one scenario is the default: each problem is filed under the
    source of the scenario that breaks the rule (the second of a name, the second default)."""
    names: dict[str, Scenario] = {}
    default: Scenario | None = None
    checked = []
    for source in sources:
        problems = []
        for scenario in source.scenarios:
            first = names.setdefault(scenario.name, scenario)
            if first is not scenario:
                message = f"duplicate scenario name {scenario.name!r} (first in {first.source})"
                problems.append(_at_scenario(scenario, "name", message))
            if scenario.default and default is None:
                default = scenario
            elif scenario.default and default is not None:
                message = (
                    f"a second default: {default.name!r} ({default.source}) is one already; "
                    "at most one scenario of a set says default: true"
                )
                problems.append(_at_scenario(scenario, "default", message))
        checked.append(replace(source, problems=(*source.problems, *problems)) if problems else source)
    return LoadedSet(tuple(checked))


def _at_scenario(scenario: Scenario, key: str, message: str) -> Problem:
    """A problem at the start of a scenario, from its ``source`` (``path:line``)."""
    path, _, line = scenario.source.rpartition(":")
    if not line.isdigit():
        return Problem(scenario.source, 0, 0, key, message)
    return Problem(path, int(line), 1, key, message)
