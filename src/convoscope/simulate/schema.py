"""The JSON Schema of simulation definition files, generated from the models the loader validates with.

One schema covers every document of a definitions folder: a document is one of the four kinds, told
apart by its ``kind``. Editors that read JSON Schema (VS Code's YAML extension, for one) then complete
and check scenario files as they are written; the published copy is ``docs/schema/simulation.json``,
and a test keeps it equal to what this module generates.
"""

from __future__ import annotations

from typing import Any

from .loader import KINDS

__all__ = ["definitions_schema"]

_REF_PREFIX = "#/$defs/"


def definitions_schema() -> dict[str, Any]:
    """A schema accepting exactly the documents :func:`~.loader.load_definitions` accepts (bar references)."""
    defs: dict[str, Any] = {}
    choices: list[dict[str, Any]] = []
    for kind, model in KINDS.items():
        schema = model.model_json_schema(ref_template=_REF_PREFIX + "{model}")
        defs.update(schema.pop("$defs", {}))
        schema["properties"] = {
            "kind": {"const": kind, "description": f"This document is a {kind}."}
        } | schema["properties"]
        schema["required"] = ["kind", *schema.get("required", [])]
        name = f"{kind.capitalize()}Document"
        defs[name] = schema
        choices.append({"$ref": _REF_PREFIX + name})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "convoscope simulation definition",
        "description": "One document of a simulation definitions folder: scenario, persona, suite or agent.",
        "oneOf": choices,
        "$defs": dict(sorted(defs.items())),
    }
