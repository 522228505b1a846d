"""Property: YAML definition files load, or are refused naming the file and line, never with a traceback.

Simulation definitions, alert rules and schedules share one YAML reader (``convoscope.yamldocs``), and
definitions also arrive as text through the API. Three kinds of input: the shipped examples with their
values edited (wrong types, missing fields, odd text), the same files with YAML constructs put in
(tags, anchors and aliases, merge keys, complex keys, impossible dates, tabs, stray indentation), and
arbitrary text. Every loader must return definitions or raise its
:class:`~convoscope.yamldocs.ProblemsError`, each problem naming the file and a line of it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from convoscope.alerts.loader import load_rules_text
from convoscope.server.schedule_spec import load_schedules_text
from convoscope.simulate.loader import load_text
from convoscope.testing.json_paths import json_paths
from convoscope.yamldocs import MAX_VALUES, ProblemsError, parse_documents

FILE = "defs.yaml"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "simulation"

RULES = """\
kind: alert_rule
id: slow-answers
name: p95 agent latency over 1.5 s
target: e2e_s
scope: {agent_id: desk}
window_s: 900
min_samples: 20
severity: critical
threshold: {aggregate: p95, op: ">", value: 1.5}
---
kind: alert_rule
id: csat-drift
name: CSAT drifts
target: metric:csat
trend: {alpha: 0.3, k: 3, baseline_buckets: 48, bucket: hour, direction: down}
---
kind: alert_rule
id: pii-now
name: Card number read out
severity: critical
immediate: {metric: pii_leakage}
"""
SCHEDULES = """\
kind: schedule
id: nightly-smoke
name: Smoke suite against the clinic agent, every weekday night
cron: "0 3 * * 1-5"
timezone: Europe/Berlin
action: {kind: simulate, suite: smoke, agent: clinic, iterations: 3, concurrency: 16}
misfire: once
misfire_grace_s: 3600
---
kind: schedule
id: reevaluate-daily
name: Re-score yesterday's calls
cron: "15 6 * * *"
action: {kind: reevaluate, since_days: 1, agent_id: clinic, metrics: [task_completion]}
"""
SEEDS = {
    "scenarios": (EXAMPLES / "scenarios.yaml").read_text(encoding="utf-8"),
    "agents": (EXAMPLES / "agents.yaml").read_text(encoding="utf-8"),
    "rules": RULES,
    "schedules": SCHEDULES,
}

LOADERS: dict[str, Callable[[str], object]] = {
    "simulation": lambda text: load_text(text, FILE),
    "alerts": lambda text: load_rules_text(text, FILE),
    "schedules": lambda text: load_schedules_text(text, FILE),
    "documents": lambda text: parse_documents(text, FILE),
}


def loads_or_names_the_line(text: str) -> None:
    """Every loader answers with definitions or with problems that name this file and a line of it."""
    # YAML breaks lines at \r, \x85, \u2028 and \u2029 too; splitlines() breaks at those and a few more.
    lines = len(text.splitlines()) + 1
    for name, load in LOADERS.items():
        try:
            load(text)
        except ProblemsError as exc:
            assert exc.problems, name
            for problem in exc.problems:
                assert problem.file == FILE, (name, problem)
                assert problem.line is None or 1 <= problem.line <= lines, (name, problem, lines)
                assert problem.message.strip(), (name, problem)
                assert str(problem).startswith(FILE), (name, problem)
            assert str(exc).count("\n") == len(exc.problems)


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_the_seed_files_load(seed: str) -> None:
    text = SEEDS[seed]
    loaded = {
        "scenarios": lambda: load_text(text, FILE),
        "agents": lambda: load_text(text, FILE),
        "rules": lambda: load_rules_text(text, FILE),
        "schedules": lambda: load_schedules_text(text, FILE),
    }[seed]()
    assert isinstance(loaded, list) and loaded


# -- edited values --------------------------------------------------------------------------------------

_odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["", "\u0000", "\U0001f600", "x" * 3000, "*/0", "99 99 99 99 99", "Mars/Olympus"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@st.composite
def edited_documents(draw: st.DrawFn) -> str:
    """A seed file with one to three values replaced or removed, written back as YAML."""
    documents = [d for d in yaml.safe_load_all(SEEDS[draw(st.sampled_from(sorted(SEEDS)))]) if d]
    documents = copy.deepcopy(documents)
    for _ in range(draw(st.integers(1, 3))):
        document = draw(st.sampled_from(documents))
        path = draw(st.sampled_from(json_paths(document)))
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_odd_values)
    return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True)


@settings(max_examples=100, deadline=None)
@given(text=edited_documents())
def test_edited_definitions_load_or_name_the_line(text: str) -> None:
    loads_or_names_the_line(text)


# -- YAML constructs put into real files ----------------------------------------------------------------

CONSTRUCTS = [
    "x: !!binary 'not base64!'",
    "x: !!int abc",
    "x: !!float abc",
    "x: !!timestamp yesterday",
    "x: 2024-13-45",
    "x: 2024-02-30 10:00:00",
    "x: !custom tag",
    "x: !!python/object:os.system ls",
    "x: &loop [*loop]",
    "x: &self {a: *self}",
    "x: {<<: 5}",
    "x: &m {<<: *m}",
    "base: &b {goal: merged}",
    "x: {<<: *b, id: merged}",
    "? [a, b]\n: 1",
    "? {a: 1}\n: 1",
    "x: *undefined",
    "\tx: tab",
    "  x: indented",
    "x: [unclosed",
    "x: 'unclosed",
    "x: |\n bad\n  indent",
    "---",
    "...",
    "%YAML 1.1\n---",
    "x: !!set {a, b}",
    "x: !!omap [{a: 1}, {b: 2}]",
    "x: !!str",
    "x: 0x_",
    "x: .nan",
    "x: 1e999",
    "x: ~",
    "x: =",
]


@st.composite
def spliced_documents(draw: st.DrawFn) -> str:
    lines = SEEDS[draw(st.sampled_from(sorted(SEEDS)))].split("\n")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(lines)))
        action = draw(st.sampled_from(["insert", "replace", "delete", "indent"]))
        if action == "insert" or not lines:
            lines.insert(at, draw(st.sampled_from(CONSTRUCTS)))
        elif action == "replace":
            lines[min(at, len(lines) - 1)] = draw(st.sampled_from(CONSTRUCTS))
        elif action == "delete":
            del lines[min(at, len(lines) - 1)]
        else:
            index = min(at, len(lines) - 1)
            lines[index] = draw(st.sampled_from(["  ", "\t", "- ", "? "])) + lines[index]
    return "\n".join(lines)


@settings(max_examples=150, deadline=None)
@given(text=spliced_documents())
# Found by this property: each of these raised TypeError, ValueError, ConstructorError or RecursionError.
@example(text="kind: scenario\nid: a\n? [a, b]\n: 1\n")
@example(text="kind: scenario\nid: a\ngoal: !!int abc\n")
@example(text="kind: scenario\nid: a\ngoal: 2024-13-45\n")
@example(text="kind: scenario\nid: a\ngoal: !custom tag\n")
@example(text="kind: scenario\nid: a\ngoal: &loop [*loop]\n")
@example(text="kind: schedule\nid: a\naction: &m {<<: *m}\n")
def test_yaml_constructs_load_or_name_the_line(text: str) -> None:
    loads_or_names_the_line(text)


def test_a_merge_key_merges_as_in_yaml() -> None:
    text = "kind: persona\nid: p\ng: &g {a: 1, b: 1}\nx:\n  <<: *g\n  b: 2\n"
    (document,) = parse_documents(text, FILE)
    assert document.data["x"] == {"a": 1, "b": 2}
    assert document.line_of(("x", "b")) == 6
    assert document.line_of(("x", "a")) == 3


def test_aliases_that_expand_past_the_bound_are_refused() -> None:
    # Nine levels of ten aliases each: a few hundred bytes that copy out to a billion values.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    with pytest.raises(ProblemsError, match=f"more than {MAX_VALUES} values"):
        parse_documents("\n".join(lines), FILE)


# -- arbitrary text ------------------------------------------------------------------------------------

_yaml_tokens = st.sampled_from(
    [
        "kind: scenario\n",
        "kind: schedule\n",
        "kind: alert_rule\n",
        "id: a\n",
        "---\n",
        "- ",
        "? ",
        ": ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "&a ",
        "*a ",
        "!!str ",
        "!!int ",
        "!x ",
        "<<: ",
        "|\n",
        ">\n",
        "'",
        '"',
        "#",
        "\t",
        "  ",
        "\n",
        "x",
        "1",
        "2024-01-01",
        "null",
        "%TAG ! tag:x,2000:\n",
    ]
)


@settings(max_examples=250, deadline=None)
@given(text=st.one_of(st.lists(_yaml_tokens, max_size=30).map("".join), st.text(max_size=60)))
def test_arbitrary_text_loads_or_names_the_line(text: str) -> None:
    loads_or_names_the_line(text)
