"""Definition files in YAML: documents that name their ``kind``, each value with the line it was written on.

Simulation definitions, alert rules and schedules live side by side in a user's repository, one loader
per capability. What they share is here, below every capability: composing the YAML into nodes first so
every value keeps its line, mapping a validation error's location back to the line of the deepest value
written on it, finding the files of a folder, and reporting every problem with its file, line and field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import InputError, PayloadError

__all__ = [
    "MAX_VALUES",
    "SUFFIXES",
    "Document",
    "Problem",
    "ProblemsError",
    "load_kind_files",
    "load_kind_text",
    "parse_documents",
    "yaml_files",
]

SUFFIXES = (".yaml", ".yml")
ValuePath = tuple[str | int, ...]
T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """One mistake: where (file, line, field) and what."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ProblemsError(InputError):
    """Files that cannot be used, with every problem found; ``what`` names what they define."""

    what = "the definitions"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in {self.what}:\n{lines}")


@dataclass(frozen=True)
class Document:
    """One YAML document: its file, its first line, its value, and the line of every value in it."""

    file: str
    line: int
    data: Any
    lines: dict[ValuePath, int]

    def line_of(self, loc: Iterable[Any]) -> int:
        """The line of the deepest value written on ``loc`` (a missing field points at its parent)."""
        path: ValuePath = tuple(part if isinstance(part, int) else str(part) for part in loc)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.line


MAX_VALUES = 200_000
"""Values one document may expand to (a suite of a thousand scenarios has some tens of thousands). An alias
is copied where it is used (each copy keeps its own lines), so a few lines of aliases of aliases could
otherwise ask for billions ("billion laughs")."""


class _BadValue(Exception):
    """A value that composes but cannot be read: its line and path, and why."""

    def __init__(self, node: yaml.Node, path: ValuePath, message: str) -> None:
        super().__init__(message)
        self.line = node.start_mark.line + 1
        self.field = ".".join(str(part) for part in path)


@dataclass
class _Reading:
    """What one document's reading has seen: the line of each value, how many values, and the collections
    being read (an alias back to one of them is a cycle, which copying would never finish)."""

    lines: dict[ValuePath, int]
    count: int = 0
    open: set[int] = field(default_factory=set)


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "problem", None) or exc).strip()


def _plain(node: yaml.Node, path: ValuePath, reading: _Reading, *, record: bool = True) -> Any:
    if record:
        reading.lines[path] = node.start_mark.line + 1
    reading.count += 1
    if reading.count > MAX_VALUES:
        raise _BadValue(node, path, f"the document expands to more than {MAX_VALUES} values through aliases")
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        if id(node) in reading.open:
            raise _BadValue(node, path, "an alias refers to a value that contains it")
        reading.open.add(id(node))
        try:
            return _collection(node, path, reading)
        finally:
            reading.open.discard(id(node))
    # Constructed directly, as yaml.safe_load would: serialising a lone scalar and loading it back fails
    # on an empty document.
    try:
        return yaml.SafeLoader("").construct_object(node, deep=True)
    except Exception as exc:  # PyYAML's constructors fail in many ways: a bad tag, a 13th month, ...
        raise _BadValue(node, path, f"cannot read the value: {_reason(exc)}") from None


def _collection(node: yaml.MappingNode | yaml.SequenceNode, path: ValuePath, reading: _Reading) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*path, index), reading) for index, item in enumerate(node.value)]
    try:
        yaml.SafeLoader("").flatten_mapping(node)  # merge keys (``<<: *base``), as yaml.safe_load does
    except (yaml.YAMLError, RecursionError) as exc:
        raise _BadValue(node, path, f"cannot merge: {_reason(exc)}") from None
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = _plain(key_node, path, reading, record=False)
        if isinstance(key, list | dict):
            raise _BadValue(key_node, path, "a key must be a single value, not a list or a mapping")
        out[key] = _plain(value_node, (*path, str(key)), reading)
    return out


def parse_documents(text: str, file: str) -> list[Document]:
    """The documents of one YAML text; a syntax error, or a value that cannot be read (a wrong tag, an
    impossible date, an alias inside itself), is a :class:`ProblemsError` with its line."""
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow: a position, no mark
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        reason = f"{exc.reason}: U+{exc.character:04X} at column {column}"
        raise ProblemsError([Problem(file, line, "", f"not valid YAML: {reason}")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        marked = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise ProblemsError([Problem(file, marked, "", f"not valid YAML: {reason}")]) from None
    documents: list[Document] = []
    for node in nodes:
        if node is None:
            continue
        reading = _Reading(lines={})
        try:
            data = _plain(node, (), reading)
        except _BadValue as exc:
            raise ProblemsError([Problem(file, exc.line, exc.field, str(exc))]) from None
        documents.append(Document(file, node.start_mark.line + 1, data, reading.lines))
    return documents


def yaml_files(paths: Sequence[Path]) -> tuple[list[Path], list[Problem]]:
    """The YAML files of ``paths`` (files, or folders searched for ``*.yaml``/``*.yml``), and a problem for
    each path that does not exist (never an empty set in silence)."""
    found: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            problems.append(Problem(str(path), None, "", "no such file or folder"))
    return found, problems


Parse = Callable[[str, dict[str, Any]], T]
"""(id, the document's other fields) -> the definition; raises ``PayloadError`` with loc/msg errors."""


def load_kind_text(
    text: str, file: str, kind: str, parse: Parse[T], *, noun: str
) -> tuple[list[tuple[str, T]], list[Problem]]:
    """Every document of ``kind`` in one text, as (id, definition), and the problems found (``noun``
    names one in messages); documents of other kinds are another loader's and are skipped."""
    problems: list[Problem] = []
    found: list[tuple[str, T]] = []
    seen: dict[str, int] = {}
    try:
        documents = parse_documents(text, file)
    except ProblemsError as exc:
        return [], exc.problems
    for document in documents:
        data = document.data
        if not isinstance(data, dict) or data.get("kind") != kind:
            continue
        ident = data.get("id")
        if not isinstance(ident, str):
            problems.append(Problem(file, document.line_of(("id",)), "id", f"a {noun} needs an id (a slug)"))
            continue
        line = document.line_of(("id",))
        if ident in seen:
            problems.append(
                Problem(file, line, "id", f"{noun} {ident!r} is also defined at {file}:{seen[ident]}")
            )
            continue
        seen[ident] = line
        fields = {key: value for key, value in data.items() if key not in ("kind", "id")}
        try:
            found.append((ident, parse(ident, fields)))
        except PayloadError as exc:
            for error in exc.errors:
                loc = error.get("loc") or []
                parts = list(loc) if isinstance(loc, list | tuple) else [loc]
                field = ".".join(str(part) for part in parts)
                problems.append(Problem(file, document.line_of(parts), field, str(error.get("msg"))))
    return found, problems


def load_kind_files(
    paths: Sequence[Path], kind: str, parse: Parse[T], *, noun: str
) -> tuple[list[tuple[str, T]], list[Problem]]:
    """Every document of ``kind`` in ``paths``; an id defined twice, in one file or two, is a problem."""
    files, problems = yaml_files(paths)
    found: list[tuple[str, T]] = []
    where: dict[str, str] = {}
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(str(file), None, "", f"not UTF-8 text: {exc.reason}"))
            continue
        loaded, more = load_kind_text(text, str(file), kind, parse, noun=noun)
        problems.extend(more)
        for ident, definition in loaded:
            if ident in where:
                message = f"{noun} {ident!r} is also defined in {where[ident]}"
                problems.append(Problem(str(file), None, "id", message))
                continue
            where[ident] = str(file)
            found.append((ident, definition))
    return found, problems
