"""The mockllm command: validate with CliRunner, serve as a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from mockllm.cli import main

from .conftest import SCENARIOS
from .hostile import laughs


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


# -- validate = serve ------------------------------------------------------------------------------


def test_validate_refuses_a_directory_without_scenarios_as_serve_does(tmp_path: Path) -> None:
    validated = CliRunner().invoke(main, ["validate", str(tmp_path)])
    served = CliRunner().invoke(main, ["serve", "--scenario", str(tmp_path), "--port", "0"])
    message = f"{tmp_path}: no *.yaml or *.yml files in this directory"
    assert (validated.exit_code, validated.stdout, validated.stderr) == (1, "", message + "\n")
    assert (served.exit_code, served.output) == (1, f"Error: invalid scenarios:\n{message}\n")


def test_a_file_with_a_duplicate_name_is_not_ok(tmp_path: Path) -> None:
    (tmp_path / "two.yaml").write_text("- {name: a, reply: x}\n- {name: a, reply: y}\n")
    (tmp_path / "fine.yaml").write_text("reply: z\n")
    result = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout == f"{tmp_path}/fine.yaml: ok (fine)\n"
    assert (
        result.stderr
        == f"{tmp_path}/two.yaml:2:1: name: duplicate scenario name 'a' (first in {tmp_path}/two.yaml:1)\n"
    )


def test_validate_names_where_a_relative_path_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "scenarios/slw.yaml"])
    assert result.exit_code == 1
    assert result.stderr == f"scenarios/slw.yaml: no such file or directory (relative to {tmp_path})\n"


def test_validate_prints_a_hostile_file_s_problem_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(laughs(9))
    (tmp_path / "name.yaml").write_text('name: "\\ud800"\nreply: hi\n')
    result = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{tmp_path}/bomb.yaml:5:25: more than 10,000 YAML nodes (aliases expanded): mockllm reads no more",
        f"{tmp_path}/name.yaml:1:7: name: contains a lone surrogate (U+D800): not Unicode text, so it cannot be sent",
    ]


AGENT_DIR = str(SCENARIOS / "agent")


def explain(tmp_path: Path, body: object, *args: str) -> Any:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(body), encoding="utf-8")
    return CliRunner().invoke(main, ["explain", "--scenario", AGENT_DIR, *args, str(request)])


def test_explain_prints_each_verdict_and_the_choice(tmp_path: Path) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
    result = explain(tmp_path, body)
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "  ask-weather: last_user does not contain 'weather' (it was 'hello')",
        "  answer-weather: tool_result: the last message is not a tool result (it is a user message)",
        "fallback answers (default)",
    ]
    anthropic = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "The WEATHER?"}]}
    result = explain(tmp_path, anthropic, "--path", "/v1/messages")
    assert result.output.splitlines()[0] == "  ask-weather: last_user, tool_result held"
    assert result.output.splitlines()[-1] == "ask-weather answers (match)"
    result = explain(tmp_path, body, "--header", "X-Mockllm-Scenario: answer-weather")
    assert result.output.splitlines()[-1] == "answer-weather answers (header)"


def test_explain_exits_1_when_none_answers_and_refuses_bad_input(tmp_path: Path) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
    result = explain(tmp_path, body, "--strict")
    assert result.exit_code == 1
    assert (
        result.output.splitlines()[1]
        == "  ask-weather: last_user does not contain 'weather' (it was 'hello')"
    )
    result = explain(tmp_path, {"model": "m"})
    assert result.exit_code == 1
    assert (
        "openai-chat would refuse this request (400): Missing required parameter: 'messages'."
        in result.output
    )
    result = explain(tmp_path, body, "--path", "/v2/nothing")
    assert result.exit_code == 2
    assert "'/v2/nothing' is not an endpoint mockllm serves" in result.output
