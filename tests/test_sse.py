"""SSE framing and the generic events, as literal bytes."""

from __future__ import annotations

from mockllm.encoder import cut_point
from mockllm.events import Fragment, KeepAlive, Malformed, Preamble, Token
from mockllm.formats import ApiRequest, StreamContext
from mockllm.formats.openai_chat import OpenAIChatEncoder
from mockllm.scenario import Wire
from mockllm.sse import SSEFramer

from .conftest import make_scenario

CONTEXT = StreamContext(id="chatcmpl-1", created=1700000000, model="m")
REQUEST = ApiRequest(model="m", stream=True, prompt_tokens=3)


def encoder(**wire: object) -> OpenAIChatEncoder:
    return OpenAIChatEncoder(make_scenario(reply="ab", wire=wire), REQUEST, CONTEXT)


def test_event_framing_with_every_line_ending() -> None:
    assert SSEFramer(Wire()).event(b"x") == b"data: x\n\n"
    assert (
        SSEFramer(Wire(line_ending="crlf")).event(b"x", name="e", id=3)
        == b"event: e\r\nid: 3\r\ndata: x\r\n\r\n"
    )
    assert SSEFramer(Wire(line_ending="cr", no_space=True)).event(b"x") == b"data:x\r\r"


def test_preamble() -> None:
    assert SSEFramer(Wire()).preamble() == b""
    assert SSEFramer(Wire(bom=True, comment_first=" proxy", retry=3000)).preamble() == (
        b"\xef\xbb\xbf: proxy\nretry: 3000\n"
    )


def test_keepalive_forms() -> None:
    assert SSEFramer(Wire()).keepalive(None) == b": ping\n\n"
    framer = SSEFramer(Wire(line_ending="crlf"))
    assert framer.keepalive(": ping") == b": ping\r\n\r\n"
    assert framer.keepalive("") == b"\r\n"
    assert framer.keepalive("data: ") == b"data: \r\n\r\n"


def test_encoder_generic_events() -> None:
    enc = encoder(bom=True)
    assert enc.encode(Preamble()) == b"\xef\xbb\xbf"
    assert enc.encode(KeepAlive(":")) == b":\n\n"
    assert enc.encode(Malformed("raw", Token(0, "a"), b"\x00\xff")) == b"\x00\xff"
    assert enc.encode(Malformed("not-json", Token(0, "a"))) == b"data: hello\n\n"


def test_event_ids_count_framed_events_once_per_fragmented_event() -> None:
    enc = encoder(event_ids=True)
    first = enc.encode(Token(0, "a", first=True))
    assert first.startswith(b"id: 1\ndata: ")  # the role chunk
    assert b"\n\nid: 2\ndata: " in first  # the first text
    token = Token(1, "日")
    head = enc.encode(Fragment(token, "head", "utf8"))
    tail = enc.encode(Fragment(token, "tail", "utf8"))
    assert head.startswith(b"id: 3\n")
    assert head.endswith(b"\xe6")
    assert tail.startswith(b"\x97\xa5")
    assert enc.encode(Token(2, "c")).startswith(b"id: 4\n")


def test_cut_points() -> None:
    assert cut_point(b"ab\xe6\x97\xa5cd", "utf8") == 3
    assert cut_point(b"abcd", "half") == 2
    assert cut_point(b"abcd", "utf8") == 2  # nothing to cut: the middle
    assert cut_point(b"a", "half") == 1
