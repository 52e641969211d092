"""Which scenario answers a request, and which step of its ``sequence``.

Selection, in order (the README's "Conversations" documents it):

1. the ``X-Mockllm-Scenario`` header (an unknown name is an error, never a silent fallback);
2. the first scenario, in load order, whose ``match`` holds (:mod:`mockllm.match`);
3. a scenario without ``match`` whose name equals the request's ``model``;
4. the default: the scenario marked ``default: true``, else the first without ``match``
   (``strict`` turns this step off);
5. none: :class:`~mockllm.errors.NoScenarioMatched`, whose message names, scenario by scenario,
   the first condition that failed and what the request had.

Each scenario counts the requests it answered, so its n-th request gets step n of its
``sequence``; :meth:`ScenarioSet.reset_counters` starts every sequence again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import MockLLMError, NoScenarioMatched, ScenarioNotFound
from .match import Seen, fold
from .scenario import Scenario, default_first

HEADER = "X-Mockllm-Scenario"
Reason = Literal["header", "match", "model", "default"]


@dataclass(frozen=True)
class Choice:
    """The scenario chosen for a request, why (:data:`Reason`), and for ``match`` what held."""

    scenario: Scenario
    reason: Reason
    why: str | None = None


class ScenarioSet:
    """The loaded scenarios, by name, with the default first."""

    def __init__(self, scenarios: Sequence[Scenario]) -> None:
        if not scenarios:
            raise MockLLMError("A mock server needs at least one scenario.")
        self.scenarios = default_first(scenarios)
        self._by_name = {s.name: s for s in scenarios}
        self._matching = tuple(s for s in scenarios if s.match is not None)
        self._index = _Index(self._matching)
        self._fallback = next((s for s in self.scenarios if s.match is None), None)
        self._answered: Counter[tuple[str | None, str]] = Counter()

    @property
    def default(self) -> Scenario:
        """The scenario shown as the default: the one that answers a request nothing else
        selects (the first loaded, if every scenario has a ``match``)."""
        return self._fallback or self.scenarios[0]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.scenarios]

    def get(self, name: str) -> Scenario:
        try:
            return self._by_name[name]
        except KeyError:
            raise ScenarioNotFound(name, self.names) from None

    def pick(self, header: str | None, seen: Seen | None = None, *, strict: bool = False) -> Choice:
        """The scenario for a request, and why it was chosen (see the module's docstring)."""
        if header:
            return Choice(self.get(header), "header")
        if seen is not None:
            for scenario in self._index.candidates(seen.last_user):
                assert scenario.match is not None
                if scenario.match.miss(seen) is None:
                    held = ", ".join(scenario.match.keys)
                    return Choice(scenario, "match", f"{scenario.name}: {held} held")
        model = seen.conversation.model if seen is not None else None
        by_model = self._by_name.get(model) if model is not None else None
        if by_model is not None and by_model.match is None:
            return Choice(by_model, "model")
        if self._fallback is not None and not strict:
            return Choice(self._fallback, "default")
        request = f"model {model!r}" if model is not None else "no model"
        if seen is not None and seen.conversation.last_user is not None:
            request += f", last_user {seen.conversation.last_user[:60]!r}"
        # The error path: every scenario's miss, written out (the index skipped most of them).
        lines = [f"{s.name}: {s.match.miss(seen)}" for s in self._matching if s.match and seen is not None]
        raise NoScenarioMatched(lines, self.names, strict=strict, request=request)

    def explain(self, header: str | None, seen: Seen, *, strict: bool = False) -> tuple[list[str], Choice]:
        """What ``mockllm explain`` prints: each ``match`` scenario's verdict on the request, in
        the order :meth:`pick` tries them, and the choice (raises as :meth:`pick` does)."""
        verdicts = []
        for scenario in self._matching:
            assert scenario.match is not None
            miss = scenario.match.miss(seen)
            verdicts.append(f"{scenario.name}: {miss or ', '.join(scenario.match.keys) + ' held'}")
        return verdicts, self.pick(header, seen, strict=strict)

    def next_step(self, scenario: Scenario, test: str | None = None) -> Scenario:
        """Count a request answered by ``scenario`` (in ``test``'s counters, if it names one)
        and return the step of its sequence to play."""
        key = (test, scenario.name)
        n = self._answered[key]
        self._answered[key] = n + 1
        return scenario.step(n)

    def reset_counters(self, test: str | None = None) -> None:
        """Every sequence from its start: ``test``'s only, or (``None``) all of them."""
        if test is None:
            self._answered.clear()
        else:
            for key in [key for key in self._answered if key[0] == test]:
                del self._answered[key]


class _Index:
    """Which ``match`` scenarios could hold for a last user text, in load order, without running
    each one's conditions. Most rules say ``last_user: {contains: WORD}``, and a text that holds
    WORD holds each three characters of it: so each such scenario is filed under the rarest
    trigram of its WORD (case-folded for ``ignore_case``), and a request looks up the trigrams of
    its text. The others (no such condition, a word under three characters) are always
    candidates. Choosing among 1,000 then costs the text's trigrams, not 1,000 condition runs."""

    def __init__(self, scenarios: Sequence[Scenario]) -> None:
        self.scenarios = tuple(scenarios)
        self.always: list[int] = []
        self.exact: dict[str, list[int]] = {}
        self.folded: dict[str, list[int]] = {}
        gates = [_gate(scenario) for scenario in scenarios]
        # File each word under its rarest trigram among all the words, so words that share a
        # prefix ("weather in Paris", "weather in Rome") do not all land in one bucket.
        counts = Counter(gram for gate in gates if gate is not None for gram in _grams(gate[0]))
        for position, gate in enumerate(gates):
            if gate is None:
                self.always.append(position)
            else:
                wanted, case = gate
                rarest = min(sorted(_grams(wanted)), key=counts.__getitem__)
                (self.folded if case else self.exact).setdefault(rarest, []).append(position)

    def candidates(self, text: str | None) -> list[Scenario]:
        positions = list(self.always)
        if text is not None:
            for index, given in ((self.exact, text), (self.folded, fold(text))):
                if index:
                    for gram in _grams(given).intersection(index):
                        positions += index[gram]
        return [self.scenarios[p] for p in sorted(positions)]


def _grams(text: str) -> set[str]:
    return {text[i : i + 3] for i in range(len(text) - 2)}


def _gate(scenario: Scenario) -> tuple[str, bool] | None:
    """``(word, ignore case)`` of a ``last_user`` condition that is one ``contains`` test of at
    least three characters: the last user text must hold it for ``scenario`` to match."""
    assert scenario.match is not None
    for key, tests in scenario.match.conditions:
        if (
            key == "last_user"
            and len(tests) == 1
            and tests[0].kind == "contains"
            and len(tests[0].wanted) >= 3
        ):
            return tests[0].wanted, tests[0].ignore_case
    return None
