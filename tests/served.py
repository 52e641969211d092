"""``mockllm serve`` as a subprocess, for tests of the service as users run it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence

#: ``python -m`` puts the working directory first on sys.path: the checkout's mockllm is the one run.
MOCKLLM = [sys.executable, "-m", "mockllm.cli"]


class Served:
    """A ``mockllm serve`` subprocess and the URL it printed. ``launcher`` goes before the
    command (e.g. a ``python -c`` that sets resource limits, then execs it)."""

    def __init__(self, *args: str, launcher: Sequence[str] = ()) -> None:
        self.process = subprocess.Popen(
            [*launcher, *MOCKLLM, "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        self.url = ""
        self.banner: list[str] = []  # what it printed up to the URL
        for line in self.process.stdout:
            self.banner.append(line)
            match = re.match(r"Listening on (http://\S+)", line)
            if match:
                self.url = match.group(1)
                break
        if not self.url:  # it exited: say why, leaving no process or pipe behind
            _, stderr = self.process.communicate(timeout=15)
            raise AssertionError(stderr)

    def stop(self, timeout: float = 15, *, signalled: bool = False) -> tuple[int, str]:
        """SIGTERM (unless the test already sent it), then wait for the exit."""
        if not signalled:
            self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=timeout)
        return self.process.returncode, stderr


def start(registry: list[Served], *args: str, launcher: Sequence[str] = ()) -> Served:
    server = Served(*args, launcher=launcher)
    registry.append(server)
    return server
