"""The record proxy writes its files off the loop: a slow save never holds up other streams.

Turning an exchange into a checked scenario file takes milliseconds of schema and builder work;
done on the loop, 100 streams ending together held every other stream's chunks up (the last
tokens 1.8 s late in ``python -m bench.proxy``). Here one save is made to take 0.6 s while another
stream is playing through the proxy at 20 ms a token."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from mockllm.app import create_app
from mockllm.record import Proxy, Recorder, record_app
from mockllm.recording import Exchange

from .conftest import make_scenario

pytestmark = pytest.mark.functional

SLOW_SAVE = 0.6


async def test_a_slow_save_does_not_hold_up_a_stream_still_playing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save = Recorder.save

    def slow(self: Recorder, exchange: Exchange) -> Path | None:
        time.sleep(SLOW_SAVE)  # as a big exchange's schema check would, but releasing the GIL
        return save(self, exchange)

    monkeypatch.setattr(Recorder, "save", slow)
    scenarios = [
        make_scenario("long", reply="ab" * 20, timing={"first_token": "20ms", "per_token": "20ms"}),
        make_scenario("short", reply="x"),
    ]
    async with TestServer(create_app(scenarios), host="127.0.0.1") as upstream:
        proxy = Proxy(str(upstream.make_url("")).rstrip("/"), Recorder(tmp_path / "out"))
        async with (
            TestServer(record_app(proxy), host="127.0.0.1") as server,
            aiohttp.ClientSession() as client,
        ):
            url = server.make_url("/v1/chat/completions")

            def ask(model: str) -> dict[str, object]:
                return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}

            arrivals: list[float] = []
            async with client.post(url, json=ask("long")) as long:
                first = await long.content.readline()
                assert first.startswith(b"data: ")
                async with client.post(url, json=ask("short")) as short:  # ends now: its save starts
                    assert b"[DONE]" in await short.read()
                async for _ in long.content.iter_any():
                    arrivals.append(time.perf_counter())
            await proxy.close()  # waits for the files
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) > 10
    assert max(gaps) < SLOW_SAVE / 2, gaps  # on the loop, one gap was the whole save
    assert len(list((tmp_path / "out").glob("*.yaml"))) == 2
