"""Seeded chaos: the same seed draws the same faults, in two processes too; a draw replays alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mockllm.loader import load_set

from .conftest import ROOT, Serve

pytestmark = pytest.mark.functional

SOAK = {
    "name": "soak",
    "reply": "abcdefgh",
    "chaos": {
        "seed": 7,
        "rate": 0.5,
        "faults": [{"status": 503}, {"at": "random", "disconnect": "truncate", "weight": 2}],
    },
}
CHAT = {"model": "soak", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def outcomes(url: str, count: int, headers: dict[str, str] | None = None) -> list[tuple[int, str]]:
    seen = []
    for _ in range(count):
        response = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=headers or {})
        seen.append((response.status_code, response.text.count("data:")))
    return seen


def test_the_same_seed_draws_the_same_in_two_servers_and_a_draw_replays(serve: Serve) -> None:
    first, second = serve(SOAK), serve(SOAK)
    a, b = outcomes(first.url, 20), outcomes(second.url, 20)
    assert a == b
    statuses = [status for status, _ in a]
    assert 503 in statuses  # rate 0.5 over 20 draws: both happened
    assert 200 in statuses
    draws = [call.chaos for call in first.calls]
    assert [d["n"] for d in draws if d] == list(range(20))
    cut = next(i for i, d in enumerate(draws) if d and d["fault"] == 1)
    replay = outcomes(first.url, 1, {"X-Mockllm-Chaos-Draw": str(cut)})
    assert replay == [a[cut]]
    assert first.calls.last.chaos == {"n": cut, "fault": 1}


def test_the_same_draws_in_another_process(tmp_path: Path, serve: Serve) -> None:
    (tmp_path / "soak.json").write_text(json.dumps(SOAK))
    script = (
        "import httpx, sys\n"
        "from mockllm import MockLLMServer\n"
        "with MockLLMServer(sys.argv[1]) as server:\n"
        "    body = {'model': 'soak', 'messages': [{'role': 'user', 'content': 'hi'}], 'stream': True}\n"
        "    print([httpx.post(server.url + '/v1/chat/completions', json=body).status_code for _ in range(20)])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "soak.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    here = [status for status, _ in outcomes(serve(SOAK).url, 20)]
    assert done.stdout.strip() == str(here)


def test_a_bad_chaos_is_a_positioned_problem() -> None:
    text = "reply: ab\nchaos: {seed: 1, rate: 1, faults: [{at: 9, disconnect: reset}]}\n"
    (problem,) = load_set([text]).problems
    assert (
        str(problem)
        == "<string>:2:41: chaos.faults[0].at: 9 is beyond the reply: the last token is at 1; use 'end' for after it"
    )
