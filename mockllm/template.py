"""``template: true``: a reply that quotes the request.

``${last_user}`` is the last user message's text, ``${model}`` the request's model, and
``${NAME}`` a named group ``(?P<NAME>...)`` of a ``regex`` test in the scenario's ``match`` (on
``last_user`` or ``system``); ``$$`` is a literal ``$``, and any other ``$`` stays as it is. Off by
default, so literal text is never rewritten. Names are checked at load; a reply is rendered per
request (and cut at :data:`~mockllm.builder.MAX_TOKENS` tokens by the caller's split).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from .match import Match
from .scenario import Scenario, split_tokens

PLACEHOLDER = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)\})")
BUILT_IN = ("last_user", "model")
#: The most runes a rendered reply keeps (a quoted prompt can be long).
MAX_RENDERED = 100_000


def placeholders(text: str) -> list[str]:
    return [m.group(1) for m in PLACEHOLDER.finditer(text) if m.group(1)]


def group_names(match: Match | None) -> set[str]:
    """The named groups a ``match`` can fill."""
    names: set[str] = set()
    for key, spec in match.conditions if match is not None else ():
        if key in ("last_user", "system"):
            for test in spec:
                if getattr(test, "pattern", None) is not None:
                    names |= set(test.pattern.groupindex)
    return names


def unknown(text: str, match: Match | None) -> list[str]:
    known = set(BUILT_IN) | group_names(match)
    return [name for name in dict.fromkeys(placeholders(text)) if name not in known]


def render(text: str, values: Mapping[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), "") if m.group(1) else "$", text)


def rendered(scenario: Scenario, values: Mapping[str, str]) -> Scenario:
    """``scenario`` with its reply rendered, split as the scenario splits it."""
    text = render(scenario.reply_text, values)[:MAX_RENDERED]
    return replace(scenario, tokens=split_tokens(text, scenario.token_mode))
