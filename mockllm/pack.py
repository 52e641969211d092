"""The chaos pack: the misbehaving streams shipped with mockllm, usable without a checkout.

In a checkout they are ``scenarios/``; the wheel installs the same files as ``mockllm/data/pack/``
(setup.cfg maps one onto the other). A scenario source ``pack:`` is the pack's top folder,
``pack:agent/`` a folder of it, and ``pack:NAME`` the one scenario of that name anywhere in it
(``pack:flaky``, ``pack:stall-forever``, ``pack:ask-weather``), wherever sources are taken:
``--scenario``, ``mockllm validate``, ``MockLLMServer`` and the pytest marker.
"""

from __future__ import annotations

from pathlib import Path

from .errors import MockLLMError

PREFIX = "pack:"


def is_pack(source: object) -> bool:
    """Whether ``source`` (a string, or a path as click hands it over) names the pack."""
    return isinstance(source, str | Path) and str(source).startswith(PREFIX) and not Path(source).exists()


def pack_dir() -> Path:
    """Where the pack's files are: installed beside the package, else the checkout's ``scenarios/``."""
    here = Path(__file__).resolve().parent
    installed = here / "data" / "pack"
    for folder in (installed, here.parent / "scenarios"):
        if folder.is_dir():
            return folder
    raise MockLLMError(f"the chaos pack is missing from this installation ({installed})")


def pack_name(source: str | Path) -> str:
    """The scenario a ``pack:NAME`` source names; ``""`` for the whole pack."""
    return str(source)[len(PREFIX) :].strip()
