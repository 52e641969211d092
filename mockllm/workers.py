"""Serving from several processes (``--workers N``), supervised.

The parent reserves the port with a bound, never listening ``SO_REUSEPORT`` socket, forks N
workers that each run ``service.serve()`` on it (the kernel spreads new connections among them),
and waits until ``/healthz`` has answered from every one. Then it supervises:

- A worker that exits while the parent was not stopping it has **crashed**: it is logged and
  restarted in its slot, at most ``RESTARTS`` times in ``RESTART_WINDOW`` seconds; one more
  crash in that window and the parent stops the others and exits 1.
- SIGINT/SIGTERM to the parent are forwarded; each worker stops gracefully (``--grace``).
- The parent's exit status is 1 whenever a worker crashed (or one failed to stop cleanly), even
  if every restart served on: a crash in a load test is a finding, not noise.
- Workers die with the parent, even one killed with SIGKILL: each holds the read end of a pipe
  whose only write end is the parent's, and stops (gracefully) when it reads EOF there. A pipe
  rather than Linux's ``PR_SET_PDEATHSIG``: it works on every POSIX system, needs no ctypes, and
  the worker shuts down through the same path as on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.process import BaseProcess
from typing import cast

from .connections import raise_open_file_limit
from .errors import MockLLMError
from .logs import LogFormat, configure
from .server import bind
from .service import ServeConfig, health, serve, url_of, write_url_file

log = logging.getLogger("mockllm")

#: A crashed worker is restarted at most this many times in ``RESTART_WINDOW`` seconds.
RESTARTS = 5
RESTART_WINDOW = 60.0


class RestartBudget:
    """At most ``limit`` restarts in any ``window`` seconds."""

    def __init__(self, limit: int, window: float, time: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._time = time
        self._restarts: deque[float] = deque()

    def take(self) -> int | None:
        """Count a restart and return how many the window holds now, or ``None`` if over budget."""
        now = self._time()
        while self._restarts and now - self._restarts[0] >= self.window:
            self._restarts.popleft()
        if len(self._restarts) >= self.limit:
            return None
        self._restarts.append(now)
        return len(self._restarts)


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def _worker(
    config: ServeConfig, log_format: LogFormat, verbosity: int, parent_fd: int, write_fd: int
) -> None:
    # Forked with the parent's handlers installed (they forward signals to the workers: here
    # that would signal this worker's siblings); serve() installs its own on its loop.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.close(write_fd)  # only the parent may hold the write end, or EOF never comes
    configure(log_format, verbosity)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config, reuse_port=True, parent_fd=parent_fd))


class Workers:
    """The worker processes of one port, each in a numbered slot."""

    def __init__(self, config: ServeConfig, log_format: LogFormat, verbosity: int) -> None:
        self.config = config
        self._args = (log_format, verbosity)
        self._context = multiprocessing.get_context("fork")
        self._parent_fd, self._write_fd = os.pipe()
        self._slots: list[BaseProcess | None] = []
        self.stopping = False
        self.crashes = 0
        self.failed = False
        self.budget = RestartBudget(RESTARTS, RESTART_WINDOW)

    def start(self) -> None:
        self._slots = [self._spawn(i) for i in range(self.config.workers)]

    @property
    def pids(self) -> set[int]:
        return {p.pid for p in self._slots if p is not None and p.pid is not None}

    def _spawn(self, slot: int) -> BaseProcess:
        process = self._context.Process(
            target=_worker,
            args=(self.config, *self._args, self._parent_fd, self._write_fd),
            name=f"mockllm-worker-{slot}",
        )
        process.start()
        if self.stopping and process.pid is not None:  # a stop signal came while it forked
            os.kill(process.pid, signal.SIGTERM)
        return process

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop every worker (gracefully, with this signal); safe in a signal handler."""
        self.stopping = True
        for process in self._slots:
            if process is not None and process.pid is not None and process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def supervise(self) -> int:
        """Restart crashed workers until all have stopped; the exit status (1 after a crash)."""
        while True:
            live = {p.sentinel: (slot, p) for slot, p in enumerate(self._slots) if p is not None}
            if not live:
                break
            for sentinel in multiprocessing.connection.wait(list(live)):
                slot, process = live[cast(int, sentinel)]
                process.join()
                self._slots[slot] = None
                if self.stopping:
                    self.failed |= process.exitcode != 0
                else:
                    self._crashed(slot, process)
        os.close(self._write_fd)
        os.close(self._parent_fd)
        return 1 if self.crashes or self.failed else 0

    def _crashed(self, slot: int, process: BaseProcess) -> None:
        self.crashes += 1
        how = describe_exit(process.exitcode)
        held = self.budget.take()
        if held is None:
            log.error(
                "mockllm: worker %d (pid %s) %s; %d restarts in %gs already, so stopping the service",
                slot,
                process.pid,
                how,
                self.budget.limit,
                self.budget.window,
            )
            self.stop()
            return
        replacement = self._spawn(slot)
        self._slots[slot] = replacement
        log.error(
            "mockllm: worker %d (pid %s) %s; restarted it as pid %s (restart %d of at most %d in %gs)",
            slot,
            process.pid,
            how,
            replacement.pid,
            held,
            self.budget.limit,
            self.budget.window,
        )

    def wait_until_serving(self, url: str, timeout: float) -> None:
        """Poll /healthz until every worker has answered (each connection lands on one of them)."""
        seen: set[int] = set()
        deadline = time.monotonic() + timeout
        while not self.pids <= seen:
            dead = [p for p in self._slots if p is not None and p.exitcode is not None]
            if dead or time.monotonic() > deadline:
                self.stop()
                self.supervise()
                why = f"worker {dead[0].name} {describe_exit(dead[0].exitcode)}" if dead else "timeout"
                raise MockLLMError(f"the worker processes did not all start ({why})")
            body = health(url)
            if body is not None:
                seen.add(int(body.get("pid", 0)))
            else:
                time.sleep(0.05)


def serve_workers(
    config: ServeConfig, ready: Callable[[str], None], log_format: LogFormat = "text", verbosity: int = 0
) -> int:
    """Serve from ``config.workers`` supervised processes until SIGINT/SIGTERM; return the exit
    status (see the module docstring)."""
    config.load()  # refuse bad scenarios before starting anything
    raise_open_file_limit()  # the workers inherit it
    reserved = bind(config.host, config.port, reuse_port=True, listen=False)
    port = reserved.getsockname()[1]
    workers = Workers(replace(config, port=port), log_format, verbosity)
    signal.signal(signal.SIGTERM, lambda signum, frame: workers.stop(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: workers.stop(signum))
    workers.start()
    reserved.close()  # bound but never listening: it only kept the port ours until the workers bound it
    url = url_of(config.host, port)
    workers.wait_until_serving(url, timeout=30)
    if config.url_file is not None:
        write_url_file(config.url_file, url)
    ready(url)
    return workers.supervise()
