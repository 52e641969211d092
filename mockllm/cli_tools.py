"""The ``mockllm`` commands that need no server: ``validate``, ``init``, ``schema`` and
``explain`` (the server's commands are in :mod:`mockllm.cli`, which registers these). Heavy
imports happen inside the commands, as there."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check scenario files and directories as serve would load them together; report every
    problem, exit 1 if there is any."""
    from .loader import load_set

    loaded = load_set(paths)
    for source in loaded.sources:
        for problem in source.problems:
            click.echo(str(problem), err=True)
        if not source.problems:
            names = ", ".join(s.name for s in source.scenarios)
            click.echo(f"{source.name}: ok ({names})")
    if loaded.problems:
        sys.exit(1)


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that are already there.")
def init(directory: Path, force: bool) -> None:
    """Write a starter into DIRECTORY (default: here): scenarios/ with the JSON Schema editors
    read, a conftest.py that serves them to the mockllm fixture, and tests to run with pytest."""
    from .starter import starter_files

    files = {directory / name: text for name, text in starter_files().items()}
    there = [str(path) for path in files if path.exists()]
    if there and not force:
        raise click.ClickException(f"already there (--force overwrites): {', '.join(there)}")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}")
    click.echo(f"next: cd {directory} && pytest -q   (and: mockllm serve --scenario scenarios/)")


@click.command()
@click.option("--path", "show_path", is_flag=True, help="Print where the schema file is instead.")
def schema(show_path: bool) -> None:
    """Print the JSON Schema of scenario files (for editors: yaml-language-server, VS Code, JetBrains)."""
    from importlib import resources

    file = resources.files("mockllm").joinpath("data", "scenario.schema.json")
    click.echo(str(file) if show_path else file.read_text("utf-8").rstrip("\n"))


@click.command()
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="A scenario file or directory, as serve takes it. Repeatable.",
)
@click.option(
    "--path",
    default="/v1/chat/completions",
    show_default=True,
    help="The endpoint the request is sent to (its wire format reads it).",
)
@click.option(
    "--header", "headers", multiple=True, metavar="'NAME: VALUE'", help="A request header. Repeatable."
)
@click.option("--strict", is_flag=True, help="As serve --strict: no default scenario.")
@click.argument("request_file", type=click.File("rb"))
def explain(
    scenarios: tuple[Path, ...], path: str, headers: tuple[str, ...], strict: bool, request_file: Any
) -> None:
    """Which scenario REQUEST_FILE (a JSON request body; - for stdin) would get, and why: each
    match scenario's verdict, then the choice. Exit 1 if none answers."""
    from urllib.parse import parse_qsl, urlsplit

    from .errors import MockLLMError, NoScenarioMatched
    from .formats import FORMATS, RequestError, Route, serving
    from .formats.fields import read_body
    from .loader import load_scenarios
    from .match import Seen
    from .selection import HEADER, ScenarioSet

    url = urlsplit(path)
    served = serving(url.path)
    if served is None:
        known = ", ".join(f.path for f in FORMATS.values())
        raise click.BadParameter(f"{path!r} is not an endpoint mockllm serves ({known})", param_hint="--path")
    fmt, route = served
    route = Route(route.params, dict(reversed(parse_qsl(url.query))), route.path)
    given = dict(h.split(":", 1) for h in headers if ":" in h)
    given = {name.strip(): value.strip() for name, value in given.items()}
    try:
        loaded = ScenarioSet(load_scenarios(scenarios))
        body = read_body(request_file.read())
        seen = Seen(fmt.parse_request(body, route).conversation, fmt.name, given, body)
        header = next((v for k, v in given.items() if k.lower() == HEADER.lower()), None)
        verdicts, choice = loaded.explain(header, seen, strict=strict)
    except RequestError as exc:
        raise click.ClickException(
            f"{fmt.name} would refuse this request ({exc.status}): {exc.message}"
        ) from None
    except NoScenarioMatched as exc:
        click.echo(str(exc))
        sys.exit(1)
    except MockLLMError as exc:
        raise click.ClickException(str(exc)) from None
    for line in verdicts:
        click.echo(f"  {line}")
    click.echo(f"{choice.scenario.name} answers ({choice.reason})")
