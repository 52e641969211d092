"""mockllm: a scripted mock LLM server for testing clients of streamed LLM output.

Scenarios (YAML) say what the fake model replies, how fast, and how its stream misbehaves; the
server replays them rune by rune in the wire formats of real LLM APIs.

Names are imported on first use: the pytest plugin loads this package into every test run of
every project that installs mockllm, and most of them never start a server.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .app import create_app
    from .calls import Call, CallLog
    from .errors import MockLLMError, Problem, ScenarioError, ScenarioNotFound
    from .loader import default_scenarios, load_scenarios, parse_scenarios, scenario_from_dict
    from .scenario import Scenario, Timing, Wire
    from .server import MockLLMServer
    from .state import STATE
    from .testing import MockLLM

_WHERE = {
    "STATE": "state",
    "Call": "calls",
    "CallLog": "calls",
    "MockLLM": "testing",
    "MockLLMError": "errors",
    "MockLLMServer": "server",
    "Problem": "errors",
    "Scenario": "scenario",
    "ScenarioError": "errors",
    "ScenarioNotFound": "errors",
    "Timing": "scenario",
    "Wire": "scenario",
    "create_app": "app",
    "default_scenarios": "loader",
    "load_scenarios": "loader",
    "parse_scenarios": "loader",
    "scenario_from_dict": "loader",
}

__all__ = [
    "Call",
    "CallLog",
    "MockLLM",
    "MockLLMError",
    "MockLLMServer",
    "Problem",
    "STATE",
    "Scenario",
    "ScenarioError",
    "ScenarioNotFound",
    "Timing",
    "Wire",
    "__version__",
    "create_app",
    "default_scenarios",
    "load_scenarios",
    "parse_scenarios",
    "scenario_from_dict",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mockllm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
