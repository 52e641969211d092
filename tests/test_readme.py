"""Every README example marked ``<!-- readme-example: ... -->`` runs, as written.

Examples that talk to ``http://127.0.0.1:8000`` run against a real server on a free port (the port
number is the only thing substituted) with the scenario the marker names, time-scaled so the
100 ms-per-rune scenario takes under a second.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mockllm import MockLLMServer

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = re.compile(r"<!-- readme-example: (?P<kind>[^>]*?) -->\n```(?P<lang>\w*)\n(?P<code>.*?)```", re.S)
EXAMPLES = [(m["kind"], m["code"]) for m in EXAMPLE.finditer(README)]
SERVER = re.compile(r"server on port 8000 with (\S+)")


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    # the package of this checkout, even where the environment's editable install is another's
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_examples_are_found() -> None:
    kinds = [kind.split(",")[0] for kind, _ in EXAMPLES]
    assert kinds.count("python") == 5
    assert kinds.count("pytest") == 2
    assert {"shell", "file bad.yaml", "validate bad.yaml", "github-actions"} <= set(kinds)


def test_every_image_the_readme_shows_is_in_the_repository() -> None:
    """A picture written by a tool (the bench plot) must also be committed, or the README shows a
    broken image on every checkout."""
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert images
    tracked = subprocess.run(
        ["git", "ls-files", *images], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(tracked) == sorted(images)


@pytest.mark.functional
@pytest.mark.parametrize(
    ("kind", "code"),
    [e for e in EXAMPLES if e[0].startswith(("python", "shell"))],
    ids=lambda value: value.split(",")[0] if "\n" not in value else "",
)
def test_example_runs(kind: str, code: str, tmp_path: Path) -> None:
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")  # as if run from a checkout
    wanted = SERVER.search(kind)
    server = MockLLMServer(ROOT / wanted.group(1), time_scale=0.05).start() if wanted else None
    try:
        if server is not None:
            code = code.replace("127.0.0.1:8000", server.url.removeprefix("http://"))
        if kind.startswith("python"):
            result = run([sys.executable, "-c", code], tmp_path)
        else:
            if shutil.which("curl") is None:
                pytest.skip("curl is not installed")
            result = run(["sh", "-c", code.replace("\\\n", " ")], tmp_path)
    finally:
        if server is not None:
            server.stop()
    assert result.returncode == 0, result.stderr
    if (wanted and "slow" in wanted.group(1)) or "from the project root" in kind:
        assert "生成式语言模型" in result.stdout.replace("\n", "") or "data: [DONE]" in result.stdout


def test_validate_example_prints_what_the_readme_says(tmp_path: Path) -> None:
    files = {kind.removeprefix("file "): code for kind, code in EXAMPLES if kind.startswith("file ")}
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (shown,) = [code for kind, code in EXAMPLES if kind.startswith("validate ")]
    command, *expected = shown.strip().splitlines()
    result = run(command.removeprefix("$ ").split(), tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == expected


@pytest.mark.functional
def test_pytest_examples_pass(pytester: pytest.Pytester) -> None:
    """The README's pytest section, run as a user's test files against the installed plugin."""
    (pytester.path / "scenarios").mkdir()
    shutil.copy(ROOT / "scenarios" / "slow.yaml", pytester.path / "scenarios" / "slow.yaml")
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    examples = [code for kind, code in EXAMPLES if kind == "pytest"]
    for index, code in enumerate(examples):
        pytester.makepyfile(**{f"test_readme_{index}": code})
    result = pytester.runpytest("--strict-markers", "-W", "error")
    result.assert_outcomes(passed=4)


INTEGRATION_TEST = """
import openai

def test_the_reply_streams_in_full():
    client = openai.OpenAI()  # OPENAI_BASE_URL and OPENAI_API_KEY come from mockllm exec
    stream = client.chat.completions.create(
        model="slow", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.startswith("生成式语言模型")
"""


@pytest.mark.functional
def test_github_actions_example_runs(tmp_path: Path) -> None:
    """Every ``run:`` step after ``Install`` runs, in order, as GitHub's default ``bash -e`` would
    run it, in a checkout holding the scenarios and an integration suite (installing is what this
    environment already did)."""
    (workflow,) = [yaml.safe_load(code) for kind, code in EXAMPLES if kind == "github-actions"]
    steps = workflow["jobs"]["test"]["steps"]
    names = [step.get("name") for step in steps]
    runs = [step["run"] for step in steps[names.index("Install") + 1 :] if "run" in step]
    assert any(run.startswith("mockllm exec") for run in runs)
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    (tmp_path / "tests" / "integration").mkdir(parents=True)
    (tmp_path / "tests" / "integration" / "test_chat.py").write_text(INTEGRATION_TEST, encoding="utf-8")
    for step in runs:
        result = run(["bash", "-e", "-c", step], tmp_path)
        assert result.returncode == 0, f"{step}\n{result.stdout}\n{result.stderr}"
    assert "1 passed" in result.stdout
    if "--report mockllm-verdict.xml" in "".join(runs):  # the verdict ran over the suite's calls
        assert "all passed" in result.stderr
        assert 'failures="0"' in (tmp_path / "mockllm-verdict.xml").read_text(encoding="utf-8")
