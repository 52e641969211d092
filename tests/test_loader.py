"""Loading scenario files: the model built, and every problem reported with file:line:column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from mockllm import ScenarioError, load_scenarios, parse_scenarios, scenario_from_dict
from mockllm.faults import Disconnect, MalformedLine, Split, Stall, decode_raw
from mockllm.schemaerrors import schema

from .conftest import SCENARIOS


def problems(tmp_path: Path, text: str, name: str = "s.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenarios([path])
    return [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems]


def test_minimal_scenario_defaults(tmp_path: Path) -> None:
    path = tmp_path / "hello.yaml"
    path.write_text("reply: Hé🎉\n", encoding="utf-8")
    (scenario,) = load_scenarios([path])
    assert scenario.name == "hello"
    assert scenario.tokens == ("H", "é", "🎉")
    assert scenario.reply_text == "Hé🎉"
    assert (scenario.finish_reason, scenario.done, scenario.model) == ("stop", True, None)
    assert scenario.timing.per_token == 0.0
    assert scenario.source == f"{path}:1"


def test_word_tokens_and_verbatim_list() -> None:
    assert scenario_from_dict({"reply": "  Hello big\nworld ", "tokens": "word"}).tokens == (
        "  Hello ",
        "big\n",
        "world ",
    )
    assert scenario_from_dict({"reply": ["He", "llo", " 🎉"]}).tokens == ("He", "llo", " 🎉")


def test_all_keys_build_the_model() -> None:
    (scenario,) = parse_scenarios(
        """
name: full
description: everything
reply: ab日d
model: my-model
finish_reason: length
done: false
timing: {first_token: 1s, per_token: 100ms, jitter: 5ms, seed: 7}
first_byte: 2s
status: 503
headers: {Retry-After: 1}
body: {error: custom}
wire: {line_ending: crlf, bom: true, event_ids: true, retry: 3000, comment_first: x,
       no_space: true, framing: close-delimited, content_type: text/plain, flush: event}
faults:
  - {at: 0, stall: 2s, keepalive: {every: 500ms, line: ""}}
  - {at: 1, malformed: {raw: 'a\\xffb'}, replace: true}
  - {at: 2, split: utf8}
  - {at: end, disconnect: reset}
"""
    )
    assert scenario.model == "my-model"
    assert scenario.timing.first_token == 1.0
    assert scenario.timing.seed == 7
    assert scenario.first_byte == 2.0
    assert scenario.status == 503
    assert scenario.headers == (("Retry-After", "1"),)
    assert scenario.body == {"error": "custom"}
    assert scenario.wire.framing == "close-delimited"
    assert scenario.wire.retry == 3000
    assert scenario.faults == (
        Stall(at=0, duration=2.0, keepalive_every=0.5, keepalive_line=""),
        MalformedLine(at=1, kind="raw", raw=b"a\xffb", replace=True),
        Split(at=2),
        Disconnect(at=None, mode="reset"),
    )


def test_split_needs_a_multibyte_token() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenarios("reply: abc\nfaults: [{at: 2, split: utf8}]\n", "x.yaml")
    assert (
        str(caught.value) == "x.yaml:2:25: faults[0].split: token 2 ('c') has no multi-byte character to cut"
    )


def test_one_pass_reports_every_problem_with_positions(tmp_path: Path) -> None:
    text = """\
name: bad
reply: hello
tokns: word
timing:
  first_token: 1s
  per_token: 10 parsecs
  jiter: 3
faults:
  - {at: 1, disconnect: rst}
  - {at: x, stall: 1s}
  - {at: 2, stall: soon}
  - {at: 3, keepalive: {every: 1s}}
wire: {framing: chunky, bom: "yes"}
sequence:
  - {status: 99}
"""
    assert problems(tmp_path, text) == [
        "s.yaml:3:1: tokns: unknown key (allowed: body, default, description, done, faults, finish_reason, "
        "first_byte, headers, model, name, reply, sequence, status, timing, tokens, tool_calls, wire); "
        "did you mean 'tokens'?",
        "s.yaml:6:14: timing.per_token: '10 parsecs' is not a duration (e.g. 100ms, 1.5s, 2m)",
        "s.yaml:7:3: timing.jiter: unknown key (allowed: first_token, jitter, per_token, seed); "
        "did you mean 'jitter'?",
        "s.yaml:9:25: faults[0].disconnect: 'rst' is not one of truncate, fin, reset, mid-event; did you mean 'reset'?",
        "s.yaml:10:10: faults[1].at: must be a token index (0, 1, ...) or 'end', not 'x'",
        "s.yaml:11:20: faults[2].stall: 'soon' is not a duration (e.g. 100ms, 1.5s, 2m) or 'forever'",
        "s.yaml:12:13: faults[3].keepalive: only goes with 'stall'",
        "s.yaml:13:17: wire.framing: 'chunky' is not one of chunked, close-delimited, content-length; did you mean 'chunked'?",
        "s.yaml:13:30: wire.bom: expected true or false, not 'yes'",
        "s.yaml:15:14: sequence[0].status: must be at least 400, not 99",
    ]


def test_semantic_fault_problems(tmp_path: Path) -> None:
    text = """\
reply: "héllo"
faults:
  - {at: 9, stall: 1s}
  - {at: 1, split: utf8}
  - {at: 1, stall: 1s, mid_event: true}
  - {at: 2}
  - {at: 3, disconnect: fin}
  - {at: 4, stall: 1s, malformed: not-json}
  - {at: end, error_event: {message: late}}
  - {at: 0, stall: 1s, mid_event: true, keepalive: {every: 100ms}}
"""
    assert problems(tmp_path, text) == [
        "s.yaml:3:10: faults[0].at: 9 is beyond the reply: the last token is at 4; use 'end' for after it",
        "s.yaml:5:5: faults[2]: cuts the same token as faults[1]",
        "s.yaml:6:5: faults[3]: needs exactly one of stall, malformed, disconnect, error_event, split (found: none)",
        "s.yaml:8:5: faults[5]: needs exactly one of stall, malformed, disconnect, error_event, split (found: stall, malformed)",
        "s.yaml:9:5: faults[6]: never fires: faults[4] ends the stream before it",
        "s.yaml:10:52: faults[7].keepalive: cannot be combined with mid_event: it would land inside the event",
    ]


def test_content_length_cannot_frame_a_forever_stall(tmp_path: Path) -> None:
    text = "reply: ab\nwire: {framing: content-length}\nfaults: [{at: 1, stall: forever}]\n"
    assert problems(tmp_path, text) == [
        "s.yaml:2:17: wire.framing: content-length cannot frame a stream that stalls forever"
    ]


def test_sequence_problems_point_into_the_step(tmp_path: Path) -> None:
    text = "reply: ab\nsequence:\n  - {}\n  - {faults: [{at: 5, stall: 1s}]}\n"
    assert problems(tmp_path, text) == [
        "s.yaml:4:20: sequence[1].faults[0].at: 5 is beyond the reply: the last token is at 1; "
        "use 'end' for after it"
    ]


def test_step_reply_that_breaks_inherited_faults_says_which_step(tmp_path: Path) -> None:
    text = "reply: abcdef\nfaults: [{at: 4, disconnect: fin}]\nsequence:\n  - {reply: ab}\n"
    assert problems(tmp_path, text) == [
        "s.yaml:2:15: faults[0].at: 4 is beyond the reply: the last token is at 1; use 'end' "
        "for after it (in sequence[0])"
    ]


def test_sequence_steps_merge_mappings_and_replace_the_rest() -> None:
    scenario = scenario_from_dict(
        {
            "reply": "abc",
            "timing": {"per_token": "10ms", "first_token": "1s"},
            "faults": [{"at": 1, "disconnect": "fin"}],
            "sequence": [{"status": 503}, {"timing": {"per_token": "20ms"}, "faults": []}],
        }
    )
    first, second = scenario.sequence
    assert first.status == 503
    assert first.faults == scenario.faults
    assert second.status is None
    assert second.faults == ()
    assert (second.timing.per_token, second.timing.first_token) == (0.02, 1.0)
    assert [scenario.step(n) for n in range(4)] == [first, second, second, second]
    assert scenario_from_dict({"reply": "x"}).step(3).reply_text == "x"


def test_document_level_problems(tmp_path: Path) -> None:
    assert problems(tmp_path, "") == ["s.yaml: empty file: expected a scenario or a list of scenarios"]
    assert problems(tmp_path, "reply: [unclosed\n") == [
        "s.yaml:2:1: invalid YAML: expected ',' or ']', but got '<stream end>'"
    ]
    assert problems(tmp_path, "just text\n") == [
        "s.yaml:1:1: a scenario must be a mapping with at least a 'reply', not 'just text'"
    ]
    assert problems(tmp_path, "description: x\n") == [
        "s.yaml:1:1: missing key 'reply' (a scenario needs a reply, tool_calls, or both)"
    ]
    assert problems(tmp_path, "reply: a\nreply: b\n") == ["s.yaml:2:1: reply: duplicate key"]
    assert problems(tmp_path, "- {reply: a}\n- {reply: b}\n") == [
        "s.yaml:1:3: missing key 'name' (required when a file holds several scenarios)",
        "s.yaml:2:3: missing key 'name' (required when a file holds several scenarios)",
    ]


def test_missing_paths_empty_dirs_and_duplicate_names(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenarios([tmp_path / "nope.yaml"])
    assert str(caught.value) == f"{tmp_path}/nope.yaml: no such file or directory"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ScenarioError, match=r"no \*\.yaml or \*\.yml files"):
        load_scenarios([empty])
    (tmp_path / "a.yaml").write_text("name: same\nreply: a\n")
    (tmp_path / "b.yml").write_text("\n\nname: same\nreply: b\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenarios([tmp_path / "a.yaml", tmp_path / "b.yml"])
    assert str(caught.value) == (
        f"{tmp_path}/b.yml:3:1: name: duplicate scenario name 'same' (first in {tmp_path}/a.yaml:1)"
    )


def test_directory_loads_yaml_and_yml_sorted(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text("reply: b\n")
    (tmp_path / "a.yaml").write_text("reply: a\n")
    (tmp_path / "c.txt").write_text("not a scenario")
    assert [s.name for s in load_scenarios([tmp_path])] == ["a", "b"]


def test_inline_dict_problems_have_no_position() -> None:
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict({"reply": "x", "timing": {"per_token": "soon"}})
    assert str(caught.value) == "<inline>: timing.per_token: 'soon' is not a duration (e.g. 100ms, 1.5s, 2m)"


def test_raw_escapes() -> None:
    assert decode_raw(r"a\xffb\r\n\0") == b"a\xffb\r\n\x00"
    assert decode_raw("日") == "日".encode()


def test_shipped_schema_is_valid_and_accepts_every_shipped_scenario() -> None:
    Draft202012Validator.check_schema(schema())
    packaged = Path(__file__).parent.parent / "mockllm" / "data" / "scenario.schema.json"
    assert json.loads(packaged.read_text()) == schema()
    import yaml

    validator = Draft202012Validator(schema())
    for path in sorted(SCENARIOS.glob("*.yaml")):
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8"))))
        assert errors == [], path


def test_step_and_scenario_schemas_share_every_behaviour_key() -> None:
    defs = schema()["$defs"]
    assert set(defs["scenario"]["properties"]) - set(defs["step"]["properties"]) == {
        "name",
        "description",
        "default",
        "sequence",
    }


def test_tool_calls() -> None:
    (scenario,) = parse_scenarios(
        """
reply: "Hi"
tool_calls:
  - {name: get_weather, arguments: {city: Paris, days: 2}}
  - {name: noop, arguments: '{"x": [1]}', id: call_fixed}
"""
    )
    first, second = scenario.tool_calls
    assert (first.name, first.arguments, first.id) == ("get_weather", '{"city":"Paris","days":2}', None)
    assert (second.arguments, second.id) == ('{"x": [1]}', "call_fixed")
    assert scenario.finish_reason == "tool_calls"
    assert scenario.stream_tokens[:3] == ((None, "H"), (None, "i"), (0, "{"))
    assert len(scenario.stream_tokens) == 2 + len(first.arguments) + len(second.arguments)


def test_tool_call_problems(tmp_path: Path) -> None:
    text = "tool_calls:\n  - {name: f, arguments: '{broken'}\n"
    assert problems(tmp_path, text) == [
        "s.yaml:2:26: tool_calls[0].arguments: is not valid JSON: Expecting property name enclosed in double quotes"
    ]
    assert problems(tmp_path, "tool_calls:\n  - {arguments: {}}\n") == [
        "s.yaml:2:5: tool_calls[0]: missing required key 'name'"
    ]
    assert problems(tmp_path, "reply: ab\ntool_calls: [{name: f}]\nfaults: [{at: 5, stall: 1s}]\n") == [
        "s.yaml:3:15: faults[0].at: 5 is beyond the reply: the last token is at 3; use 'end' for after it"
    ]
