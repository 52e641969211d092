"""The ``mockllm`` command: thin click commands over the library.

Heavy imports (aiohttp, jsonschema) happen inside the commands, so ``mockllm --help`` is instant.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import __version__
from .cli_record import upstream_options

if TYPE_CHECKING:
    from .service import ServeConfig

F = TypeVar("F", bound=Callable[..., Any])

SCENARIO_HELP = (
    "A scenario file, a directory of *.yaml/*.yml files, or the chaos pack shipped with mockllm "
    "('pack:' for all of it, 'pack:NAME' for one scenario). Repeatable; the default is the scenario "
    "marked 'default: true', else the first loaded. Without it, the built-in default is served."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mockllm")
def main() -> None:
    """A mock LLM server that streams scripted replies rune by rune, with exact timing and faults.

    \b
    mockllm init                      # a starter: scenarios, a conftest.py and tests to run
    mockllm serve --scenario scenarios/slow.yaml --port 8000
    mockllm serve --scenario pack:    # the chaos pack shipped with mockllm
    mockllm validate scenarios/
    mockllm exec --scenario scenarios/ -- pytest tests/integration
    mockllm serve --port 0 --url-file .mockllm-url &  mockllm wait --url-file .mockllm-url
    mockllm record --upstream https://api.openai.com --out recordings/   # then serve them
    """


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from .duration import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def serve_options(*, port: int, port_help: str) -> Callable[[F], F]:
    """The options ``serve`` and ``exec`` share."""
    options = [
        click.option(
            "--scenario",
            "-s",
            "scenarios",
            multiple=True,
            type=click.Path(path_type=Path),
            help=SCENARIO_HELP,
        ),
        click.option(
            "--host",
            default="127.0.0.1",
            show_default=True,
            help="Address to listen on. Anything but loopback is warned about.",
        ),
        click.option(
            "--port", "-p", default=port, show_default=True, type=click.IntRange(0, 65535), help=port_help
        ),
        click.option(
            "--time-scale",
            default=1.0,
            show_default=True,
            type=click.FloatRange(min=0),
            help="Multiply every delay: 0 collapses them, 2 doubles them.",
        ),
        click.option(
            "--url-file",
            type=click.Path(path_type=Path),
            help="Write the server's URL to this file (atomically) once it is listening.",
        ),
        click.option("--reload", is_flag=True, help="Re-read the scenario files when they change."),
        click.option(
            "--grace",
            default="5s",
            show_default=True,
            callback=_duration,
            help="On SIGTERM/SIGINT, how long running streams may finish before they are cut.",
        ),
        click.option(
            "--api-key",
            metavar="KEY",
            help="Require this API key (Authorization: Bearer or x-api-key; for Bedrock, the "
            "access key id a SigV4 signature names); a wrong one gets 401 in the API's own error shape.",
        ),
        click.option("--no-control", is_flag=True, help="Turn off the /_mockllm/ control API."),
        click.option(
            "--control-token",
            metavar="TOKEN",
            help="Require Authorization: Bearer TOKEN on the control API.",
        ),
        click.option(
            "--max-body",
            default=16 * 1024 * 1024,
            show_default=True,
            type=click.IntRange(min=1),
            metavar="BYTES",
            help="Largest request body accepted (larger: 413).",
        ),
        click.option(
            "--header-timeout",
            default="10s",
            show_default=True,
            callback=_duration,
            help="A client must send a request's whole header block within this long (from "
            "connecting, or from its first byte on a kept-alive connection), or get 408 and a close.",
        ),
        click.option(
            "--idle-timeout",
            default="75s",
            show_default=True,
            callback=_duration,
            help="Close a kept-alive connection that sends nothing for this long between requests.",
        ),
        click.option(
            "--max-connections",
            type=click.IntRange(min=1),
            metavar="N",
            help="Answer connections past N open ones with 503 and close them (one warning per "
            "burst). Default: the open-file limit, which serve raises to its hard limit at start, "
            "less 128.",
        ),
        click.option(
            "--cors",
            "cors",
            multiple=True,
            metavar="ORIGIN",
            help="Let a browser page from ORIGIN (e.g. http://localhost:5173, or *) call the LLM "
            "endpoints: answers preflights and adds CORS headers to every response. Repeatable.",
        ),
        click.option(
            "--max-calls",
            default=10_000,
            show_default=True,
            type=click.IntRange(min=1),
            metavar="N",
            help="Calls the call log keeps; past it the oldest are dropped (GET /_mockllm/calls "
            "says how many).",
        ),
        click.option(
            "--redact-header",
            "redact_headers",
            multiple=True,
            metavar="NAME",
            help="Redact this request header wherever calls are served or logged, like "
            "Authorization, x-api-key, api-key and Cookie always are. Repeatable.",
        ),
        click.option(
            "--strict",
            is_flag=True,
            help="No default scenario: a request that neither names a scenario (header, model) nor "
            "meets one's match gets a 404 explaining each miss.",
        ),
        click.option(
            "--log-format",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="One line per request on stderr, as text or JSON.",
        ),
        click.option(
            "-q",
            "--quiet",
            is_flag=True,
            help="Print only the 'Listening on URL' line; log only warnings and errors.",
        ),
        click.option("-v", "--verbose", is_flag=True, help="Log debug details too."),
    ]

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _config(params: dict[str, Any]) -> ServeConfig:
    from .logs import configure
    from .service import ServeConfig

    configure(params["log_format"], -1 if params["quiet"] else (1 if params["verbose"] else 0))
    if params["host"] not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"warning: listening on {params['host']}: anything that can reach this address can use "
            "the mock server and its control API (see --control-token, --no-control)",
            err=True,
        )
    return ServeConfig(
        scenarios=tuple(params["scenarios"]),
        host=params["host"],
        port=params["port"],
        time_scale=params["time_scale"],
        url_file=params["url_file"],
        reload=params["reload"],
        grace=params["grace"],
        workers=params.get("workers", 1),
        api_key=params["api_key"],
        control=not params["no_control"],
        control_token=params["control_token"],
        max_body=params["max_body"],
        cors=tuple(params["cors"]),
        max_calls=params["max_calls"],
        redact_headers=tuple(params["redact_headers"]),
        strict=params["strict"],
        header_timeout=params["header_timeout"],
        idle_timeout=params["idle_timeout"],
        max_connections=params["max_connections"],
        upstream=_upstream_config(params),
    )


def _upstream_config(params: dict[str, Any]) -> Any:
    from .cli_record import upstream_of

    if params.get("record_dir") and not params.get("upstream"):
        raise click.UsageError("--record needs --upstream: the API whose answers are recorded")
    if not params.get("upstream"):
        return None
    if params.get("workers", 1) > 1:
        raise click.UsageError("--upstream serves from one process: leave out --workers")
    return upstream_of(params["upstream"], params["record_dir"], params)


def _announce(config: ServeConfig, url: str, *, quiet: bool = False) -> None:
    from .service import BASE_URLS

    if quiet:  # the one line scripts and tests read
        click.echo(f"Listening on {url}")
        sys.stdout.flush()
        return

    loaded = config.load()
    names = ", ".join(s.name for s in loaded)
    workers = f" from {config.workers} processes" if config.workers > 1 else ""
    click.echo(f"mockllm {__version__} serving {len(loaded)} scenario(s){workers}: {names}")
    click.echo(f"  default scenario: {loaded[0].name}")
    for name, api, suffix in BASE_URLS:
        label = f"{api} {'endpoint_url' if name.startswith('AWS_') else 'base URL'}:"
        click.echo(f"  {label:<24}{url}{suffix}  (${name})")
    click.echo(f"Listening on {url} (Ctrl-C to stop)")
    sys.stdout.flush()


@main.command()
@serve_options(port=8000, port_help="Port to listen on; 0 picks a free one.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Serve from this many processes on one port (SO_REUSEPORT). Each has its own call log.",
)
@upstream_options
def serve(**params: Any) -> None:
    """Serve scenarios on every supported API endpoint until Ctrl-C or SIGTERM."""
    import asyncio

    from .errors import MockLLMError, ScenarioError
    from .service import serve as run
    from .workers import serve_workers

    config = _config(params)
    quiet = params["quiet"]
    code = 0
    try:
        config.load()
        if config.workers > 1:
            code = serve_workers(
                config,
                lambda url: _announce(config, url, quiet=quiet),
                params["log_format"],
                -1 if params["quiet"] else (1 if params["verbose"] else 0),
            )
        else:
            asyncio.run(run(config, ready=lambda url: _announce(config, url, quiet=quiet)))
    except ScenarioError as exc:
        raise click.ClickException(f"invalid scenarios:\n{exc}") from None
    except MockLLMError as exc:
        raise click.ClickException(str(exc)) from None
    if code:
        click.echo("mockllm stopped; a worker crashed (see above)", err=True)
        sys.exit(code)
    if not quiet:
        click.echo("mockllm stopped", err=True)


@main.command(
    "exec",
    context_settings={"allow_interspersed_args": False},
)
@serve_options(port=0, port_help="Port to listen on; 0 (the default) picks a free one.")
@click.option(
    "--verdict",
    "verdict",
    is_flag=False,
    flag_value="all",
    default=None,
    metavar="CHECKS",
    help="After COMMAND, check what its clients did about the faults they met (retry, retry-after, "
    "truncation, abort, last-event-id; comma-separated, or all when given bare) and exit 1 if a "
    "check failed (COMMAND's own failure wins).",
)
@click.option(
    "--abort-within",
    default="30s",
    show_default=True,
    callback=_duration,
    help="The verdict's abort check: the longest a client may wait on a silent stream.",
)
@click.option(
    "--report",
    "reports",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the verdict to this file: JUnit XML if it ends in .xml, else JSON. Repeatable.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(command: tuple[str, ...], **params: Any) -> None:
    """Start a server, run COMMAND with its URLs in the environment, stop, exit with COMMAND's status.

    \b
    COMMAND gets MOCKLLM_URL and each SDK's base URL variable (OPENAI_BASE_URL as .../v1,
    ANTHROPIC_BASE_URL, OLLAMA_HOST, AZURE_OPENAI_ENDPOINT, AWS_ENDPOINT_URL_BEDROCK_RUNTIME,
    GOOGLE_GEMINI_BASE_URL), and OPENAI_API_KEY / ANTHROPIC_API_KEY / AZURE_OPENAI_API_KEY /
    GOOGLE_API_KEY set to the --api-key (else a dummy), replacing any set (GEMINI_API_KEY is unset);
    OPENAI_API_VERSION is set if it is not; AWS credentials are left as they are.
    Example: mockllm exec --scenario scenarios/ -- npm test
    """
    from .errors import MockLLMError, ScenarioError
    from .service import VerdictConfig, exec_command

    verdict = None
    if params["verdict"] is not None or params["reports"]:
        from .verdict import parse_checks

        try:
            checks = parse_checks(params["verdict"] or "all")
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--verdict") from None
        verdict = VerdictConfig(checks, params["abort_within"], tuple(params["reports"]))
    config = _config(params)
    try:
        code = exec_command(config, command, verdict)
    except ScenarioError as exc:
        raise click.ClickException(f"invalid scenarios:\n{exc}") from None
    except MockLLMError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


@main.command()
@click.option("--url", help="The server's URL, e.g. http://127.0.0.1:8000.")
@click.option(
    "--url-file",
    type=click.Path(path_type=Path),
    help="Read the URL from this file (as written by serve --url-file), waiting for it to appear.",
)
@click.option(
    "--timeout", default="10s", show_default=True, callback=_duration, help="Give up after this long."
)
def wait(url: str | None, url_file: Path | None, timeout: float) -> None:
    """Wait until a server answers GET /healthz; exit 0 then, 1 on timeout. Prints the URL."""
    from .errors import MockLLMError
    from .service import wait_until_ready

    if (url is None) == (url_file is None):
        raise click.UsageError("give exactly one of --url and --url-file")
    try:
        click.echo(wait_until_ready(url, url_file, timeout))
    except MockLLMError as exc:
        raise click.ClickException(str(exc)) from None


from .cli_record import import_, record  # noqa: E402
from .cli_tools import explain, init, schema, validate  # noqa: E402  (they need no server)

for command in (validate, init, schema, explain, record, import_):
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
