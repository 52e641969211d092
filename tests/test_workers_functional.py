"""``mockllm serve --workers N``: serving from several processes, supervised."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mockllm.workers import RestartBudget, describe_exit

from . import rawhttp
from .served import Served, start

pytestmark = pytest.mark.functional


def test_two_workers_serve_concurrent_streams(served: list[Served], tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("reply: 'concurrent'\ntiming: {per_token: 30ms}\n")  # ~0.3 s each
    server = start(served, "--scenario", str(scenario), "--workers", "2", "-q")
    results: list[tuple[float, float, str | None, bytes]] = []

    def one() -> None:
        begin = time.monotonic()
        response = rawhttp.post(f"{server.url}/v1/chat/completions", rawhttp.stream_body())
        results.append((begin, time.monotonic(), response.header("x-mockllm-worker"), response.payload))

    threads = [threading.Thread(target=one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(results) == 16
    assert all(b"data: [DONE]" in payload for *_, payload in results)
    assert len({worker for _, _, worker, _ in results}) == 2
    begins, ends = [r[0] for r in results], [r[1] for r in results]
    assert max(begins) < min(ends), "the streams overlapped in time"
    code, _ = server.stop()
    assert code == 0


def eventually(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Poll another process's state until ``condition`` holds (with a generous deadline)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def answering_pids(url: str, tries: int = 40) -> set[int]:
    """The worker pids that answer /healthz over ``tries`` new connections."""
    pids = set()
    for _ in range(tries):
        with contextlib.suppress(httpx.TransportError):
            pids.add(httpx.get(f"{url}/healthz", timeout=2).json()["pid"])
    return pids


def gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for a reaper."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


def refuses(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_workers_stop_when_the_parent_is_killed(served: list[Served]) -> None:
    server = start(served, "--workers", "2", "--grace", "500ms", "-q")
    pids = answering_pids(server.url)
    assert len(pids) == 2
    try:
        server.process.kill()
        server.process.communicate(timeout=10)
        eventually(lambda: all(gone(pid) for pid in pids), "both workers exited")
        assert refuses(server.url)
    finally:
        for pid in pids:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_killed_workers_are_restarted_and_the_exit_status_says_so(served: list[Served]) -> None:
    server = start(served, "--workers", "2", "--grace", "500ms", "-q")
    first = answering_pids(server.url)
    assert len(first) == 2
    for pid in first:  # both at once: the port has no listener until the restarts bind it
        os.kill(pid, signal.SIGKILL)
    eventually(lambda: len(answering_pids(server.url, tries=10) - first) == 2, "two new workers answer")
    now = answering_pids(server.url)
    assert not now & first
    code, stderr = server.stop()
    assert code == 1
    restarts = re.findall(
        r"mockllm: worker [01] \(pid (\d+)\) was killed by SIGKILL; restarted it as pid (\d+) "
        r"\(restart [12] of at most 5 in 60s\)",
        stderr,
    )
    assert {int(killed) for killed, _ in restarts} == first
    assert {int(new) for _, new in restarts} == now
    assert "mockllm stopped; a worker crashed (see above)" in stderr


def test_the_restart_budget_allows_so_many_restarts_in_a_window() -> None:
    now = [0.0]
    budget = RestartBudget(2, 60, lambda: now[0])
    assert [budget.take(), budget.take(), budget.take()] == [1, 2, None]
    now[0] = 59.0
    assert budget.take() is None
    now[0] = 60.0  # the first two restarts have left the window
    assert [budget.take(), budget.take(), budget.take()] == [1, 2, None]


def test_exits_are_described_by_signal_name_or_status() -> None:
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(3) == "exited with status 3"
