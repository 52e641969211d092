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


def test_a_split_s_gap_is_a_duration() -> None:
    (scenario,) = parse_scenarios("reply: abc\nfaults: [{at: 2, split: {byte: 1, gap: 2ms}}]\n", "x.yaml")
    assert scenario.faults == (Split(at=2, byte=1, gap=0.002),)
    with pytest.raises(ScenarioError) as caught:
        parse_scenarios("reply: abc\nfaults: [{at: 2, split: {byte: 1, gap: soon}}]\n", "x.yaml")
    assert (
        str(caught.value)
        == "x.yaml:2:40: faults[0].split.gap: 'soon' is not a duration (e.g. 100ms, 1.5s, 2m)"
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
        "s.yaml:3:1: tokns: unknown key (allowed: body, chaos, context_window, default, description, done, "
        "embeddings, faults, finish_reason, first_byte, headers, incomplete, limits, match, model, name, reply, "
        "sequence, status, template, timing, tokens, tool_calls, transcript, usage, wire); "
        "did you mean 'tokens'?",
        "s.yaml:6:14: timing.per_token: '10 parsecs' is not a duration (e.g. 100ms, 1.5s, 2m)",
        "s.yaml:7:3: timing.jiter: unknown key (allowed: clamp, distribution, first_token, gaps, jitter, per_token, seed, stddev, tokens_per_second); "
        "did you mean 'jitter'?",
        "s.yaml:9:25: faults[0].disconnect: 'rst' is not one of truncate, fin, reset, mid-event; did you mean 'reset'?",
        "s.yaml:10:10: faults[1].at: must be a token index (0, 1, ...), 'end', 'after-finish' or 'after-done', not 'x'",
        "s.yaml:11:20: faults[2].stall: 'soon' is not a duration (e.g. 100ms, 1.5s, 2m) or 'forever'",
        "s.yaml:12:13: faults[3].keepalive: only goes with 'stall'",
        "s.yaml:13:17: wire.framing: 'chunky' is not one of chunked, close-delimited, content-length; did you mean 'chunked'?",
        "s.yaml:13:30: wire.bom: expected true or false, not 'yes'",
        "s.yaml:15:14: sequence[0].status: must be an HTTP status: 400-599 (an error), or 200-299 (a success without a stream), not 99",
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
        "s.yaml:6:5: faults[3]: needs exactly one of stall, malformed, disconnect, error_event, split, content_filter, comment, unterminated (found: none)",
        "s.yaml:8:5: faults[5]: needs exactly one of stall, malformed, disconnect, error_event, split, content_filter, comment, unterminated (found: stall, malformed)",
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
        "s.yaml:1:1: missing key 'reply' (a scenario needs a reply, tool_calls, both, or a transcript)"
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
        "match",  # selects the scenario: one rule for all its steps
        "sequence",
        "limits",  # quotas belong to the scenario, not to one of its requests
        "context_window",
        "chaos",  # draws across the scenario's requests
        "transcript",  # a recorded response, whole: not merged over a reply
        "incomplete",  # a note on a recording
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


# -- issue 16: no traceback, no lie -----------------------------------------------------------------


def one_problem(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenarios(text, "x.yaml")
    return [str(p) for p in caught.value.problems]


MALFORMED_CHOICES = (
    'invalid-json, truncated-json, not-json, missing-prefix, bad-utf8, bad-crc, or a mapping {raw: "..."}'
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the message's literal {raw: ...} was read as a str.format placeholder: KeyError
        (
            "reply: abc\nfaults: [{at: 1, malformed: bogus}]\n",
            f"x.yaml:2:29: faults[0].malformed: 'bogus' is not one of {MALFORMED_CHOICES}",
        ),
        (
            "reply: abc\nfaults: [{at: 1, malformed: 5}]\n",
            f"x.yaml:2:29: faults[0].malformed: 5 is not one of {MALFORMED_CHOICES}",
        ),
        (
            "reply: abc\nfaults: [{at: 1, malformed: {raw: 5}}]\n",
            "x.yaml:2:35: faults[0].malformed.raw: expected a string, not 5",
        ),
        (
            "reply: abc\nfaults: [{at: 1, malformed: {raw: 'a\\q'}}]\n",
            "x.yaml:2:35: faults[0].malformed.raw: \\q is not an escape (\\xHH, \\r, \\n, \\0, \\\\ are)",
        ),
        # keys of several types could not be sorted: TypeError
        (
            "1: a\nreply: hi\n",
            "x.yaml:1:1: [1]: 1 is not a key: keys are names (body, chaos, context_window, default, description, "
            "done, embeddings, faults, finish_reason, first_byte, headers, incomplete, limits, match, model, name, "
            "reply, sequence, status, template, timing, tokens, "
            "tool_calls, transcript, usage, wire)",
        ),
        # seed of 5,000 digits: ValueError from int()
        (
            "reply: hi\ntiming: {seed: " + "1" * 5000 + "}\n",
            "x.yaml:2:16: an integer of 5,000 digits: mockllm reads integers of at most 4,300",
        ),
        # crashed validate while printing it
        (
            'name: "\\ud800"\nreply: hi\n',
            "x.yaml:1:7: name: contains a lone surrogate (U+D800): not Unicode text, so it cannot be sent",
        ),
    ],
)
def test_what_raised_a_traceback_is_a_positioned_problem(text: str, expected: str) -> None:
    assert one_problem(text) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 500 "Forbidden control character", or a dropped connection with status:
        (
            'reply: hi\nheaders: {X-A: "a\\r\\nb"}\n',
            "x.yaml:2:16: headers.X-A: 'a\\r\\nb' cannot be sent as a header: it contains a control "
            "character (U+000D)",
        ),
        (
            'reply: hi\nstatus: 503\nheaders: {Retry-After: "1\\n"}\n',
            "x.yaml:3:24: headers.Retry-After: '1\\n' cannot be sent as a header: it contains a control "
            "character (U+000A)",
        ),
        (
            'reply: hi\nwire: {content_type: "text/plain\\r\\nX: y"}\n',
            "x.yaml:2:22: wire.content_type: 'text/plain\\r\\nX: y' cannot be sent as a header: it "
            "contains a control character (U+000D)",
        ),
        (
            "reply: hi\nheaders: {Bad Name: x}\n",
            "x.yaml:2:11: headers.'Bad Name': 'Bad Name' is not a header name (letters, digits and "
            "!#$%&'*+-.^_`|~ only)",
        ),
        # they break the response's framing
        (
            "reply: hi\nheaders: {Content-Length: 5}\n",
            "x.yaml:2:11: headers.Content-Length: mockllm frames the body itself (wire.framing): a "
            "Content-Length header would contradict it",
        ),
        (
            "reply: hi\nheaders: {transfer-encoding: chunked}\n",
            "x.yaml:2:11: headers.transfer-encoding: mockllm frames the body itself (wire.framing): a "
            "transfer-encoding header would contradict it",
        ),
        (
            "reply: hi\nheaders: {X-Big: " + "x" * 9000 + "}\n",
            "x.yaml:2:10: headers: 9,009 bytes of headers: at most 8,192 (clients read no more)",
        ),
        # OverflowError / ValueError at serve time
        (
            "reply: hi\ntiming: {per_token: .inf}\n",
            "x.yaml:2:21: timing.per_token: inf is not a finite number",
        ),
        (
            "reply: hi\nfaults: [{at: 0, stall: .nan}]\n",
            "x.yaml:2:25: faults[0].stall: nan is not a finite number",
        ),
        (
            "reply: hi\nfirst_byte: 1.0e+400\n",
            "x.yaml:2:13: first_byte: inf is not a finite number",
        ),
        # a stream dropped with 0 bytes
        (
            'reply: "a\\udc00b"\n',
            "x.yaml:1:8: reply: contains a lone surrogate (U+DC00): not Unicode text, so it cannot be sent",
        ),
        (
            "reply: a\nstatus: 500\nbody: {when: 2001-01-01}\n",
            "x.yaml:3:7: body: cannot be sent as JSON: Object of type date is not JSON serializable",
        ),
        (
            "tool_calls: [{name: f, arguments: '{\"a\": NaN}'}]\n",
            "x.yaml:1:35: tool_calls[0].arguments: is not valid JSON: NaN is not JSON",
        ),
        (
            "tool_calls: [{name: f, arguments: {when: 2001-01-01}}]\n",
            "x.yaml:1:35: tool_calls[0].arguments: cannot be sent as JSON: Object of type date is not "
            "JSON serializable",
        ),
    ],
)
def test_what_the_server_could_not_serve_is_refused_at_load_time(text: str, expected: str) -> None:
    assert one_problem(text) == [expected]


def test_values_from_python_are_held_to_the_same_contract() -> None:
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict({"reply": "x", "wire": {"retry": 10**30}, "headers": {"X": "a\nb"}})
    assert [str(p) for p in caught.value.problems] == [
        "<inline>: wire.retry: 1000000000000000000000000000000 is too large: integers are at most 2**63 - 1",
    ]
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict({"reply": "x", "body": loop, "status": 500})
    assert str(caught.value) == (
        "<inline>: body" + "[0]" * 100 + ": nested more than 100 levels deep (does it contain itself?)"
    )
    with pytest.raises(
        ScenarioError, match=r"reply: a stream of 1,000,001 tokens: mockllm streams at most 1,000,000"
    ):
        scenario_from_dict({"reply": "x" * 1_000_001})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("reply: [a, 1, b]\n", "x.yaml:1:12: reply[1]: expected a string, not 1"),
        (
            "name: 'Has Space'\nreply: hi\n",
            "x.yaml:1:7: name: 'Has Space' is not a name: a name is one word of at most 200 characters, "
            "without spaces or control characters (it is sent in the X-Mockllm-Scenario header)",
        ),
        (
            "reply: hi\ntiming: {per_token: -1}\n",
            "x.yaml:2:21: timing.per_token: -1 is not a duration: it is negative",
        ),
        ("reply: hi\nfirst_byte: -2s\n", "x.yaml:2:13: first_byte: '-2s' is not a duration: it is negative"),
        (
            "reply: hi\nfaults: [{at: 0, stall: -1}]\n",
            "x.yaml:2:25: faults[0].stall: -1 is not a duration: it is negative",
        ),
        (
            "reply: hi\ntiming: {first_token: 25h}\n",
            "x.yaml:2:23: timing.first_token: '25h' is not a duration: it is longer than a day (24h), the "
            "longest mockllm waits; use stall: forever to wait for ever",
        ),
        (
            "reply: hi\nfaults: [{at: 0, disconnect: rst}]\n",
            "x.yaml:2:30: faults[0].disconnect: 'rst' is not one of truncate, fin, reset, mid-event; "
            "did you mean 'reset'?",
        ),
        (
            "reply: hi\ntokens: words\n",
            "x.yaml:2:9: tokens: 'words' is not one of rune, word; did you mean 'word'?",
        ),
        ("[]\n", "x.yaml:1:1: an empty list: expected at least one scenario"),
    ],
)
def test_messages_that_say_more(text: str, expected: str) -> None:
    assert one_problem(text) == [expected]


def test_an_hour_is_a_duration() -> None:
    (scenario,) = parse_scenarios("reply: hi\ntiming: {first_token: 1h}\nfaults: [{at: 0, stall: 0.5h}]\n")
    assert scenario.timing.first_token == 3600.0
    assert scenario.faults == (Stall(at=0, duration=1800.0),)


def test_a_binary_file_is_not_utf8_text(tmp_path: Path) -> None:
    (tmp_path / "logo.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ScenarioError) as caught:
        load_scenarios([tmp_path / "logo.yaml"])
    assert str(caught.value) == (
        f"{tmp_path}/logo.yaml:1:1: not UTF-8 text: byte 0x89 here is an invalid start byte "
        "(scenarios are UTF-8 YAML or JSON)"
    )


def test_default_true_makes_the_default_and_there_is_at_most_one(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("reply: a\n")
    (tmp_path / "b.yaml").write_text("reply: b\ndefault: true\n")
    assert [s.name for s in load_scenarios([tmp_path])] == ["b", "a"]
    (tmp_path / "c.yaml").write_text("\nreply: c\ndefault: true\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenarios([tmp_path])
    assert str(caught.value) == (
        f"{tmp_path}/c.yaml:2:1: default: a second default: 'b' ({tmp_path}/b.yaml:1) is one already; "
        "at most one scenario of a set says default: true"
    )


def test_multi_document_yaml_is_a_list_of_scenarios() -> None:
    text = "name: a\nreply: x\n---\n- {name: b, reply: y}\n- {name: c, reply: z, default: true}\n"
    assert [s.name for s in parse_scenarios(text)] == ["c", "a", "b"]
    with pytest.raises(ScenarioError) as caught:
        parse_scenarios("reply: x\n---\nreply: y\n", "x.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "x.yaml:1:1: missing key 'name' (required when a file holds several scenarios)",
        "x.yaml:3:1: missing key 'name' (required when a file holds several scenarios)",
    ]
