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
from .match import Seen
from .matchindex import MatchIndex
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
        self._index = MatchIndex(self._matching)
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
            for scenario in self._index.candidates(seen):
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
