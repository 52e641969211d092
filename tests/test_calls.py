"""The call log: entries, the JSON API, and the client-behaviour checks with their messages."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from mockllm.calls import Call, CallLog

from . import rawhttp
from .conftest import Serve, make_scenario

MESSAGES = [{"role": "user", "content": "hello there"}]


def call(**fields: object) -> Call:
    defaults: dict[str, object] = {
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": {},
        "started": 0.0,
        "scenario": "s",
    }
    result = Call(**{**defaults, **fields})  # type: ignore[arg-type]
    result.finish(float(fields.get("ended", result.started + 0.1)))  # type: ignore[arg-type]
    return result


@pytest.mark.functional
def test_each_request_is_logged_with_what_it_sent_and_got(serve: Serve) -> None:
    server = serve(make_scenario("first", reply="abc"), make_scenario("second", reply="xy"))
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="second", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    )
    assert text == "xy"
    client.chat.completions.create(
        model="zzz",
        messages=MESSAGES,
        extra_headers={"X-Mockllm-Scenario": "first"},  # type: ignore[arg-type]
    )
    calls = server.calls.wait()
    assert calls.call_count == 2
    first, last = calls
    assert last is calls.last
    assert (first.method, first.path, first.format) == ("POST", "/v1/chat/completions", "openai-chat")
    assert first.json["messages"] == MESSAGES
    assert first.json["stream"] is True
    assert json.loads(first.body or b"") == first.json  # the bytes the SDK sent; json is their value
    assert first.headers["Authorization"] == "Bearer sk-test"
    assert (first.scenario, first.reason, first.stream) == ("second", "model", True)
    assert (first.status, first.outcome, first.tokens_sent) == (200, "completed", 2)
    assert first.started <= first.first_byte <= first.last_byte <= first.ended  # type: ignore[operator]
    assert first.response_headers["Content-Type"] == "text/event-stream"
    assert (last.scenario, last.reason, last.stream, last.outcome) == ("first", "header", False, "completed")
    assert last.tokens_sent == 3


@pytest.mark.functional
def test_outcomes_of_faults_bad_requests_and_hangups(serve: Serve) -> None:
    server = serve(
        make_scenario("reset", reply="abcdef", faults=[{"at": 2, "disconnect": "reset"}]),
        make_scenario("limited", status=429, headers={"Retry-After": "2"}),
        make_scenario("hang", reply="ab", faults=[{"at": 1, "stall": "forever"}]),
    )
    url = f"{server.openai_base_url}/chat/completions"
    rawhttp.post(url, rawhttp.stream_body("reset"))
    httpx.post(url, json=rawhttp.stream_body("limited"))
    httpx.post(url, content=b"{broken")
    rawhttp.post(url, rawhttp.stream_body("hang"), read_for=0.3)
    calls = server.calls.wait()
    assert [(c.scenario, c.status, c.outcome, c.tokens_sent) for c in calls] == [
        ("reset", 200, "fault:reset", 2),
        ("limited", 429, "fault:status", 0),
        (None, 400, "rejected", 0),
        ("hang", 200, "client-disconnected", 1),
    ]
    assert calls[1].retry_after == 2.0
    abort = calls[3].client_abort_after
    assert abort is not None
    assert 0.2 <= abort <= 2


@pytest.mark.functional
def test_calls_json_api_and_delete(serve: Serve) -> None:
    server = serve({"reply": "ok"})
    httpx.post(f"{server.openai_base_url}/chat/completions", json=rawhttp.stream_body())
    httpx.get(f"{server.url}/healthz")  # not a call to the mocked API: not logged
    listed = httpx.get(f"{server.url}/_mockllm/calls").json()["calls"]
    assert len(listed) == 1
    entry = listed[0]
    assert {
        k: entry[k] for k in ("method", "path", "scenario", "reason", "status", "outcome", "tokens_sent")
    } == {
        "method": "POST",
        "path": "/v1/chat/completions",
        "scenario": "test",
        "reason": "default",
        "status": 200,
        "outcome": "completed",
        "tokens_sent": 2,
    }
    assert entry["json"]["model"] == "m"
    assert entry["started"] >= 0
    assert entry["ended"] >= entry["last_byte"] >= entry["first_byte"]
    assert httpx.delete(f"{server.url}/_mockllm/calls").json() == {"cleared": 1}
    assert httpx.get(f"{server.url}/_mockllm/calls").json() == {"calls": [], "dropped": 0, "limit": 10_000}


@pytest.mark.functional
def test_unknown_paths_are_logged_too(serve: Serve) -> None:
    server = serve()
    httpx.post(f"{server.url}/v1/chat/completion", json={})  # a typo in the client's URL
    assert [(c.path, c.status) for c in server.calls.wait()] == [("/v1/chat/completion", 404)]


def test_retry_after_honoured_and_violated() -> None:
    told = call(
        status=429, outcome="fault:status", response_headers={"retry-after": "1"}, started=0.0, ended=0.1
    )
    log = CallLog([told, call(started=1.2)])
    log.assert_retry_after_honoured()
    log.assert_retried()
    hasty = CallLog([told, call(started=0.12)])
    with pytest.raises(AssertionError) as caught:
        hasty.assert_retry_after_honoured()
    assert str(caught.value) == "call 2 retried after 0.02 s but call 1 said Retry-After: 1"


def test_assert_retried_tells_the_story() -> None:
    log = CallLog([call(outcome="fault:reset", status=200)])
    with pytest.raises(AssertionError) as caught:
        log.assert_retried()
    assert str(caught.value) == (
        "call 1 (POST /v1/chat/completions, scenario 's') ended with fault:reset and the client never retried"
    )
    with pytest.raises(AssertionError, match=r"ended with HTTP 503 and the client never retried"):
        CallLog([call(outcome="fault:status", status=503)]).assert_retried()


def test_truncation_accepted_or_not() -> None:
    truncated = call(outcome="fault:truncate", status=200, tokens_sent=10)
    CallLog([truncated, call(status=200, outcome="completed")]).assert_no_truncation_accepted()
    with pytest.raises(AssertionError) as caught:
        CallLog([truncated]).assert_no_truncation_accepted()
    assert str(caught.value) == (
        "call 1 (POST /v1/chat/completions, scenario 's') was truncated after 10 tokens, with no "
        "finish_reason and no [DONE], and the client did not retry: it accepted a partial answer as complete"
    )


def test_client_abort_timing() -> None:
    prompt = CallLog([call(outcome="client-disconnected", last_byte=1.0, ended=1.5)])
    prompt.assert_client_aborted(within=1.0)
    with pytest.raises(AssertionError) as caught:
        prompt.assert_client_aborted(within=0.2)
    assert (
        str(caught.value) == "the client of call 1 hung up 0.50 s after the last byte; expected within 0.2 s"
    )
    with pytest.raises(AssertionError, match=r"did not hang up: the call ended with completed"):
        CallLog([call(outcome="completed")]).assert_client_aborted(within=1)


def test_empty_log() -> None:
    log = CallLog()
    assert (log.call_count, log.called, list(log)) == (0, False, [])
    with pytest.raises(AssertionError, match="no calls were made"):
        log.last  # noqa: B018


def test_wait_times_out_on_a_running_call() -> None:
    running = Call(method="POST", path="/x", headers={}, started=time.monotonic())
    with pytest.raises(TimeoutError, match=r"still running after 0\.01 s"):
        running.wait(0.01)
