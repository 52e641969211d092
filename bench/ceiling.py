"""The ceiling: the least a Python server must do to serve the same schedule.

A bare ``asyncio.Protocol`` that reads the ``model`` of a chat-completions request and answers with
pre-encoded OpenAI chunks of the same size as mockllm's, on the same schedule:

- ``zero``: every token at once, in one write (the bulk-write ceiling);
- ``paced``: token k at ``(k + 1) * delay`` after the request, one write per token, on absolute
  deadlines from a shared 1 ms ticker (one ``loop.call_at`` per millisecond, as mockllm's clock);
- ``idle``: a few tokens at once, for time to first byte;
- ``stall``: headers, then nothing until the client leaves.

Every mockllm figure in the report is a ratio to this server measured in the same run. Run it with
``python -m bench.ceiling --port 0 --tokens-zero N --tokens-paced N --delay S``; it prints its port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import socket

HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Connection: close\r\n\r\n"
)
DONE = b"data: [DONE]\n\n"


def chunk(text: str) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "bench",
        "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}],
    }
    return b"data: " + json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


class Paced:
    """Token k of a stream at ``start + (k + 1) * delay``, on absolute deadlines, a callback rather
    than a coroutine. Streams whose next tokens fall due in the same millisecond share one
    ``loop.call_at`` (as mockllm's clock does): a timer per token per stream puts 100,000 timers a
    second on asyncio's heap at 1,000 streams, and the pace drifted by 18-78 % there (by 120-220 %
    at 10,000). A tick that runs late writes every token due by then in one write."""

    RESOLUTION = 0.001

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float, frame: bytes, tokens: int) -> None:
        self.loop = loop
        self.delay = delay
        self.frame = frame
        self.tokens = tokens
        self.due: dict[int, list[tuple[asyncio.Transport, float, int]]] = {}

    def add(self, transport: asyncio.Transport) -> None:
        start = self.loop.time()
        self._at(start + self.delay, transport, start, 0)

    def _at(self, deadline: float, transport: asyncio.Transport, start: float, sent: int) -> None:
        tick = math.ceil(deadline / self.RESOLUTION)
        streams = self.due.get(tick)
        if streams is None:
            streams = self.due[tick] = []
            self.loop.call_at(tick * self.RESOLUTION, self._tick, tick)
        streams.append((transport, start, sent))

    def _tick(self, tick: int) -> None:
        now = self.loop.time()
        for transport, start, sent in self.due.pop(tick, ()):
            if transport.is_closing():
                continue
            # Token k is due at (k + 1) * delay: all those due by now go out together.
            due = min(self.tokens, max(sent + 1, int((now - start) / self.delay + 1e-9)))
            if due == self.tokens:
                transport.write(self.frame * (due - sent) + DONE)
                transport.close()
                continue
            transport.write(self.frame * (due - sent))
            self._at(start + (due + 1) * self.delay, transport, start, due)


class Server(asyncio.Protocol):
    def __init__(self, config: Config) -> None:
        self.config = config
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = 0
        for line in self.buffer[:end].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = self.buffer[end + 4 : end + 4 + length]
        if len(body) < length:
            return
        assert self.transport is not None
        model = json.loads(body)["model"]
        self.config.answer(model, self.transport)


class Config:
    def __init__(self, loop: asyncio.AbstractEventLoop, args: argparse.Namespace) -> None:
        frame = chunk("字")
        self.zero = HEAD + frame * args.tokens_zero + DONE
        self.idle = HEAD + frame * 5 + DONE
        self.paced = Paced(loop, args.delay, frame, args.tokens_paced)

    def answer(self, model: str, transport: asyncio.Transport) -> None:
        if model == "paced":
            transport.write(HEAD)
            self.paced.add(transport)
        elif model == "stall":
            transport.write(HEAD)
        else:
            transport.write(self.zero if model == "zero" else self.idle)
            transport.close()


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    config = Config(loop, args)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    # create_server listens again with its own backlog (100 by default): a burst of 1,000 connects
    # would overflow it and wait out SYN retransmits (1 s).
    server = await loop.create_server(lambda: Server(config), sock=sock, backlog=4096)
    print(sock.getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tokens-zero", type=int, default=10_000)
    parser.add_argument("--tokens-paced", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.01)
    args = parser.parse_args()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
