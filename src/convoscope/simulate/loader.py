"""Simulation definitions from YAML files, refused with the file, line and field of every mistake.

A folder (or a list of files) holds any number of YAML documents, each naming its ``kind``
(``scenario``, ``persona``, ``suite`` or ``agent``) beside its fields. The YAML is composed into nodes
first, so every value keeps the line it was written on (``convoscope.yamldocs``, shared with alert rules
and schedules); pydantic's error locations are then mapped back to those lines. References are checked
after everything is loaded: a suite naming a scenario or persona that does not exist, or two definitions
with one id, are errors too. Nothing half-loaded is returned: either every document is valid, or
:class:`DefinitionError` lists every problem found.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, ValidationError

from .. import yamldocs
from ..yamldocs import Document, Problem, ProblemsError, yaml_files
from .definitions import BUILTIN_PERSONAS, AgentSpec, Definitions, Persona, Scenario, Suite

__all__ = ["KINDS", "DefinitionError", "Problem", "load_definitions", "load_text", "parse_documents"]

KINDS: dict[str, type[BaseModel]] = {
    "scenario": Scenario,
    "persona": Persona,
    "suite": Suite,
    "agent": AgentSpec,
}
OTHER_KINDS = frozenset({"alert_rule", "schedule"})
"""Kinds other tools read from the same files (``convoscope alerts add``, ``convoscope schedules add``);
skipped here, not refused."""
_PLURAL = {"scenario": "scenarios", "persona": "personas", "suite": "suites", "agent": "agents"}


class DefinitionError(ProblemsError):
    """Definitions that cannot be used, with every problem found."""

    what = "the simulation definitions"


def parse_documents(text: str, file: str) -> list[Document]:
    """The YAML documents of one file, each with the line of every value; a syntax error is a
    :class:`DefinitionError` with its line."""
    try:
        return yamldocs.parse_documents(text, file)
    except ProblemsError as exc:
        raise DefinitionError(exc.problems) from None


def _line_of(document: Document, loc: Iterable[str | int]) -> int:
    return document.line_of(loc)


def _files(paths: Sequence[Path]) -> list[Path]:
    found, problems = yaml_files(paths)
    if problems:
        raise DefinitionError(problems)
    return found


def _validate(
    document: Document, problems: list[Problem], broken: set[tuple[str, str]]
) -> tuple[str, BaseModel] | None:
    """The document's definition; None (with its problems recorded, and its id among ``broken`` so
    references to it are not reported twice) when it is invalid."""
    data = document.data
    if not isinstance(data, dict):
        problems.append(
            Problem(document.file, document.line, "", "a definition must be a mapping with a kind")
        )
        return None
    kind = data.get("kind")
    if isinstance(kind, str) and kind in OTHER_KINDS:
        return None
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None or not isinstance(kind, str):
        known = ", ".join(KINDS)
        problems.append(
            Problem(
                document.file, _line_of(document, ("kind",)), "kind", f"must be one of {known}, not {kind!r}"
            )
        )
        return None
    fields = {key: value for key, value in data.items() if key != "kind"}
    try:
        return kind, model.model_validate(fields)
    except ValidationError as exc:
        broken.add((kind, str(fields.get("id"))))
        for error in exc.errors():
            loc = tuple(error["loc"])
            field = ".".join(str(part) for part in loc)
            problems.append(Problem(document.file, _line_of(document, loc), field, error["msg"]))
        return None


def load_definitions(paths: Sequence[Path]) -> Definitions:
    """Every definition in ``paths`` (files, or folders searched for ``*.yaml``/``*.yml``), checked."""
    problems: list[Problem] = []
    by_kind: dict[str, dict[str, BaseModel]] = {kind: {} for kind in KINDS}
    where: dict[tuple[str, str], tuple[str, int]] = {}
    broken: set[tuple[str, str]] = set()
    for file in _files(paths):
        try:
            documents = parse_documents(file.read_text(encoding="utf-8"), str(file))
        except DefinitionError as exc:
            problems.extend(exc.problems)
            continue
        except UnicodeDecodeError as exc:
            problems.append(Problem(str(file), None, "", f"not UTF-8 text: {exc.reason}"))
            continue
        for document in documents:
            validated = _validate(document, problems, broken)
            if validated is None:
                continue
            kind, definition = validated
            ident = str(definition.model_dump(include={"id"})["id"])
            here = (document.file, _line_of(document, ("id",)))
            if ident in by_kind[kind]:
                first = "{}:{}".format(*where[(kind, ident)])
                problems.append(
                    Problem(
                        document.file,
                        _line_of(document, ("id",)),
                        "id",
                        f"{kind} {ident!r} is also defined at {first}",
                    )
                )
                continue
            by_kind[kind][ident] = definition
            where[(kind, ident)] = here
    personas = {**BUILTIN_PERSONAS, **by_kind["persona"]}
    for ident, suite in by_kind["suite"].items():
        assert isinstance(suite, Suite)
        suite_file, line = where[("suite", ident)]
        for scenario in suite.scenarios:
            if scenario not in by_kind["scenario"] and ("scenario", scenario) not in broken:
                problems.append(
                    Problem(
                        suite_file, line, "scenarios", f"suite {ident!r} names unknown scenario {scenario!r}"
                    )
                )
        for persona in suite.personas:
            if persona not in personas and ("persona", persona) not in broken:
                problems.append(
                    Problem(
                        suite_file, line, "personas", f"suite {ident!r} names unknown persona {persona!r}"
                    )
                )
    if problems:
        raise DefinitionError(problems)
    return Definitions.model_validate(
        {_PLURAL[kind]: items for kind, items in by_kind.items() if kind != "persona"}
        | {"personas": personas}
    )


def load_text(
    text: str,
    file: str = "<text>",
    *,
    known_scenarios: Collection[str] = (),
    known_personas: Collection[str] = (),
) -> list[tuple[str, BaseModel]]:
    """Every definition in one YAML text (several documents), checked as files are, in document order.

    For definitions that arrive without a file (an API body): each problem names ``file`` and its line.
    A suite may name scenarios and personas of the text, ``known_*`` ones (kept elsewhere, e.g. on the
    server) and the built-in personas; two definitions of one kind and id in the text are an error.
    """
    problems: list[Problem] = []
    broken: set[tuple[str, str]] = set()
    found: list[tuple[str, BaseModel]] = []
    where: dict[tuple[str, str], int] = {}
    for document in parse_documents(text, file):
        validated = _validate(document, problems, broken)
        if validated is None:
            continue
        kind, definition = validated
        ident = str(definition.model_dump(include={"id"})["id"])
        line = _line_of(document, ("id",))
        if (kind, ident) in where:
            message = f"{kind} {ident!r} is also defined at {file}:{where[(kind, ident)]}"
            problems.append(Problem(file, line, "id", message))
            continue
        where[(kind, ident)] = line
        found.append((kind, definition))
    scenarios = {*known_scenarios, *(ident for kind, ident in where if kind == "scenario")}
    personas = {*BUILTIN_PERSONAS, *known_personas, *(ident for kind, ident in where if kind == "persona")}
    for kind, definition in found:
        if not isinstance(definition, Suite):
            continue
        line = where[(kind, definition.id)]
        for scenario in definition.scenarios:
            if scenario not in scenarios and ("scenario", scenario) not in broken:
                message = f"suite {definition.id!r} names unknown scenario {scenario!r}"
                problems.append(Problem(file, line, "scenarios", message))
        for persona in definition.personas:
            if persona not in personas and ("persona", persona) not in broken:
                message = f"suite {definition.id!r} names unknown persona {persona!r}"
                problems.append(Problem(file, line, "personas", message))
    if problems:
        raise DefinitionError(problems)
    return found
