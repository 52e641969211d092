"""Bedrock's faults at the socket: the event-stream bytes as they arrive, chunk by chunk (one chunk
is one write), and how the connection ends."""

from __future__ import annotations

import struct
import zlib

from botocore.eventstream import EventStreamBuffer

from . import rawhttp
from .conftest import Serve

HI = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}


def converse(serve: Serve, scenario: dict[str, object]) -> rawhttp.RawResponse:
    server = serve(scenario)
    return rawhttp.post(f"{server.url}/model/m/converse-stream", HI)


def messages(data: bytes) -> tuple[list[bytes], bytes]:
    """The whole messages at the start of ``data`` (by their total length), and what is left."""
    out = []
    while len(data) >= 4:
        (total,) = struct.unpack("!I", data[:4])
        if len(data) < total:
            break
        out.append(data[:total])
        data = data[total:]
    return out, data


def test_mid_event_sends_half_a_message_then_fin(serve: Serve) -> None:
    response = converse(serve, {"reply": "abcdef", "faults": [{"at": 3, "disconnect": "mid-event"}]})
    assert response.header("content-type") == "application/vnd.amazon.eventstream"
    assert response.ending == "fin"
    _, terminated = response.chunks()
    assert not terminated
    whole, rest = messages(response.payload)
    assert len(whole) == 4  # messageStart and the deltas of a, b, c
    complete, _ = messages(converse(serve, {"reply": "abcdef"}).payload)
    assert rest == complete[4][: len(complete[4]) // 2]


def test_split_writes_one_message_in_two_chunks_cut_inside_its_payload(serve: Serve) -> None:
    scenario = {"reply": "a日b", "timing": {"per_token": "50ms"}, "faults": [{"at": 1, "split": "utf8"}]}
    chunks, terminated = converse(serve, scenario).chunks()
    assert terminated
    head = next(c for c in chunks if c.endswith(b"\xe6"))  # 日 is E6 97 A5
    tail = chunks[chunks.index(head) + 1]
    assert tail.startswith(b"\x97\xa5")
    buffer = EventStreamBuffer()
    buffer.add_data(b"".join(chunks))
    assert b'"text":"\xe6\x97\xa5"' in [m.payload for m in buffer][2]


def test_bad_crc_is_the_wrong_crc_at_the_socket(serve: Serve) -> None:
    response = converse(
        serve, {"reply": "abc", "faults": [{"at": 1, "malformed": "bad-crc", "replace": True}]}
    )
    whole, rest = messages(response.payload)
    assert rest == b""
    crcs_ok = [struct.unpack("!I", m[-4:])[0] == zlib.crc32(m[:-4]) & 0xFFFFFFFF for m in whole]
    assert crcs_ok == [
        True,
        True,
        False,
        True,
        True,
        True,
        True,
    ]  # messageStart, a, the bad b, c, contentBlockStop, messageStop, metadata
