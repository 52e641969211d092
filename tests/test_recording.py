"""An exchange as a scenario (pure: no server, no clock), the transcript key, and redaction."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from mockllm.cli import main
from mockllm.faults import decode_raw
from mockllm.loader import load_set, scenario_from_dict
from mockllm.recording import Exchange, cut_short, scenario_of
from mockllm.redaction import Redactor, public_url
from mockllm.timeline import build_timeline
from mockllm.yamlwriter import escape, render

BODY = json.dumps({"model": "gpt-x", "stream": True, "messages": [{"role": "user", "content": "Hi there"}]})


def chunk(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    data = {"model": "gpt-x", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def exchange(reads: list[tuple[float, bytes]], ending: str = "eof") -> Exchange:
    return Exchange(
        upstream="https://user:pw@api.example.com/base?key=secret",
        method="POST",
        path="/v1/chat/completions",
        when="2026-12-03T12:00:00Z",
        request_body=BODY.encode(),
        status=200,
        response_headers=[("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")],
        first_byte=0.25,
        reads=reads,
        ending=ending,
    )


def test_a_stream_becomes_tokens_gaps_keepalives_and_a_match() -> None:
    reads = [
        (0.1, chunk("Hel")),
        (0.131, chunk("lo")),
        (0.631, b": ping\n\n"),
        (1.131, b": ping\n\n"),
        (1.5, chunk("!")),
        (1.52, chunk(finish="stop") + b"data: [DONE]\n\n"),
    ]
    data, notes = scenario_of(exchange(reads), "rec")
    assert data["match"] == {
        "format": "openai-chat",
        "model": "gpt-x",
        "turn": 0,
        "tool_result": False,
        "last_user": {"equals": "Hi there"},
    }
    assert data["reply"] == ["Hel", "lo", "!"]
    assert data["first_byte"] == 0.25
    assert data["timing"] == {"first_token": 0.1, "gaps": [0.031, 0.0, 0.02]}
    assert data["faults"] == [{"at": 2, "stall": 1.369, "keepalive": {"every": 0.5, "line": ": ping"}}]
    assert notes[1] == "upstream: https://api.example.com/base"  # no credentials, no query
    # It loads, and its timeline puts each token where the upstream sent it.
    scenario = scenario_from_dict({k: v for k, v in data.items() if k != "name"}, name="rec")
    times = [round(s.deadline, 4) for s in build_timeline(scenario) if type(s.event).__name__ == "Token"]
    assert times == [0.1, 0.131, 1.5]
    keepalives = [
        round(s.deadline, 4) for s in build_timeline(scenario) if type(s.event).__name__ == "KeepAlive"
    ]
    assert keepalives == [0.631, 1.131]
    assert "reply: [Hel, lo, '!']" in render(data, notes)


def test_an_event_cut_across_reads_is_a_split_as_far_apart_as_the_reads() -> None:
    lo = chunk("lo")
    reads = [
        (0.1, chunk("Hel")),
        (0.2, lo[:10]),
        (0.203, lo[10:]),
        (0.3, chunk(finish="stop") + b"data: [DONE]\n\n"),
    ]
    data, _ = scenario_of(exchange(reads), "rec")
    assert data["faults"] == [{"at": 1, "split": {"byte": 10, "gap": 0.003}}]
    scenario = scenario_from_dict({k: v for k, v in data.items() if k != "name"}, name="rec")
    parts = [
        (round(s.deadline, 4), s.event.part) for s in build_timeline(scenario) if hasattr(s.event, "part")
    ]
    assert parts == [(0.2, "head"), (0.203, "tail")]


@pytest.mark.parametrize(
    ("ending", "tail", "fault"),
    [
        ("fin", b"", {"at": "end", "disconnect": "fin"}),
        ("fin", b'data: {"cho', {"at": "end", "disconnect": "mid-event"}),
        ("reset", b"", {"at": "end", "disconnect": "reset"}),
        ("eof", b"", {"at": "end", "disconnect": "truncate"}),
        ("abandoned", b"", {"at": "end", "stall": "forever"}),
    ],
)
def test_how_a_stream_ended_is_its_last_fault(ending: str, tail: bytes, fault: dict[str, str]) -> None:
    data, _ = scenario_of(exchange([(0.0, chunk("a")), (0.01, chunk("b") + tail)], ending), "rec")
    assert data["reply"] == "ab"
    assert data["faults"][-1] == fault
    assert data.get("incomplete", False) is (ending == "abandoned")


def test_a_client_that_hung_up_after_done_left_a_whole_answer() -> None:
    whole = exchange([(0.0, chunk("a") + chunk(finish="stop") + b"data: [DONE]\n\n")], "abandoned")
    assert not cut_short(whole)
    data, _ = scenario_of(whole, "rec")
    assert "incomplete" not in data
    assert "faults" not in data


def test_an_error_event_and_a_missing_terminator() -> None:
    error = b'data: {"error": {"message": "overloaded", "type": "server_error", "code": 529}}\n\n'
    data, _ = scenario_of(exchange([(0.0, chunk("a")), (0.2, error)]), "rec")
    assert data["timing"] == {"gaps": [0.2]}
    assert data["faults"] == [
        {"at": "end", "error_event": {"message": "overloaded", "type": "server_error", "code": 529}}
    ]
    data, _ = scenario_of(exchange([(0.0, chunk("a") + chunk(finish="length"))]), "rec")
    assert (data["finish_reason"], data["done"]) == ("length", False)


def test_an_http_error_keeps_its_status_body_and_the_headers_that_matter() -> None:
    error = exchange([(0.0, b'{"error": {"message": "slow down"}}')])
    error.status = 429
    error.response_headers = [
        ("Content-Type", "application/json"),
        ("Retry-After", "7"),
        ("x-ratelimit-remaining-requests", "0"),
        ("Set-Cookie", "session=abc"),
        ("x-api-key", "sk-leaked-123456789"),
        ("Via", "proxy"),
    ]
    data, _ = scenario_of(error, "rec")
    assert data["status"] == 429
    assert data["body"] == {"error": {"message": "slow down"}}
    assert data["headers"] == {"Retry-After": "7", "x-ratelimit-remaining-requests": "0"}
    data, _ = scenario_of(error, "rec", keep_headers=["via", "set-cookie", "x-api-key"])
    assert data["headers"] == {"Retry-After": "7", "x-ratelimit-remaining-requests": "0", "Via": "proxy"}


def test_exact_writes_a_transcript_that_replays_the_reads() -> None:
    reads = [(0.01, b"data: \xe6\x97"), (0.03, b"\xa5\\ \r\n\n"), (0.05, b"\xff")]
    data, _ = scenario_of(exchange(reads, "reset"), "rec", exact=True)
    scenario = scenario_from_dict({k: v for k, v in data.items() if k != "name"}, name="rec")
    assert scenario.transcript == ((0.01, reads[0][1]), (0.02, reads[1][1]), (0.02, reads[2][1]))
    assert data["faults"] == [{"at": "end", "disconnect": "reset"}]


def test_escape_is_what_decode_raw_reverses() -> None:
    rng = random.Random(7)
    for _ in range(200):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        assert decode_raw(escape(data)) == data
    assert escape("é\\".encode() + b"\xff") == "é\\\\\\xff"


def test_the_transcript_key_is_checked_at_load() -> None:
    text = "transcript:\n  - {after: 10ms, bytes: 'ok\\q'}\n"
    (problem,) = load_set([text]).problems
    assert str(problem) == (
        "<string>:2:26: transcript[0].bytes: \\q is not an escape (\\xHH, \\r, \\n, \\0, \\\\ are)"
    )
    (problem,) = load_set(["reply: hi\ntranscript: [{after: 0, bytes: x}]\n"]).problems
    assert str(problem).endswith(
        "reply: a transcript is the whole response: it cannot have a reply or tool_calls too"
    )
    (problem,) = load_set(
        ["transcript: [{after: 0, bytes: x}]\nfaults: [{at: 1, disconnect: fin}]\n"]
    ).problems
    assert "1 is beyond the reply: the last token is at 0" in str(problem)


def test_redaction_spans_tokens_and_keeps_their_count() -> None:
    redactor = Redactor([r"hunter\d"])
    pieces = ["my ", "sk-", "abc", "defgh", "ij ", "and hun", "ter2!"]
    assert redactor.pieces(pieces) == ["my ", "[REDACTED]", "", "", " ", "and [REDACTED]", "!"]
    assert redactor.text("key sk-proj-AbC_123-xyz9 and sk-ant-api03-zz_zzzzzz.") == (
        "key [REDACTED] and [REDACTED]."
    )
    assert Redactor(default=False).text("sk-proj-AbC_123-xyz9") == "sk-proj-AbC_123-xyz9"
    assert public_url("http://u:p@[::1]:8000/x?key=1#f") == "http://[::1]:8000/x"


def test_import_turns_a_capture_into_a_scenario(tmp_path: Path) -> None:
    capture = tmp_path / "capture.txt"
    capture.write_bytes(
        chunk("Hi") + b": keep-alive\n\n" + chunk(" you") + chunk(finish="stop") + b"data: [DONE]\n\n"
    )
    result = CliRunner().invoke(main, ["import", str(capture), "--format", "openai-chat"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# Imported by mockllm import from capture.txt (openai-chat)\n")
    (scenario,) = load_set([result.output]).scenarios
    assert (scenario.name, scenario.tokens) == ("capture", ("Hi", " you"))
    assert [(f.at, f.__class__.__name__) for f in scenario.faults] == [
        (1, "MalformedLine")
    ]  # no time to stall
    # A transcript from record --exact keeps its times: they become first_token and gaps.
    data, notes = scenario_of(
        exchange([(0.1, chunk("Hi")), (0.35, chunk(" you")), (0.4, b"data: [DONE]\n\n")], "fin"),
        "x",
        exact=True,
    )
    exact = tmp_path / "exact.yaml"
    exact.write_text(render(data, notes), encoding="utf-8")
    out = tmp_path / "structured.yaml"
    result = CliRunner().invoke(main, ["import", str(exact), "--format", "openai-chat", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (scenario,) = load_set([out]).scenarios
    assert scenario.tokens == ("Hi", " you")
    assert (scenario.timing.first_token, scenario.timing.gaps) == (0.1, (0.25, 0.05))
    result = CliRunner().invoke(main, ["import", str(out), "--format", "anthropic"])
    assert result.exit_code == 1
    assert "not one scenario with a transcript (record --exact writes those)" in result.output


@pytest.mark.parametrize("name", ["openai-chat", "anthropic", "ollama-chat"])
def test_each_format_s_stream_reads_back_into_its_scenario(name: str) -> None:
    """mockllm's own encoder writes a scenario's stream; read back, it gives the same tokens,
    tool call and times (a keep-alive stall included, in the format's own keep-alive)."""
    from mockllm.formats import FORMATS, ApiRequest, StreamContext

    fmt = FORMATS[name]
    original = scenario_from_dict(
        {
            "reply": ["Hi", " there", "!"],
            "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
            "timing": {"first_token": "50ms", "per_token": "10ms"},
            "faults": [{"at": 2, "stall": "1s", "keepalive": {"every": "300ms"}}],
        },
        name="original",
    )
    encoder = fmt.stream_encoder(original, ApiRequest("m", True, 1), StreamContext("id-1", 0, "m"))
    reads: dict[float, bytes] = {}
    for step in build_timeline(original):
        data = encoder.encode(step.event)
        if data:
            reads[round(step.deadline, 4)] = reads.get(round(step.deadline, 4), b"") + data
    recorded = exchange(sorted(reads.items()))
    recorded.path = fmt.all_routes()[0]
    recorded.response_headers = [("Content-Type", fmt.content_type), ("Transfer-Encoding", "chunked")]
    data, _ = scenario_of(recorded, "back")
    rebuilt = scenario_from_dict({k: v for k, v in data.items() if k not in ("name", "match")}, name="back")
    assert rebuilt.tokens == original.tokens
    assert [(c.name, json.loads(c.arguments)) for c in rebuilt.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    # Ollama says done_reason stop after a tool call too: the recording keeps what the wire said
    assert rebuilt.finish_reason == ("stop" if name == "ollama-chat" else "tool_calls")

    def seen(scenario: object) -> list[tuple[str, float]]:
        timeline = build_timeline(scenario)  # type: ignore[arg-type]
        kinds = ("Token", "KeepAlive")
        return [
            (type(s.event).__name__, round(s.deadline, 3))
            for s in timeline
            if type(s.event).__name__ in kinds
        ]

    if name == "ollama-chat":  # Ollama sends the call whole: its fragments' times are the call's
        assert seen(rebuilt)[:6] == seen(original)[:6]
    else:
        assert seen(rebuilt) == seen(original)


def test_a_recording_keeps_at_most_max_recorded_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    import mockllm.recording

    monkeypatch.setattr(mockllm.recording, "MAX_RECORDED", 300)
    endless = exchange([])
    for index in range(10):
        endless.keep(index * 0.01, chunk("x" * 20))  # ~130 bytes each
    assert (len(endless.reads), endless.kept) == (2, sum(len(d) for _, d in endless.reads))
    assert endless.dropped == 8 * len(chunk("x" * 20))
    data, notes = scenario_of(endless, "rec")
    assert data["incomplete"] is True
    assert (
        notes[-1]
        == f"incomplete: the body was longer than a recording keeps (300 bytes; {endless.dropped:,} more went to the client)"
    )


def har_entry(url: str, body: bytes, *, post: str = "", wait: float = 250) -> dict[str, object]:
    return {
        "startedDateTime": "2026-12-04T06:00:00.000Z",
        "request": {
            "method": "POST",
            "url": url,
            "headers": [{"name": "Authorization", "value": "Bearer sk-proj-HarSecret0123456789"}],
            "postData": {"mimeType": "application/json", "text": post},
        },
        "response": {
            "status": 200,
            "headers": [
                {"name": "Content-Type", "value": "text/event-stream"},
                {"name": "x-request-id", "value": "r1"},
            ],
            "content": {
                "mimeType": "text/event-stream",
                "text": base64.b64encode(body).decode(),
                "encoding": "base64",
            },
        },
        "timings": {"send": 1, "wait": wait, "receive": 40},
    }


def test_import_reads_a_har_entry_with_its_request(tmp_path: Path) -> None:
    prompt = json.dumps(
        {
            "model": "gpt-x",
            "stream": True,
            "messages": [{"role": "user", "content": "Hi sk-PromptSecret0123456789"}],
        }
    )
    stream = chunk("Hel") + chunk("lo") + chunk(finish="stop") + b"data: [DONE]\n\n"
    page = har_entry("https://app.example.com/index.html", b"<html>")
    har = tmp_path / "session.har"
    har.write_text(
        json.dumps(
            {
                "log": {
                    "version": "1.2",
                    "entries": [
                        page,
                        har_entry("https://api.example.com/v1/chat/completions?key=k", stream, post=prompt),
                    ],
                }
            }
        )
    )
    result = CliRunner().invoke(main, ["import", str(har)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "# Imported by mockllm import from session.har (HAR, started 2026-12-04T06:00:00.000Z)\n"
    )
    assert "Secret" not in result.output  # the Authorization header and the key in the prompt
    assert "key=k" not in result.output
    (scenario,) = load_set([result.output]).scenarios
    assert (scenario.name, scenario.tokens, scenario.first_byte) == ("session", ("Hel", "lo"), 0.25)
    assert scenario.headers == (("x-request-id", "r1"),)
    # The request's last user message is the match, redacted where it held a key.
    assert "  last_user:\n    regex: ^Hi\\ .+$\n" in result.output
    assert "HAR keeps no time per event" in result.output


def test_import_says_which_har_entries_it_could_take(tmp_path: Path) -> None:
    stream = chunk("a") + b"data: [DONE]\n\n"
    entry = har_entry("http://h/v1/chat/completions", stream, post=BODY)
    har = tmp_path / "two.har"
    har.write_text(json.dumps({"log": {"entries": [entry, entry]}}))
    result = CliRunner().invoke(main, ["import", str(har)])
    assert result.exit_code == 1
    assert result.output.endswith(
        "2 are on a route mockllm serves; pick one with --entry N:\n"
        "  1: POST /v1/chat/completions -> 200\n  2: POST /v1/chat/completions -> 200\n"
    )
    assert CliRunner().invoke(main, ["import", str(har), "--entry", "2"]).exit_code == 0
    assert "two.har has 2 entries" in CliRunner().invoke(main, ["import", str(har), "--entry", "3"]).output
    har.write_text('{"log": {}}')
    result = CliRunner().invoke(main, ["import", str(har)])
    assert (result.exit_code, result.output) == (1, f"Error: {har}: not a HAR file: no log.entries list\n")
    raw = tmp_path / "raw.txt"
    raw.write_bytes(stream)
    assert "--format is needed" in CliRunner().invoke(main, ["import", str(raw)]).output
