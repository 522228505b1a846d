"""Every place in a JSON document, as the key and index path that reaches it.

Property tests of parsers edit real documents one place at a time (a value swapped, a key dropped) so
that the edit gets past the first check and reaches each field's own validation; this lists the places.
"""

from __future__ import annotations

from typing import Any

__all__ = ["json_paths"]


def json_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value below ``node`` (its own, the empty path, excluded), depth first."""
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(json_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(json_paths(value, (*prefix, index)))
    return found
