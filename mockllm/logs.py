"""Logging for ``mockllm serve``: one line per call on stderr, as text or JSON.

The app logs each call to the ``mockllm.access`` logger with its fields in ``extra["fields"]``;
this module only decides how those lines look and how much else is said.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Literal

from aiohttp.http_exceptions import HttpProcessingError

LogFormat = Literal["text", "json"]


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and a call's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(log_format: LogFormat = "text", verbosity: int = 0) -> None:
    """``verbosity``: -1 warnings only (``-q``), 0 calls and lifecycle, 1 debug (``-v``)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger("mockllm")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel({-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG))


class BriefClientErrors(logging.Filter):
    """aiohttp's server logger writes a whole traceback for each request it cannot parse (a bad
    request line, a body that fails its ``Content-Encoding``) and for a client that leaves
    mid-request. Those are the client's doing, which is what mockllm is pointed at, so each
    becomes one short warning line: ``Error handling request from 127.0.0.1: 400, Invalid method``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        cause = _client_error(exc)
        if cause is not None:
            record.msg = f"{record.getMessage()}: {_describe(cause)}"
            record.args = ()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _client_error(exc: BaseException | None) -> BaseException | None:
    """The client's error behind ``exc`` (a parse error, or the connection gone), if it is one."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, HttpProcessingError | ConnectionError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, HttpProcessingError):
        return f"{exc.code}, {' '.join(exc.message.split())}"[:200]
    return f"{type(exc).__name__}: {exc}"[:200]


_BRIEF = BriefClientErrors()


def brief_client_errors() -> None:
    """Install :class:`BriefClientErrors` on aiohttp's server logger (once)."""
    logger = logging.getLogger("aiohttp.server")
    if _BRIEF not in logger.filters:
        logger.addFilter(_BRIEF)
