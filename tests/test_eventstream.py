"""The AWS event-stream framing and Bedrock's encoders, as literal wire bytes.

Every expected message is written out here byte by byte, its two CRCs computed in the test with
``zlib.crc32`` over those bytes, and the same bytes are read back by botocore's own decoder
(``botocore.eventstream.EventStreamBuffer``), so a mistake in mockllm's framer cannot hide in
a shared helper.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from mockllm.events import Fragment, KeepAlive, Malformed, Preamble, StreamError, Token
from mockllm.eventstream import EventStreamFramer, event, with_bad_crc
from mockllm.formats import FORMATS, ApiRequest, StreamContext
from mockllm.timeline import build_timeline

from .conftest import make_scenario

CONTEXT = StreamContext(id="X1", created=1700000000, model="m")
#: The three headers of an event, in order: name length, name, type 7 (string), value length, value.
EVENT_HEADERS = (
    b"\x0b:event-type\x07\x00\x0cmessageStart"
    b"\x0d:content-type\x07\x00\x10application/json"
    b"\x0d:message-type\x07\x00\x05event"
)


def crc(data: bytes) -> bytes:
    return struct.pack("!I", zlib.crc32(data) & 0xFFFFFFFF)


def by_hand(prelude: bytes, headers: bytes, payload: bytes) -> bytes:
    message = prelude + crc(prelude) + headers + payload
    return message + crc(message)


def decoded(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(dict(m.headers), m.payload) for m in buffer]


MESSAGE_START = by_hand(b"\x00\x00\x00\x76\x00\x00\x00\x52", EVENT_HEADERS, b'{"role":"assistant"}')


def test_an_event_message_byte_by_byte() -> None:
    # total 118 = 12 (prelude) + 82 (headers: 27 + 33 + 22) + 20 (payload) + 4 (message CRC)
    assert len(MESSAGE_START) == 118
    assert event("messageStart", b'{"role":"assistant"}') == MESSAGE_START
    assert decoded(MESSAGE_START) == [
        (
            {":event-type": "messageStart", ":content-type": "application/json", ":message-type": "event"},
            b'{"role":"assistant"}',
        )
    ]


def test_an_exception_message_names_its_member_in_exception_type() -> None:
    headers = (
        b"\x0f:exception-type\x07\x00\x13throttlingException"
        b"\x0d:content-type\x07\x00\x10application/json"
        b"\x0d:message-type\x07\x00\x09exception"
    )
    payload = b'{"message":"slow down"}'
    assert len(headers) == 97  # 38 + 33 + 26
    expected = by_hand(b"\x00\x00\x00\x88\x00\x00\x00\x61", headers, payload)  # 136 = 12 + 97 + 23 + 4
    assert event("throttlingException", payload) == expected
    assert decoded(expected)[0][0][":exception-type"] == "throttlingException"


def test_bad_crc_breaks_only_the_message_crc_and_botocore_says_so() -> None:
    bad = with_bad_crc(MESSAGE_START)
    assert bad[:-4] == MESSAGE_START[:-4]
    assert bad[-4:] == struct.pack("!I", (zlib.crc32(MESSAGE_START[:-4]) & 0xFFFFFFFF) ^ 1)
    with pytest.raises(ChecksumMismatch):
        decoded(bad)


def test_the_framer_has_no_keepalive_preamble_or_ids() -> None:
    framer = EventStreamFramer()
    assert (framer.keepalive(None), framer.keepalive(": ping"), framer.preamble()) == (b"", b"", b"")
    assert framer.event_ids is False


@pytest.mark.parametrize(("cut", "at"), [("half", 59), (1, 1), (-1, 117), ("utf8", 94 + 10)])
def test_a_split_cuts_a_message_where_asked(cut: str | int, at: int) -> None:
    # utf8: after the lead byte of "é" in the payload, which starts after 12 + 82 bytes
    message = event("messageStart", '{"role":"é"}'.encode()) if cut == "utf8" else MESSAGE_START
    assert EventStreamFramer().cut(message, cut) == at


def stream(fmt_options: dict[str, Any], **scenario: Any) -> list[tuple[str, Any]]:
    built = make_scenario(**scenario)
    request = ApiRequest("m", True, 3, fmt_options)
    encoder = FORMATS["bedrock"].stream_encoder(built, request, CONTEXT)
    data = b"".join(encoder.encode(step.event) for step in build_timeline(built))
    return [(h.get(":event-type") or h[":exception-type"], json.loads(p)) for h, p in decoded(data)]


def test_converse_stream_text_then_tool_use() -> None:
    events = stream({"api": "converse"}, reply="Hi", tool_calls=[{"name": "f", "arguments": "{}"}])
    assert events == [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"delta": {"text": "H"}, "contentBlockIndex": 0}),
        ("contentBlockDelta", {"delta": {"text": "i"}, "contentBlockIndex": 0}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        (
            "contentBlockStart",
            {"start": {"toolUse": {"toolUseId": "tooluse_mockllm_0", "name": "f"}}, "contentBlockIndex": 1},
        ),
        ("contentBlockDelta", {"delta": {"toolUse": {"input": "{"}}, "contentBlockIndex": 1}),
        ("contentBlockDelta", {"delta": {"toolUse": {"input": "}"}}, "contentBlockIndex": 1}),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        ("messageStop", {"stopReason": "tool_use"}),
        (
            "metadata",
            {"usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}, "metrics": {"latencyMs": 0}},
        ),
    ]


def test_converse_latency_is_the_scenarios_timing() -> None:
    events = stream({"api": "converse"}, reply="abc", timing={"first_token": "200ms", "per_token": "50ms"})
    assert events[-1][1]["metrics"] == {"latencyMs": 300}


def test_invoke_stream_carries_the_anthropic_events_base64() -> None:
    events = stream({"api": "invoke"}, reply="H")
    chunks = [json.loads(base64.b64decode(data["bytes"])) for name, data in events if name == "chunk"]
    assert len(chunks) == len(events)
    assert [c["type"] for c in chunks] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert chunks[3]["delta"] == {"type": "text_delta", "text": "H"}
    assert chunks[-1]["amazon-bedrock-invocationMetrics"] == {
        "inputTokenCount": 3,
        "outputTokenCount": 1,
        "invocationLatency": 0,
        "firstByteLatency": 0,
    }


@pytest.mark.parametrize(
    ("type_", "member"),
    [
        (None, "modelStreamErrorException"),
        ("server_error", "modelStreamErrorException"),
        ("rate_limit_error", "throttlingException"),
        ("invalid_request_error", "validationException"),
        ("ThrottlingException", "throttlingException"),
        ("serviceUnavailableException", "serviceUnavailableException"),
    ],
)
def test_an_error_event_is_an_exception_message(type_: str | None, member: str) -> None:
    for api in ("converse", "invoke"):
        encoder = FORMATS["bedrock"].stream_encoder(
            make_scenario(), ApiRequest("m", True, 1, {"api": api}), CONTEXT
        )
        ((headers, payload),) = decoded(encoder.encode(StreamError("Boom", type_, 503)))
        assert headers[":exception-type"] == member
        assert headers[":message-type"] == "exception"
        extra = {"originalStatusCode": 503} if member == "modelStreamErrorException" else {}
        assert json.loads(payload) == {"message": "Boom", **extra}


def converse_encoder() -> Any:
    return FORMATS["bedrock"].stream_encoder(
        make_scenario(), ApiRequest("m", True, 1, {"api": "converse"}), CONTEXT
    )


def test_keepalives_and_preamble_write_nothing() -> None:
    encoder = converse_encoder()
    assert (
        encoder.encode(KeepAlive())
        == encoder.encode(KeepAlive(": ping"))
        == encoder.encode(Preamble())
        == b""
    )


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("invalid-json", b'{"delta":{"text":"x"},"contentBlockIndex":0,}'),
        ("truncated-json", b'{"delta":{"text":"x"},'),  # 22 of its 45 bytes
        ("not-json", b"hello"),
        ("bad-utf8", b'{"delta":{"text":"\xff\xfe"},"contentBlockIndex":0}'),
    ],
)
def test_malformed_payloads_come_in_well_formed_messages(kind: str, payload: bytes) -> None:
    encoder = converse_encoder()
    encoder.encode(Token(0, "a", first=True))
    data = encoder.encode(Malformed(kind, Token(1, "x")))
    assert decoded(data) == [
        (
            {
                ":event-type": "contentBlockDelta",
                ":content-type": "application/json",
                ":message-type": "event",
            },
            payload,
        )
    ]


def test_bad_crc_missing_prefix_and_raw() -> None:
    encoder = converse_encoder()
    bad = encoder.encode(Malformed("bad-crc", Token(0, "x")))  # imitates the token's delta
    assert bad[:-4] == event("contentBlockDelta", b'{"delta":{"text":"x"},"contentBlockIndex":0}')[:-4]
    assert bad[-4:] == struct.pack("!I", (zlib.crc32(bad[:-4]) & 0xFFFFFFFF) ^ 1)
    with pytest.raises(ChecksumMismatch):
        decoded(bad)
    assert (
        encoder.encode(Malformed("missing-prefix", Token(0, "x")))
        == b'{"delta":{"text":"x"},"contentBlockIndex":0}'
    )
    assert encoder.encode(Malformed("raw", Token(0, "x"), b"\x00\x01")) == b"\x00\x01"


def test_invoke_bad_utf8_is_inside_the_base64() -> None:
    encoder = FORMATS["bedrock"].stream_encoder(
        make_scenario(), ApiRequest("m", True, 1, {"api": "invoke"}), CONTEXT
    )
    ((_, payload),) = decoded(encoder.encode(Malformed("bad-utf8", Token(0, "x"))))
    inner = base64.b64decode(json.loads(payload)["bytes"])
    assert b'"text":"\xff\xfe"' in inner


@pytest.mark.parametrize("text", ["é", "e"])
def test_a_fragment_pair_is_the_whole_message(text: str) -> None:
    # the first token's event is two messages, messageStart and the delta: the cut is in the
    # delta's payload, after "é"'s lead byte, or in the middle of that payload
    encoder = converse_encoder()
    token = Token(0, text, first=True)
    head = encoder.encode(Fragment(token, "head", "utf8"))
    tail = encoder.encode(Fragment(token, "tail", "utf8"))
    delta = b'{"delta":{"text":"%b"},"contentBlockIndex":0}' % text.encode()
    at = len(head) - (len(MESSAGE_START) + 12 + 87)  # 87: the headers of a contentBlockDelta
    assert 0 < at < len(delta)
    assert delta[:at] == head[-at:]
    assert at == (delta.index(b"\xc3") + 1 if text == "é" else len(delta) // 2)
    assert [json.loads(p) for _, p in decoded(head + tail)][-1] == {
        "delta": {"text": text},
        "contentBlockIndex": 0,
    }
