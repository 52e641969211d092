"""The byte-level cases of issue 20 the scenario language gained: faults after the finish and after
``[DONE]``, comment blocks and comment lines inside events, an event without its closing blank
line, and a payload over several ``data:`` lines. Literal bytes, then what the openai SDK and
httpx-sse do with each, over a socket."""

from __future__ import annotations

import json
from typing import Any

import httpx
import httpx_sse
import openai
import pytest

from mockllm import ScenarioError

from .clients import MESSAGES, Seen, openai_chat
from .conftest import Serve, make_scenario
from .test_formats import stream

HEAD = '{"id":"X1","object":"chat.completion.chunk","created":1700000000,"model":"m","system_fingerprint":null,"choices":[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}]}'
A = HEAD % ('{"role":"assistant","content":"a"}', "null")
B = HEAD % ('{"content":"b"}', "null")
STOP = HEAD % ("{}", '"stop"')
COMPACT = {"chunks": "compact"}


def chat(*faults: dict[str, Any], **wire: Any) -> bytes:
    return stream("openai-chat", reply=["a", "b"], wire=COMPACT | wire, faults=list(faults))


def test_a_disconnect_after_the_finish_comes_before_done() -> None:
    data = chat({"at": "after-finish", "disconnect": "fin"})
    assert data == f"data: {A}\n\ndata: {B}\n\ndata: {STOP}\n\n".encode()


def test_pings_after_done() -> None:
    data = chat({"at": "after-done", "comment": "ping"}, {"at": "after-done", "comment": "pong"})
    assert data == f"data: {A}\n\ndata: {B}\n\ndata: {STOP}\n\ndata: [DONE]\n\n: ping\n\n: pong\n\n".encode()


def test_a_comment_block_and_a_comment_line_inside_an_event() -> None:
    data = chat({"at": 1, "comment": "block"}, {"at": "end", "comment": "inside", "inside": True})
    assert data == f"data: {A}\n\n: block\n\ndata: {B}\n\n: inside\ndata: {STOP}\n\ndata: [DONE]\n\n".encode()


def test_an_event_without_its_closing_blank_line() -> None:
    # the finish's blank line never comes, so [DONE]'s data line joins the finish's event
    assert (
        chat({"at": "end", "unterminated": True})
        == f"data: {A}\n\ndata: {B}\n\ndata: {STOP}\ndata: [DONE]\n\n".encode()
    )
    # the last event, never dispatched
    assert chat({"at": "after-finish", "unterminated": True}).endswith(
        f"data: {STOP}\n\ndata: [DONE]\n".encode()
    )
    crlf = chat({"at": "after-finish", "unterminated": True}, line_ending="crlf")
    assert crlf.endswith(b"data: [DONE]\r\n")
    # NDJSON: the last line without its newline
    ndjson = stream("ollama-chat", reply=["a"], faults=[{"at": "end", "unterminated": True}])
    assert ndjson.endswith(b'"eval_duration":0}')


def test_a_payload_over_several_data_lines() -> None:
    data = chat(multiline_data=True)
    events = data.split(b"\n\n")
    assert events[0].startswith(b'data: {\ndata:  "id": "X1",\ndata:  "object": "chat.completion.chunk",\n')
    assert events[3] == b"data: [DONE]"  # not JSON: one line
    for event in events[:3]:
        joined = "\n".join(line.removeprefix("data: ") for line in event.decode().split("\n"))
        assert json.loads(joined) == json.loads([A, B, STOP][events.index(event)])


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        (
            {"at": "after-done", "unterminated": True},
            "unterminated needs an event to cut: after-done has none",
        ),
        (
            {"at": "after-done", "comment": "x", "inside": True},
            "after-done there is no next event to be inside",
        ),
        (
            {"at": "after-finish", "content_filter": "hate"},
            "content_filter stops the reply: it must come before the finish",
        ),
        ({"at": "after-done", "split": "utf8"}, "split needs an event to cut: after-done has none"),
        (
            {"at": "later", "comment": "x"},
            "must be a token index (0, 1, ...), 'end', 'after-finish' or 'after-done', not 'later'",
        ),
        ({"at": 0, "comment": "a\nb"}, "comment"),
    ],
)
def test_misplaced_faults_are_positioned_load_errors(fault: dict[str, Any], problem: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        make_scenario(reply=["a"], faults=[fault])
    assert problem in str(caught.value)


def test_after_finish_split_cuts_done_and_faults_keep_their_order() -> None:
    data = chat({"at": "after-finish", "split": {"byte": 3}}, {"at": "end", "comment": "last token sent"})
    assert data.endswith(f": last token sent\n\ndata: {STOP}\n\ndata: [DONE]\n\n".encode())


# -- what real clients do -----------------------------------------------------------------------------

#: fault items, wire → (what the openai SDK gathers and raises, how many events httpx-sse yields
#: (role, a, b, finish, [DONE] when all goes well), or its error)
CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any], Seen, int | type[BaseException]]] = {
    "reset-after-finish": (
        [{"at": "after-finish", "disconnect": "reset"}],
        {},
        Seen("ab", openai.APIConnectionError),
        httpx.ReadError,
    ),
    "fin-after-finish": (
        [{"at": "after-finish", "disconnect": "fin"}],
        {},
        Seen("ab", openai.APIConnectionError),
        httpx.RemoteProtocolError,
    ),
    "pings-after-done": ([{"at": "after-done", "comment": "ping"}], {}, Seen("ab"), 5),
    "comment-inside": ([{"at": 1, "comment": "x", "inside": True}], {}, Seen("ab"), 5),
    "comment-block": ([{"at": 1, "comment": "x"}], {}, Seen("ab"), 5),
    # the finish and [DONE] arrive as one event whose data is not JSON
    "unterminated-finish": ([{"at": "end", "unterminated": True}], {}, Seen("ab", json.JSONDecodeError), 4),
    # [DONE] is never dispatched: the SDK ends with the body, no error; httpx-sse drops the event
    "unterminated-done": ([{"at": "after-finish", "unterminated": True}], {}, Seen("ab"), 4),
    "multiline-data": ([], {"multiline_data": True}, Seen("ab"), 5),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_real_clients(serve: Serve, case: str) -> None:
    faults, wire, sdk, events = CASES[case]
    server = serve({"name": "edge", "reply": ["a", "b"], "faults": faults, "wire": wire})
    assert openai_chat(server.url, "edge") == sdk
    try:
        with (
            httpx.Client(timeout=2) as client,
            httpx_sse.connect_sse(
                client,
                "POST",
                f"{server.openai_base_url}/chat/completions",
                json={"model": "edge", "messages": MESSAGES, "stream": True},
            ) as source,
        ):
            seen: int | type[BaseException] = len(list(source.iter_sse()))
    except Exception as exc:
        seen = type(exc)
    assert seen == events
