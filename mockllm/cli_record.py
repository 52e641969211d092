"""``mockllm record``: the recording proxy's command (registered by :mod:`mockllm.cli`). Heavy
imports happen inside the command, as there."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from .record import Upstream


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from .duration import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _upstream(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from urllib.parse import urlsplit

    if value is not None and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc):
        raise click.BadParameter(f"{value!r} is not an http:// or https:// URL")
    return value


def recording_options(command: Any) -> Any:
    """What ``record`` and ``serve --record`` share: how exchanges are written."""
    options = [
        click.option(
            "--exact",
            is_flag=True,
            help="Write each response as a transcript of its reads (bytes and times), replayed "
            "byte for byte, instead of reply, timing and faults.",
        ),
        click.option(
            "--redact",
            "redact",
            multiple=True,
            metavar="PATTERN",
            help="Replace what this regular expression matches in everything written by "
            "[REDACTED]; API-key shapes (sk-..., sk-proj-..., sk-ant-...) always are. Repeatable.",
        ),
        click.option(
            "--keep-header",
            "keep_headers",
            multiple=True,
            metavar="NAME",
            help="Keep this response header too (besides the content type, rate-limit and retry "
            "headers and the request id). Authorization, x-api-key, api-key and cookies never are. "
            "A trailing * keeps a prefix. Repeatable.",
        ),
        click.option(
            "--complete-only",
            is_flag=True,
            help="Write no file for an exchange whose client left before the response ended "
            "(by default it is written with incomplete: true).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@click.option(
    "--upstream",
    required=True,
    callback=_upstream,
    metavar="URL",
    help="The API to proxy, e.g. https://api.openai.com (its path prefix is kept: .../v1 is not "
    "needed, clients send it).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The directory the scenario files go to (created if needed).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", "-p", default=8000, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free one."
)
@click.option(
    "--url-file",
    type=click.Path(path_type=Path),
    help="Write the proxy's URL to this file (atomically) once it is listening.",
)
@click.option(
    "--grace",
    default="5s",
    show_default=True,
    callback=_duration,
    help="On SIGTERM/SIGINT, how long exchanges in flight may finish before they are written as incomplete.",
)
@recording_options
@click.option("-q", "--quiet", is_flag=True, help="Print only the 'Listening on URL' line.")
@click.option("-v", "--verbose", is_flag=True, help="Log each file written.")
def record(**params: Any) -> None:
    """Proxy an API and write each exchange as a scenario in --out, for serve to replay.

    \b
    mockllm record --upstream https://api.openai.com --out recordings/ --port 8000
    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 python my_app.py
    mockllm serve --scenario recordings/
    """
    import asyncio

    from .errors import MockLLMError
    from .logs import configure
    from .record import RecordConfig
    from .record import record as run
    from .redaction import public_url

    configure("text", -1 if params["quiet"] else (1 if params["verbose"] else 0))
    config = RecordConfig(
        upstream=upstream_of(params["upstream"], params["out"], params),
        host=params["host"],
        port=params["port"],
        url_file=params["url_file"],
        grace=params["grace"],
    )

    def ready(url: str) -> None:
        if not params["quiet"]:
            click.echo(f"mockllm record: {public_url(config.upstream.url)} -> {config.upstream.out}/")
            click.echo(f"  OpenAI base URL:  {url}/v1")
            click.echo(f"  Anthropic / Ollama base URL: {url}")
        click.echo(f"Listening on {url}" + ("" if params["quiet"] else " (Ctrl-C to stop)"))
        sys.stdout.flush()

    try:
        asyncio.run(run(config, ready=ready))
    except MockLLMError as exc:
        raise click.ClickException(str(exc)) from None
    if not params["quiet"]:
        click.echo("mockllm record stopped", err=True)


def upstream_of(url: str, out: Path | None, params: dict[str, Any]) -> Upstream:
    """The :class:`~mockllm.record.Upstream` the recording options describe."""
    from .record import Upstream

    _check_patterns(tuple(params["redact"]))
    return Upstream(
        url,
        out,
        exact=params["exact"],
        redact=tuple(params["redact"]),
        keep_headers=tuple(params["keep_headers"]),
        complete_only=params["complete_only"],
    )


def upstream_options(command: Any) -> Any:
    """``serve --upstream URL --record DIR`` and the recording options."""
    command = recording_options(command)
    command = click.option(
        "--record",
        "record_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="With --upstream: write each forwarded exchange as a scenario here, and reload, so "
        "the next identical request replays it.",
    )(command)
    return click.option(
        "--upstream",
        callback=_upstream,
        metavar="URL",
        help="Forward a request no scenario matches to this API instead of answering it "
        "(there is no default scenario then); see --record.",
    )(command)


def _check_patterns(patterns: tuple[str, ...]) -> None:
    import re

    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            message = f"{pattern!r} is not a regular expression: {exc}"
            raise click.BadParameter(message, param_hint="--redact") from None


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "format_name",
    type=click.Choice(["openai-chat", "anthropic", "ollama-chat", "ollama-generate"]),
    help="The wire format of the captured stream (a HAR entry's route says it).",
)
@click.option(
    "--entry",
    type=click.IntRange(min=1),
    help="Which entry of a .har file, counted from 1 (default: its only one on a route mockllm serves).",
)
@click.option("--name", help="The scenario's name (default: the file's stem).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the scenario here (default: standard output).",
)
def import_(
    file: Path, format_name: str | None, entry: int | None, name: str | None, out: Path | None
) -> None:
    """Turn a captured response body (e.g. curl -N output saved to FILE) into a scenario: its
    tokens, tool calls, finish reason and faults. A transcript written by record --exact keeps
    its times as timing.gaps; a raw capture has none. A .har file (a browser's or a proxy's
    export) gives the request too, so the scenario gets its match, and the time to the first
    byte; HAR keeps no time per event."""
    from .faults import Disconnect
    from .formats import FORMATS
    from .loader import load_set
    from .recording import imported

    if file.suffix == ".har":
        text = _from_har(file, entry, name or file.stem)
    elif format_name is None:
        raise click.UsageError("--format is needed for a captured body (only a .har file says its route)")
    else:
        reads: list[tuple[float, bytes]] = [(0.0, file.read_bytes())]
        ending = "eof"
        if file.suffix in (".yaml", ".yml"):
            loaded = load_set([file])
            if loaded.problems or len(loaded.scenarios) != 1 or not loaded.scenarios[0].transcript:
                raise click.ClickException(
                    f"{file}: not one scenario with a transcript (record --exact writes those)"
                )
            scenario = loaded.scenarios[0]
            reads, time = [], 0.0
            for after, data in scenario.transcript:
                time += after
                reads.append((time, data))
            ends = [f.mode for f in scenario.faults if isinstance(f, Disconnect) and f.at is None]
            ending = (
                {"fin": "fin", "reset": "reset", "mid-event": "fin"}.get(ends[0], "eof") if ends else "eof"
            )
        text = imported(reads, FORMATS[format_name], name or file.stem, source=file.name, ending=ending)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


def _from_har(file: Path, entry: int | None, name: str) -> str:
    """The scenario file of one entry of a HAR file."""
    import json

    from .formats import serving
    from .har import HarError, exchanges
    from .recording import scenario_of
    from .yamlwriter import render

    try:
        found = exchanges(json.loads(file.read_text(encoding="utf-8")))
    except (ValueError, HarError) as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    if entry is not None:
        if entry > len(found):
            raise click.BadParameter(f"{file} has {len(found)} entries", param_hint="--entry")
        chosen = found[entry - 1]
    else:
        served = [(n, e) for n, e in enumerate(found, 1) if serving(e.path) is not None]
        if len(served) != 1:
            listed = "".join(f"\n  {n}: {e.method} {e.path} -> {e.status}" for n, e in enumerate(found, 1))
            what = "none is" if not served else f"{len(served)} are"
            raise click.ClickException(
                f"{file}: {what} on a route mockllm serves; pick one with --entry N:{listed}"
            )
        chosen = served[0][1]
    data, notes = scenario_of(chosen, name)
    notes[0] = f"Imported by mockllm import from {file.name} (HAR, started {chosen.when})"
    if len(chosen.reads) == 1:
        notes.append("HAR keeps no time per event: every token at the first byte (edit timing to pace it)")
    return render(data, notes)
