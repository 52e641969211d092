"""The index of ``match`` scenarios changes nothing but the cost: for any scenarios and any
request, :meth:`ScenarioSet.pick` chooses what a scan of every scenario in load order chooses."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockllm.errors import NoScenarioMatched
from mockllm.formats import FORMATS
from mockllm.loader import scenario_from_dict
from mockllm.match import Seen
from mockllm.matchindex import MatchIndex
from mockllm.scenario import Scenario
from mockllm.selection import ScenarioSet

# Few letters, so words collide; and the characters case folding and re's IGNORECASE treat
# differently ('ß' folds to 'ss', 'İ' to 'i̇', re equates 'ı' and 'ſ' with 'i' and 's').
LETTERS = "abAB sSßſiIıİΣσςK"
VOCABULARY = ["abc", "abcd", "bcd", "pix", "PIX", "strasse", "Straße", "İxy", "ixy", "ſab", "Kab", "ΣaΣ"]
WORDS = st.sampled_from(VOCABULARY) | st.text(LETTERS, max_size=6)
MODELS = ["gpt-4o", "GPT-4o", "gpt-4o-mini", "claude", "m1"]
GLOBS = [*MODELS, "gpt-4o*", "m?", "[cg]*", "*"]
# What may follow a regex's literal start: nothing, a quantifier that makes its last character
# optional, a group, an alternative, an anchor...
REGEX_TAILS = ["", ".", "*", "+", "?", "{0,2}", "{", "|ab", "(?P<g>a+)", r"\b", "[ab]", "$", "s"]
REGEX_HEADS = ["", "^", "(?i)", "a|", "."]


def regex(head: str, word: str, tail: str) -> str:
    pattern = head + re.escape(word) + tail
    try:
        re.compile(pattern)
    except re.error:
        return re.escape(word)
    return pattern


TESTS = st.one_of(
    WORDS.filter(bool),  # a bare string: contains
    st.builds(
        lambda kind, word, ignore: (
            {kind: word, "ignore_case": ignore} if ignore is not None else {kind: word}
        ),
        st.sampled_from(["contains", "equals", "startswith"]),
        WORDS,
        st.none() | st.booleans(),
    ),
    st.builds(
        lambda pattern, ignore: {"regex": pattern, "ignore_case": ignore},
        st.builds(regex, st.sampled_from(REGEX_HEADS), WORDS, st.sampled_from(REGEX_TAILS)),
        st.booleans(),
    ),
)
TEXT = st.one_of(TESTS, st.lists(TESTS, min_size=1, max_size=3))  # one test, or any of them (OR)
TURN = st.one_of(
    st.integers(0, 3),
    st.fixed_dictionaries({}, optional={"min": st.integers(0, 3), "max": st.integers(0, 3)}).filter(bool),
)
CONDITIONS = {
    "last_user": TEXT,
    "system": TEXT,
    "any_message": TEXT,
    "tool_result": st.one_of(st.booleans(), TEXT),
    "model": st.sampled_from(GLOBS),
    "turn": TURN,
    "tools": st.lists(st.sampled_from(["get_weather", "search"]), min_size=1, max_size=2),
}
# One or two conditions (more would seldom all hold), last_user most often.
KEYS = st.lists(st.sampled_from(["last_user", "last_user", *CONDITIONS]), min_size=1, max_size=2, unique=True)
MATCH = KEYS.flatmap(lambda keys: st.fixed_dictionaries({key: CONDITIONS[key] for key in keys}))
# A scenario: its match, or None or "default" (a plain one, for the model and default steps).
SCENARIOS = st.lists(
    st.one_of(MATCH, MATCH, MATCH, MATCH, st.none(), st.just("default")), min_size=1, max_size=12
)

MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "user", "assistant", "tool"]), "content": st.text(LETTERS)}
)
REQUEST = st.fixed_dictionaries(
    {"model": st.sampled_from(MODELS), "messages": st.lists(MESSAGE, min_size=1, max_size=5)},
    optional={
        "tools": st.lists(st.sampled_from(["get_weather", "search"]).map(lambda n: {"function": {"name": n}}))
    },
)


def build(matches: list[Any]) -> list[Scenario]:
    names = iter(["gpt-4o", "claude", *(f"s{i}" for i in range(len(matches)))])
    built = []
    for match in matches:
        if isinstance(match, dict):
            built.append(scenario_from_dict({"reply": "r", "match": match}, name=f"m{len(built)}"))
        else:  # one default at most
            default = match == "default" and not any(s.default for s in built)
            built.append(scenario_from_dict({"reply": "r", "default": default}, name=next(names)))
    return built


def seen_of(body: dict[str, Any]) -> Seen:
    fmt = FORMATS["openai-chat"]
    return Seen(fmt.parse_request(body).conversation, fmt.name, {}, body)


def linear(loaded: list[Scenario], seen: Seen, strict: bool) -> tuple[str, str] | None:
    """Steps 2-4 of the selection as the README states them, one scenario after another."""
    for scenario in loaded:
        if scenario.match is not None and scenario.match.miss(seen) is None:
            return scenario.name, "match"
    for scenario in loaded:
        if scenario.match is None and scenario.name == seen.conversation.model:
            return scenario.name, "model"
    plain = [s for s in loaded if s.match is None]
    if plain and not strict:
        return next((s for s in plain if s.default), plain[0]).name, "default"
    return None


def assert_picks_as_a_scan(loaded: list[Scenario], body: dict[str, Any], strict: bool) -> None:
    seen = seen_of(body)
    expected = linear(loaded, seen, strict)
    if expected is None:
        with pytest.raises(NoScenarioMatched):
            ScenarioSet(loaded).pick(None, seen, strict=strict)
    else:
        choice = ScenarioSet(loaded).pick(None, seen, strict=strict)
        assert (choice.scenario.name, choice.reason) == expected


VARIANTS = st.sampled_from(
    [
        str,
        str,
        str.upper,
        str.lower,
        str.casefold,
        str.swapcase,
        lambda w: w.replace("i", "ı").replace("I", "İ"),
        lambda w: w.replace("İ", "i").replace("ı", "I"),
        lambda w: w.replace("s", "ſ").replace("ss", "ß"),
        lambda w: w[1:],
        lambda w: w[:-1],
        lambda w: w[:-2],
    ]
)


def chat(text: str, model: str = "gpt-4o", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(matches=SCENARIOS, data=st.data(), strict=st.booleans())
def test_the_indexed_pick_is_the_linear_scans_pick(
    matches: list[Any], data: st.DataObject, strict: bool
) -> None:
    loaded = build(matches)
    # Requests that quote the scenarios' own words, so that many of them match.
    # Requests that quote the scenarios' own words (in another case, or with the characters
    # case folding and re's IGNORECASE see differently), so that many of them match.
    words = VOCABULARY + [w for m in matches if isinstance(m, dict) for w in _words(m)]
    word = st.builds(lambda w, variant: variant(w), st.sampled_from(words), VARIANTS)
    text = st.lists(word, min_size=1, max_size=4).map(" ".join) | st.text(LETTERS)
    body = data.draw(REQUEST)
    if data.draw(st.booleans()):  # most agents' requests end with the user's question
        body["messages"].append({"role": "user", "content": ""})
    for message in body["messages"]:
        message["content"] = data.draw(text) + data.draw(st.text(LETTERS, max_size=2))
    assert_picks_as_a_scan(loaded, body, strict)


def _words(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [w for v in value.values() for w in _words(v)]
    if isinstance(value, list):
        return [w for v in value for w in _words(v)]
    return []


@pytest.mark.parametrize(
    ("condition", "text"),
    [
        ({"contains": "STRASSE", "ignore_case": True}, "die Straße"),  # 'ß' folds to 'ss'
        ({"contains": "Straße"}, "die Straße"),
        ({"regex": "pix", "ignore_case": True}, "a pıx"),  # re equates 'ı' and 'i'; casefold does not
        ({"regex": "İxy", "ignore_case": True}, "ixy"),
        ({"regex": "zyxw?"}, "zyx"),  # the quantifier makes 'w' optional
        ({"regex": "zyxw{0}"}, "zyx"),
        ({"regex": "zab*"}, "za"),
        ({"regex": "abc|xyz"}, "xyz"),
        ({"regex": r"weather in (?P<city>\w+)"}, "the weather in Paris"),
        ({"startswith": "WEATHER", "ignore_case": True}, "weather in Paris"),
        ({"equals": "Paris"}, "Paris"),
        (["nothing", {"contains": "PAR", "ignore_case": True}], "paris"),  # OR: filed under each
    ],
)
def test_what_the_index_could_get_wrong(condition: Any, text: str) -> None:
    loaded = build([{"last_user": "zzzz"}, {"last_user": condition}, None])
    assert ScenarioSet(loaded).pick(None, seen_of(chat(text))).scenario.name == "m1"
    assert_picks_as_a_scan(loaded, chat(text), strict=True)


def test_other_texts_models_and_turns_are_indexed_too() -> None:
    loaded = build(
        [
            {"tool_result": {"contains": "temp"}},
            {"system": {"contains": "PIRATE", "ignore_case": True}},
            {"model": "claude", "turn": 0},
            {"turn": {"min": 1}},
            {"model": "gpt-4o*", "any_message": "x"},  # nothing to index: always a candidate
        ]
    )
    index = MatchIndex(loaded)
    assert index.always == [4]
    assert index.models == {"claude": [2]}
    assert index.turns == {(1, None): [3]}
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Talk like a pirate."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f"}}]},
            {"role": "tool", "content": '{"temp": 18}'},
        ],
    }
    assert [s.name for s in index.candidates(seen_of(body))] == ["m0", "m1", "m3", "m4"]
    assert [s.name for s in index.candidates(seen_of(chat("hi", model="claude")))] == ["m2", "m4"]
