"""The aiohttp floor: a bare aiohttp application that answers a chat-completions request with the
ceiling's five frames, so the bench can show what aiohttp itself costs per request, below
anything mockllm does (aiohttp is a fixed choice).

One route, no middleware, no access log; the body is read as JSON as every real handler must.
``python -m bench.floor [--port P]`` prints its port.
"""

from __future__ import annotations

import argparse
import asyncio
import socket

from aiohttp import web

from .ceiling import DONE, chunk

BODY = chunk("字") * 5 + DONE


async def answer(request: web.Request) -> web.StreamResponse:
    await request.json()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    await response.write_eof(BODY)
    return response


async def serve(port: int) -> None:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    site = web.SockSite(runner, sock, backlog=4096)
    await site.start()
    print(sock.getsockname()[1], flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
