"""What a new user reaches first without a checkout: the chaos pack by name, ``mockllm init``,
``mockllm schema`` and a quiet ``serve -q``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from mockllm import MockLLMServer
from mockllm.cli import main
from mockllm.loader import load_set, resolve
from mockllm.pack import pack_dir
from mockllm.starter import SCHEMA_LINE, starter_files

from .conftest import ROOT, SCENARIOS
from .served import Served


def shipped_names() -> list[str]:
    return [s.name for s in resolve([SCENARIOS])]


def test_pack_is_the_shipped_scenarios_in_a_checkout() -> None:
    assert pack_dir() == SCENARIOS.resolve()
    assert [s.name for s in resolve(["pack:"])] == shipped_names()


@pytest.mark.parametrize("source", ["pack:stall-forever", Path("pack:stall-forever")])
def test_pack_name_is_one_scenario(source: str | Path) -> None:
    (scenario,) = resolve([source])
    assert scenario.name == "stall-forever"
    assert scenario.source == f"{SCENARIOS}/stall.yaml:13"


def test_an_unknown_pack_name_says_what_is_there() -> None:
    (problem,) = load_set(["pack:flakey"]).problems
    assert str(problem) == (
        "pack:flakey: no scenario 'flakey' in the chaos pack; did you mean 'flaky'? "
        "(`mockllm validate pack:` lists them)"
    )


def test_validate_takes_the_pack() -> None:
    result = CliRunner().invoke(main, ["validate", "pack:"])
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == len(list(SCENARIOS.glob("*.yaml")))
    result = CliRunner().invoke(main, ["validate", "pack:nope"])
    assert result.exit_code == 1
    assert "no scenario 'nope' in the chaos pack" in result.output


@pytest.mark.functional
def test_the_server_and_the_marker_take_pack_names(pytester: pytest.Pytester) -> None:
    with MockLLMServer("pack:flaky", time_scale=0) as server:
        assert [s.name for s in server.scenarios] == ["flaky"]
        statuses = [
            httpx.post(
                f"{server.openai_base_url}/chat/completions",
                json={"model": "x", "messages": [{"role": "user", "content": "hi"}]},
            ).status_code
            for _ in range(3)
        ]
    assert statuses == [503, 429, 200]
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")  # pytest-asyncio's
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.mockllm(scenario="pack:stall-forever")
        def test_marker(mockllm):
            assert [s.name for s in mockllm.scenarios] == ["stall-forever"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_init_writes_a_starter_and_keeps_what_is_there(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(starter_files())
    schema = (ROOT / "mockllm" / "data" / "scenario.schema.json").read_text(encoding="utf-8")
    assert (tmp_path / "scenarios" / "scenario.schema.json").read_text(encoding="utf-8") == schema
    for file in (tmp_path / "scenarios").glob("*.yaml"):
        assert file.read_text(encoding="utf-8").startswith(SCHEMA_LINE)
    assert [s.name for s in resolve([tmp_path / "scenarios"])] == ["hello", "flaky", "stall"]  # default first

    (tmp_path / "conftest.py").write_text("# mine\n")
    again = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert again.exit_code == 1
    assert again.output.startswith("Error: already there (--force overwrites): ")
    assert (tmp_path / "conftest.py").read_text() == "# mine\n"
    forced = CliRunner().invoke(main, ["init", "--force", str(tmp_path)])
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "conftest.py").read_text() != "# mine\n"


@pytest.mark.functional
def test_the_starters_tests_pass(pytester: pytest.Pytester) -> None:
    for name, text in starter_files().items():
        (pytester.path / name).parent.mkdir(parents=True, exist_ok=True)
        (pytester.path / name).write_text(text, encoding="utf-8")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")  # pytest-asyncio's
    pytester.runpytest("-W", "error").assert_outcomes(passed=3)


def test_schema_prints_the_json_schema_or_its_path() -> None:
    shown = CliRunner().invoke(main, ["schema"])
    assert shown.exit_code == 0
    assert json.loads(shown.output)["$schema"].startswith("https://json-schema.org/")
    path = CliRunner().invoke(main, ["schema", "--path"])
    assert json.loads(Path(path.output.strip()).read_text(encoding="utf-8")) == json.loads(shown.output)


@pytest.mark.functional
def test_serve_quiet_prints_only_the_url() -> None:
    served = Served("-q", "--scenario", "pack:slow")
    served.process.send_signal(signal.SIGTERM)
    stdout, stderr = served.process.communicate(timeout=15)
    assert served.url.startswith("http://127.0.0.1:")
    assert stdout == ""  # the Listening line was read already; nothing else was printed
    assert stderr == ""


@pytest.mark.functional
def test_init_from_the_command_line_then_pytest(tmp_path: Path) -> None:
    """As a user types it: ``mockllm init`` in an empty directory, then ``pytest``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    mockllm = [sys.executable, "-m", "mockllm.cli"]
    done = subprocess.run(
        [*mockllm, "init"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.splitlines()[-1] == "next: cd . && pytest -q   (and: mockllm serve --scenario scenarios/)"
    )
    shutil.rmtree(tmp_path / ".pytest_cache", ignore_errors=True)
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout


def test_a_folder_of_the_pack_and_a_name_inside_it() -> None:
    assert [s.name for s in resolve(["pack:agent/"])] == [s.name for s in resolve([SCENARIOS / "agent"])]
    (scenario,) = resolve(["pack:ask-weather"])
    assert scenario.source.startswith(f"{SCENARIOS}/agent/weather.yaml:")
