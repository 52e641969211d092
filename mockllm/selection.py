"""Which scenario answers a request, and which step of its ``sequence``.

Selection, in order: the ``X-Mockllm-Scenario`` header (an unknown name is an error, never a silent
fallback); else a scenario whose name equals the request's ``model``; else the default: the
scenario marked ``default: true``, or else the first loaded. Each scenario counts the requests it
answered, so its n-th request gets step n of its ``sequence``; :meth:`ScenarioSet.reset_counters`
starts every sequence again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Literal

from .errors import MockLLMError, ScenarioNotFound
from .scenario import Scenario, default_first

HEADER = "X-Mockllm-Scenario"
Reason = Literal["header", "model", "default"]


class ScenarioSet:
    """The loaded scenarios, by name, with the default first."""

    def __init__(self, scenarios: Sequence[Scenario]) -> None:
        if not scenarios:
            raise MockLLMError("A mock server needs at least one scenario.")
        self.scenarios = default_first(scenarios)
        self._by_name = {s.name: s for s in scenarios}
        self._answered: Counter[str] = Counter()

    @property
    def default(self) -> Scenario:
        return self.scenarios[0]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.scenarios]

    def get(self, name: str) -> Scenario:
        try:
            return self._by_name[name]
        except KeyError:
            raise ScenarioNotFound(name, self.names) from None

    def pick(self, header: str | None, model: str | None) -> tuple[Scenario, Reason]:
        """The scenario for a request, and why it was chosen."""
        if header:
            return self.get(header), "header"
        if model is not None and model in self._by_name:
            return self._by_name[model], "model"
        return self.default, "default"

    def next_step(self, scenario: Scenario) -> Scenario:
        """Count a request answered by ``scenario`` and return the step of its sequence to play."""
        n = self._answered[scenario.name]
        self._answered[scenario.name] = n + 1
        return scenario.step(n)

    def reset_counters(self) -> None:
        self._answered.clear()
