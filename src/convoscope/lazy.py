"""Names of a package that load on first use, for packages whose ``__init__`` must stay cheap.

``convoscope --help`` and a recording's header probe should not import pydantic's models or the audio
stack; a package lists where each public name lives and returns ``lazy_getattr(...)`` as its module
``__getattr__`` (PEP 562). Type checkers read the package's ``TYPE_CHECKING`` imports instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(
    package: str, namespace: dict[str, Any], homes: Mapping[str, str]
) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``homes[name]`` (relative to ``package``) on first use and
    caches the value in ``namespace``, so later lookups are plain attribute reads."""

    def __getattr__(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(home, package), name)
        namespace[name] = value
        return value

    return __getattr__
