"""The ``mockllm`` command: thin click commands over the library.

Heavy imports (aiohttp, jsonschema) happen inside the commands, so ``mockllm --help`` is instant.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__

SCENARIO_HELP = (
    "A scenario file, or a directory of *.yaml/*.yml files. Repeatable; the first scenario "
    "loaded is the default. Without it, the built-in default scenario is served."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mockllm")
def main() -> None:
    """A mock LLM server that streams scripted replies rune by rune, with exact timing and faults.

    \b
    mockllm serve --scenario scenarios/slow.yaml --port 8000
    mockllm validate scenarios/
    """


@main.command()
@click.option(
    "--scenario",
    "-s",
    "scenarios",
    multiple=True,
    type=click.Path(path_type=Path),
    help=SCENARIO_HELP,
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    "-p",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--time-scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Multiply every delay: 0 collapses them, 2 doubles them.",
)
def serve(scenarios: tuple[Path, ...], host: str, port: int, time_scale: float) -> None:
    """Serve scenarios as OpenAI-compatible streaming endpoints until Ctrl-C or SIGTERM."""
    import asyncio
    import logging
    import signal

    from .errors import MockLLMError, ScenarioError
    from .server import Server, resolve_scenarios

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        loaded = resolve_scenarios(list(scenarios) if scenarios else None)
    except ScenarioError as exc:
        raise click.ClickException(f"invalid scenarios:\n{exc}") from None
    server = Server(loaded, host=host, port=port, time_scale=time_scale)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        url = await server.start()
        names = ", ".join(s.name for s in loaded)
        click.echo(f"mockllm {__version__} serving {len(loaded)} scenario(s): {names}")
        click.echo(f"  default scenario: {loaded[0].name}")
        click.echo(f"  OpenAI base URL:  {url}/v1")
        click.echo(f"Listening on {url} (Ctrl-C to stop)", err=False)
        sys.stdout.flush()
        try:
            await stop.wait()
        finally:
            await server.stop()

    try:
        asyncio.run(run())
    except MockLLMError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("mockllm stopped", err=True)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check scenario files and directories; report every problem, exit 1 if there is any."""
    from .loader import check_files, duplicate_names

    failed = False
    everything = []
    for file, scenarios, problems in check_files(paths):
        everything += scenarios
        if problems:
            failed = True
            for problem in problems:
                click.echo(str(problem), err=True)
        else:
            names = ", ".join(s.name for s in scenarios)
            click.echo(f"{file}: ok ({names})")
    for problem in duplicate_names(everything):
        failed = True
        click.echo(str(problem), err=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
