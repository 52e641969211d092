"""Which ``match`` scenarios could hold for a request, found without running each one's conditions.

Each scenario is filed under a *gate*, something the request must have for its ``match`` to hold
that can be looked up for every scenario at once:

- a text condition on ``last_user``, ``tool_result`` or ``system`` each of whose alternatives
  (an OR-list's every item) needs a word of at least three characters: ``contains``, ``equals``
  or ``startswith`` W, or a case-sensitive ``regex`` that starts with the literal W. The text
  then holds W, so its case fold holds W's case fold (``str.casefold`` maps each character on
  its own) and each three characters of it: the scenario is filed under the rarest such trigram
  of each alternative, case-folded, whether the test ignores case or not;
- else a ``model`` without glob characters: filed under that model name;
- else a ``turn``: filed under its bounds.

The others are always candidates. A request's candidates are the always ones, those filed under
a trigram its folded text holds (one regular-expression scan of the text, the filed trigrams
compiled into a trie, so each character costs a few comparisons in C rather than a Python
slice), those filed under its model, and those whose turn bounds hold its turn. The candidates
keep load order and are then checked in full, so the first whose ``match`` holds is the one a
scan of every scenario would find.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from .match import Seen, TextTest, fold
from .scenario import Scenario

_GRAM = 3
#: Where each indexed text condition reads its text.
_SOURCES: dict[str, Callable[[Seen], str | None]] = {
    "last_user": lambda seen: seen.last_user,
    "tool_result": lambda seen: seen.tool_result,
    "system": lambda seen: seen.conversation.system or None,
}
_REGEX_SPECIAL = frozenset(".^$*+?{}[]\\|()")
_GLOB_SPECIAL = frozenset("*?[")


class MatchIndex:
    """The ``match`` scenarios of a set, filed by their gates (see the module's docstring)."""

    def __init__(self, scenarios: Sequence[Scenario]) -> None:
        self.scenarios = tuple(scenarios)
        self.always: list[int] = []
        self.models: dict[str, list[int]] = {}
        self.turns: dict[tuple[int | None, int | None], list[int]] = {}
        words: dict[str, list[tuple[int, tuple[str, ...]]]] = {source: [] for source in _SOURCES}
        for position, scenario in enumerate(self.scenarios):
            match _gate(scenario):
                case None:
                    self.always.append(position)
                case ("model", name):
                    self.models.setdefault(name, []).append(position)
                case ("turn", bounds):
                    self.turns.setdefault(bounds, []).append(position)
                case (source, alternatives):
                    words[source].append((position, alternatives))
        self.texts = [_TextIndex(_SOURCES[source], filed) for source, filed in words.items() if filed]

    def candidates(self, seen: Seen) -> list[Scenario]:
        """The scenarios whose ``match`` could hold for ``seen``, in load order."""
        found = set(self.always)
        for index in self.texts:
            index.add(seen, found)
        found.update(self.models.get(seen.conversation.model, ()))
        if self.turns:
            turn = seen.conversation.turn
            for (low, high), positions in self.turns.items():
                if (low is None or turn >= low) and (high is None or turn <= high):
                    found.update(positions)
        return [self.scenarios[p] for p in sorted(found)]


class _TextIndex:
    """The scenarios gated by one text (``last_user``, ``tool_result`` or ``system``), by trigram."""

    def __init__(self, text: Callable[[Seen], str | None], filed: list[tuple[int, tuple[str, ...]]]) -> None:
        self.text = text
        # File each word under its rarest trigram among all the words, so words that share a
        # prefix ("weather in Paris", "weather in Rome") do not all land in one bucket.
        counts = Counter(gram for _, alternatives in filed for word in alternatives for gram in _grams(word))
        self.grams: dict[str, list[int]] = {}
        for position, alternatives in filed:
            for gram in {min(sorted(_grams(word)), key=counts.__getitem__) for word in alternatives}:
                self.grams.setdefault(gram, []).append(position)
        self.scan = re.compile(f"(?=({_trie(sorted(self.grams))}))")

    def add(self, seen: Seen, found: set[int]) -> None:
        """Add to ``found`` the scenarios filed under a trigram the folded text holds."""
        text = self.text(seen)
        if text is not None:
            for gram in set(self.scan.findall(fold(text))):
                found.update(self.grams[gram])


def _gate(scenario: Scenario) -> tuple[str, Any] | None:
    """What the request must have for ``scenario``'s ``match`` to hold: ``(text source,
    case-folded words, any of them)``, ``("model", name)`` or ``("turn", (min, max))``; ``None``
    if nothing indexable."""
    assert scenario.match is not None
    conditions = dict(scenario.match.conditions)
    for source in _SOURCES:
        spec = conditions.get(source)
        if isinstance(spec, tuple):
            words = [_word(test) for test in spec]
            if all(word is not None and len(word) >= _GRAM for word in words):
                return source, tuple(word for word in words if word is not None)
    name = conditions.get("model")
    if name is not None and not _GLOB_SPECIAL.intersection(name):
        return "model", name
    if "turn" in conditions:
        return "turn", conditions["turn"]
    return None


def _word(test: TextTest) -> str | None:
    """The case fold of a word every text that passes ``test`` holds, if there is one."""
    if test.pattern is None:
        return test.value.casefold()
    if test.ignore_case or "|" in test.value:
        # re's IGNORECASE equates characters that case folding does not ('ı' and 'i').
        return None
    literal = next((test.value[:i] for i, c in enumerate(test.value) if c in _REGEX_SPECIAL), test.value)
    if len(literal) < len(test.value) and test.value[len(literal)] in "*+?{":
        literal = literal[:-1]  # the quantifier makes the last character optional
    return literal.casefold()


def _grams(word: str) -> set[str]:
    return {word[i : i + _GRAM] for i in range(len(word) - _GRAM + 1)}


def _trie(words: list[str]) -> str:
    """A regular expression matching any of ``words`` (sorted, all of one length), as a trie."""
    heads: dict[str, list[str]] = {}
    for word in words:
        heads.setdefault(word[0], []).append(word[1:])
    branches = [re.escape(head) + (_trie(tails) if tails[0] else "") for head, tails in heads.items()]
    return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
