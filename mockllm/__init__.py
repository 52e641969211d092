"""mockllm: a scripted mock LLM server for testing clients of streamed LLM output.

Scenarios (YAML) say what the fake model replies, how fast, and how its stream misbehaves; the
server replays them rune by rune in the wire formats of real LLM APIs.
"""


__version__ = "0.1.0"

from .errors import MockLLMError, Problem, ScenarioError, ScenarioNotFound
from .loader import default_scenarios, load_scenarios, parse_scenarios, scenario_from_dict
from .scenario import Scenario, Timing, Wire
from .server import MockLLMServer

__all__ = [
    "MockLLMError",
    "MockLLMServer",
    "Problem",
    "Scenario",
    "ScenarioError",
    "ScenarioNotFound",
    "Timing",
    "Wire",
    "__version__",
    "default_scenarios",
    "load_scenarios",
    "parse_scenarios",
    "scenario_from_dict",
]
