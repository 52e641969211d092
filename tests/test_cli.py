"""The mockllm command: validate with CliRunner, serve as a real process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from mockllm.cli import main

from .conftest import SCENARIOS


def test_validate_ok_lists_every_file() -> None:
    result = CliRunner().invoke(main, ["validate", str(SCENARIOS)])
    assert result.exit_code == 0, result.output
    assert f"{SCENARIOS}/slow.yaml: ok (slow)" in result.output
    assert len(result.output.splitlines()) == len(list(SCENARIOS.glob("*.yaml")))


def test_validate_reports_every_error_in_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("reply: x\ntiming: {per_token: 10 parsecs}\n")
    (tmp_path / "b.yaml").write_text("reply: x\nfaults: [{at: 0, disconnect: rst}]\n")
    (tmp_path / "c.yaml").write_text("reply: fine\n")
    result = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{tmp_path}/a.yaml:2:21: timing.per_token: '10 parsecs' is not a duration (e.g. 100ms, 1.5s, 2m)",
        f"{tmp_path}/b.yaml:2:30: faults[0].disconnect: 'rst' is not one of truncate, fin, reset, mid-event; did you mean 'reset'?",
    ]
    assert result.stdout == f"{tmp_path}/c.yaml: ok (c)\n"


def test_validate_needs_a_path() -> None:
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 2
    assert "Missing argument 'PATHS...'" in result.output


def test_serve_refuses_a_bad_scenario_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("reply: x\ntokens: letters\n")
    result = CliRunner().invoke(main, ["serve", "--scenario", str(bad), "--port", "0"])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: invalid scenarios:\n{bad}:2:9: tokens: 'letters' is not one of rune, word\n"
    )


def test_help_texts() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--scenario" in result.output
    assert "0 picks a free one" in result.output


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mockllm.cli", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.functional
def test_serve_port_zero_prints_url_serves_and_stops_on_sigterm() -> None:
    process = spawn("--scenario", str(SCENARIOS / "slow.yaml"), "--port", "0", "--time-scale", "0")
    try:
        assert process.stdout is not None
        url = None
        for line in process.stdout:
            match = re.match(r"Listening on (http://127\.0\.0\.1:\d+)", line)
            if match:
                url = match.group(1)
                break
        assert url is not None
        assert httpx.get(f"{url}/healthz").status_code == 200
        reply = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "slow", "messages": [{"role": "user", "content": "x"}]},
        )
        assert reply.json()["choices"][0]["message"]["content"].startswith("生成式语言模型")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert "mockllm stopped" in stderr


@pytest.mark.functional
def test_serve_reports_a_taken_port() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = spawn("--port", str(port))
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 1
    assert f"Error: Cannot listen on 127.0.0.1:{port}: Address already in use" in stderr
