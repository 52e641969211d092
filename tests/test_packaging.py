"""The distribution as a user gets it: its name in every install line, and the wheel alone (no
checkout) running the starter, the chaos pack and an SDK against it."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from .conftest import ROOT

DISTRIBUTION = configparser.ConfigParser(interpolation=None)
DISTRIBUTION.read(ROOT / "setup.cfg")
NAME = DISTRIBUTION["metadata"]["name"]
WHEEL_NAME = NAME.replace("-", "_")
#: Where users are told to install from.
DOCUMENTS = ["README.md", "CONTRIBUTING.md", "deploy/Dockerfile"]
INSTALL = re.compile(r"pip install\s+(?P<what>[^#\n]*)")


def install_lines() -> list[tuple[str, str]]:
    return [
        (document, match["what"].strip())
        for document in DOCUMENTS
        for match in INSTALL.finditer((ROOT / document).read_text(encoding="utf-8"))
    ]


def test_the_distribution_name_is_not_the_other_projects() -> None:
    assert NAME == "mockllm-server"  # "mockllm" and "pytest-mockllm" on the index are other projects


def test_every_install_line_names_the_distribution() -> None:
    lines = install_lines()
    assert any(NAME in what.split() for _, what in lines)  # the published name, shown
    assert any(f"{WHEEL_NAME}-" in what for _, what in lines)  # a wheel, until then
    assert any(f'"{NAME} @ git+' in what for _, what in lines)  # or a git URL
    for document, what in lines:
        words = re.findall(r"[\w.\-]+", re.sub(r"git\+\S+", "", what))  # a URL names a repository
        # what installs mockllm installs it by its distribution name (a bare "." is this checkout)
        assert "mockllm" not in words, f"{document}: pip install {what}"
        assert "pytest-mockllm" not in words, f"{document}: pip install {what}"


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 240) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.functional
@pytest.mark.timeout(600)
def test_the_wheel_alone_runs_the_starter_the_pack_and_an_sdk(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    wheels = tmp_path / "wheels"
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(ROOT)],
        ROOT,
        clean,
    )
    (wheel,) = wheels.glob(f"{WHEEL_NAME}-*.whl")
    venv.create(tmp_path / "venv", with_pip=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    bin_dir = tmp_path / "venv" / "bin"
    env = {**clean, "PATH": f"{bin_dir}{os.pathsep}{clean.get('PATH', '')}"}
    run([python, "-m", "pip", "install", "--quiet", str(wheel), "pytest", "openai"], tmp_path, env)
    user = tmp_path / "project"  # no checkout anywhere near: only what the wheel installed
    user.mkdir()
    run(["mockllm", "init"], user, env)
    assert "3 passed" in run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], user, env)
    assert Path(run(["mockllm", "schema", "--path"], user, env).strip()).is_file()
    assert "ask-weather" in run(["mockllm", "validate", "pack:agent/"], user, env)  # the pack's folders too

    server = subprocess.Popen(
        ["mockllm", "serve", "--scenario", "pack:", "--port", "0", "-q", "--time-scale", "0"],
        cwd=user,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = re.match(r"Listening on (http://\S+)", server.stdout.readline())
        assert url, server.stderr.read() if server.stderr else ""
        client = (
            "import openai, sys\n"
            "client = openai.OpenAI(base_url=sys.argv[1] + '/v1', api_key='x', max_retries=2)\n"
            "stream = client.chat.completions.create(\n"
            "    model='flaky', messages=[{'role': 'user', 'content': 'hi'}], stream=True)\n"
            "print(''.join(c.choices[0].delta.content or '' for c in stream if c.choices))\n"
        )
        assert run([python, "-c", client, url.group(1)], user, env).strip() == "Third time lucky."
    finally:
        server.terminate()
        server.communicate(timeout=15)
    assert server.returncode == 0
