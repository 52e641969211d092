"""The interface of the ``mockllm`` pytest fixture, for type annotations in users' tests::

    def test_streams(mockllm: MockLLM) -> None: ...

:class:`~mockllm.server.MockLLMServer` implements it; the fixture hands out the session's server
after resetting it for the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Union

if TYPE_CHECKING:
    from .calls import CallLog
    from .scenario import Scenario

#: What ``use()`` and the marker accept: a Scenario, a mapping (one scenario), YAML text, a path
#: to a file or directory, or a list of those.
ScenarioSource = Union["Scenario", dict[str, Any], str, Path]


class MockLLM(Protocol):
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``"""
        ...

    @property
    def openai_base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: pass it as the OpenAI SDK's ``base_url``."""
        ...

    @property
    def scenario(self) -> Scenario:
        """The scenario that answers a request that selects none (the one marked
        ``default: true``, else the first loaded)."""
        ...

    @property
    def scenarios(self) -> tuple[Scenario, ...]: ...

    @property
    def calls(self) -> CallLog:
        """Every call the server received in this test."""
        ...

    def use(self, *sources: ScenarioSource) -> MockLLM:
        """Serve these scenarios (the default: the one marked ``default: true``, else the first)
        for the rest of the test."""
        ...
