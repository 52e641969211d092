"""The verdict: the client checks over a whole run, from calls made by hand and from
``mockllm exec --verdict`` running good and bad clients (JUnit read back by junitparser)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import junitparser
import pytest

from mockllm.calls import Call
from mockllm.verdict import CHECKS, parse_checks, verdict

from .conftest import ROOT, Serve


def call(scenario: str = "s", *, started: float, ended: float, **fields: Any) -> Call:
    made = Call(
        method=fields.pop("method", "POST"),
        path=fields.pop("path", "/v1/chat/completions"),
        headers=fields.pop("headers", {}),
        started=started,
        scenario=scenario,
        **fields,
    )
    made.ended = ended
    return made


def stories(calls: list[Call], *checks: str, abort_within: float = 30.0) -> list[str]:
    return [f.story for f in verdict(calls, checks or tuple(CHECKS), abort_within).findings]


def test_retry_wants_one_retry_of_a_retryable_failure_not_endless_ones() -> None:
    gave_up_at_once = [call(started=0, ended=0.1, status=503, outcome="fault:status")]
    assert stories(gave_up_at_once, "retry") == [
        "call 1 (POST /v1/chat/completions, scenario 's') ended with HTTP 503 and the client never retried"
    ]
    retried_then_gave_up = [
        call(started=0, ended=0.1, status=429, outcome="fault:status"),
        call(started=1, ended=1.1, status=429, outcome="fault:status"),
    ]
    assert stories(retried_then_gave_up, "retry") == []
    not_retryable = [call(started=0, ended=0.1, status=400, outcome="fault:status")]
    assert stories(not_retryable, "retry") == []
    cut_stream = [call(started=0, ended=0.5, status=200, outcome="fault:disconnect-reset", tokens_sent=5)]
    assert len(stories(cut_stream, "retry")) == 1


def test_retry_after_truncation_abort_and_last_event_id_tell_their_story() -> None:
    too_soon = [
        call(started=0, ended=0.1, status=429, outcome="fault:status", response_headers={"Retry-After": "1"}),
        call(started=0.3, ended=0.4, status=200, outcome="completed"),
    ]
    assert stories(too_soon, "retry-after") == ["call 2 retried after 0.20 s but call 1 said Retry-After: 1"]
    truncated = [call(started=0, ended=0.1, status=200, outcome="fault:truncate", tokens_sent=4)]
    assert stories(truncated, "truncation") == [
        "call 1 (POST /v1/chat/completions, scenario 's') was truncated after 4 tokens, with no "
        "finish_reason and no [DONE], and the client did not retry: it accepted a partial answer as complete"
    ]
    hung = [call(started=0, ended=45.0, status=200, outcome="client-disconnected", last_byte=0.01)]
    assert stories(hung, "abort") == [
        "the client of call 1 hung up 44.99 s after the last byte; expected within 30 s"
    ]
    assert stories(hung, "abort", abort_within=60) == []
    stream = {"method": "GET", "path": "/v1/stream"}
    fresh_start = [
        call(started=0, ended=0.2, status=200, outcome="fault:disconnect-fin", tokens_sent=3, **stream),
        call(started=1, ended=1.2, status=200, outcome="completed", **stream),
    ]
    assert stories(fresh_start, "last-event-id") == [
        "call 2 (GET /v1/stream, scenario 's') reconnected without Last-Event-ID after call 1 ended with "
        "fault:disconnect-fin after 3 tokens: the stream started again from the first token"
    ]
    resumed = [
        fresh_start[0],
        call(started=1, ended=1.2, status=200, outcome="completed", headers={"Last-Event-ID": "4"}, **stream),
    ]
    assert stories(resumed, "last-event-id") == []


def test_cases_are_checks_times_scenarios_and_render_as_json_and_junit(tmp_path: Path) -> None:
    calls = [
        call("a", started=0, ended=0.1, status=503, outcome="fault:status"),
        call("b", started=0, ended=0.1, status=200, outcome="completed"),
    ]
    result = verdict(calls, ("retry", "abort"))
    assert [(s, c, bool(f)) for _, s, c, f in result.cases()] == [
        ("a", "retry", True),
        ("a", "abort", False),
        ("b", "retry", False),
        ("b", "abort", False),
    ]
    assert result.summary() == "mockllm verdict: 2 calls, 4 checks (2 scenarios × retry, abort): 1 failed"
    assert json.loads(result.to_json())["cases"][0] == {
        "scenario": "a",
        "check": "retry",
        "passed": False,
        "failures": [
            "call 1 (POST /v1/chat/completions, scenario 'a') ended with HTTP 503 and the client never retried"
        ],
    }
    (tmp_path / "j.xml").write_text(result.to_junit(), encoding="utf-8")
    xml = junitparser.JUnitXml.fromfile(str(tmp_path / "j.xml"))
    (suite,) = list(xml)
    assert (suite.tests, suite.failures) == (4, 1)
    failed = [case for case in suite if not case.is_passed]
    assert [(case.classname, case.name) for case in failed] == [("mockllm.a", "retry")]


def test_unknown_checks_are_named() -> None:
    assert parse_checks("") == tuple(CHECKS)
    assert parse_checks("abort, retry") == ("abort", "retry")
    with pytest.raises(ValueError, match="unknown check\\(s\\) retries: the checks are retry, retry-after"):
        parse_checks("retries")


# -- exec --verdict, with real clients ------------------------------------------------------------

IMPATIENT = """
import os, httpx
url = os.environ["OPENAI_BASE_URL"] + "/chat/completions"
body = {"model": "limited", "messages": [{"role": "user", "content": "hi"}]}
while httpx.post(url, json=body).status_code == 429:
    pass  # retries at once, whatever Retry-After said
"""
CREDULOUS = """
import os, httpx
url = os.environ["OPENAI_BASE_URL"] + "/chat/completions"
body = {"model": "cut", "messages": [{"role": "user", "content": "hi"}], "stream": True}
with httpx.stream("POST", url, json=body) as response:
    print(sum(1 for line in response.iter_lines() if line.startswith("data:")))  # and takes it
"""
PATIENT = """
import openai
client = openai.OpenAI(max_retries=3)
for model in ("limited", "cut"):
    for attempt in range(2):
        try:
            stream = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            if text == "the whole answer":
                break
        except openai.APIError:
            pass
"""
SCENARIOS = """
- name: limited
  reply: the whole answer
  sequence: [{status: 429, headers: {Retry-After: "0.3"}}, {}]
- name: cut
  reply: the whole answer
  sequence: [{faults: [{at: 4, disconnect: truncate}]}, {}]
"""


def exec_verdict(tmp_path: Path, client: str, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "s.yaml").write_text(SCENARIOS, encoding="utf-8")
    (tmp_path / "client.py").write_text(textwrap.dedent(client), encoding="utf-8")
    argv = [
        sys.executable,
        "-m",
        "mockllm.cli",
        "exec",
        "--scenario",
        str(tmp_path / "s.yaml"),
        "-q",
        "--verdict",
        *extra,
        "--report",
        str(tmp_path / "v.xml"),
        "--report",
        str(tmp_path / "v.json"),
        "--",
        sys.executable,
        str(tmp_path / "client.py"),
    ]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.functional
def test_exec_verdict_fails_a_client_that_ignores_retry_after(tmp_path: Path) -> None:
    done = exec_verdict(tmp_path, IMPATIENT)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    # at once, however busy the machine: sooner than 0.3 s is all the check is about
    story = r"mockllm verdict: retry-after \(limited\): call 2 retried after 0\.[0-2]\d s but call 1 said Retry-After: 0\.3"
    assert re.fullmatch(story, lines[0]), lines[0]
    assert (
        lines[-1]
        == "mockllm verdict: 2 calls, 5 checks (1 scenarios × retry, retry-after, truncation, abort, last-event-id): 1 failed"
    )
    report = json.loads((tmp_path / "v.json").read_text())
    assert [case["check"] for case in report["cases"] if not case["passed"]] == ["retry-after"]
    (suite,) = list(junitparser.JUnitXml.fromfile(str(tmp_path / "v.xml")))
    assert (suite.tests, suite.failures) == (5, 1)


@pytest.mark.functional
def test_exec_verdict_fails_a_client_that_accepts_a_truncated_stream(tmp_path: Path) -> None:
    done = exec_verdict(tmp_path, CREDULOUS, "truncation,retry")
    assert done.returncode == 1, done.stderr
    assert done.stdout.strip() == "5"  # the role chunk and four tokens, taken as the answer
    assert (
        "mockllm verdict: truncation (cut): call 1 (POST /v1/chat/completions, scenario 'cut') was truncated"
        in done.stderr
    )
    assert done.stderr.splitlines()[-1].endswith("(1 scenarios × truncation, retry): 2 failed")


@pytest.mark.functional
def test_exec_verdict_passes_a_careful_client_and_the_commands_failure_wins(tmp_path: Path) -> None:
    done = exec_verdict(tmp_path, PATIENT)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1].endswith("all passed")
    assert junitparser.JUnitXml.fromfile(str(tmp_path / "v.xml")) is not None
    failing = exec_verdict(tmp_path, PATIENT + "\nraise SystemExit(3)\n")
    assert failing.returncode == 3


@pytest.mark.functional
def test_the_verdict_is_served_live(serve: Serve) -> None:
    server = serve({"name": "s", "reply": "ok", "status": 503})
    httpx.post(
        f"{server.openai_base_url}/chat/completions",
        json={"model": "s", "messages": [{"role": "user", "content": "x"}]},
    )
    live = httpx.get(f"{server.url}/_mockllm/verdict", params={"checks": "retry"}).json()
    assert live["passed"] is False
    assert live["cases"] == [
        {
            "scenario": "s",
            "check": "retry",
            "passed": False,
            "failures": [
                "call 1 (POST /v1/chat/completions, scenario 's') ended with HTTP 503 and the client never retried"
            ],
        }
    ]
    junit = httpx.get(f"{server.url}/_mockllm/verdict", params={"format": "junit"})
    assert junit.headers["content-type"].startswith("application/xml")
    assert '<testsuite name="mockllm verdict" tests="5" failures="1"' in junit.text
    bad = httpx.get(f"{server.url}/_mockllm/verdict", params={"checks": "nope"})
    assert bad.status_code == 400


def test_each_test_scope_is_judged_on_its_own() -> None:
    """Two tests on one server (X-Mockllm-Test): one retried its 503, the other did not; the
    first test's retry does not count for the second."""
    calls = [
        call(started=0, ended=0.1, status=503, outcome="fault:status", test="t1"),
        call(started=0.2, ended=0.3, status=503, outcome="fault:status", test="t2"),
        call(started=0.4, ended=0.5, status=200, outcome="completed", test="t1"),
    ]
    result = verdict(calls, ("retry",))
    assert [(t, s, bool(f)) for t, s, _, f in result.cases()] == [("t1", "s", False), ("t2", "s", True)]
    assert result.to_dict()["cases"][1]["test"] == "t2"
    assert 'classname="mockllm.t2.s"' in result.to_junit()
