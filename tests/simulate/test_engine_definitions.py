"""Simulation definitions from YAML: a valid folder loads; every mistake is refused with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from convoscope.evals.scenario import ArgumentMatcher
from convoscope.simulate.definitions import UnmockedTools
from convoscope.simulate.loader import DefinitionError, load_definitions

VALID = """\
kind: scenario
id: book-cleaning
goal: Book a teeth cleaning next Tuesday at 3 pm.
facts:
  name: Dana Reyes
checks:
  required_tools:
    - tool: book_appointment
      arguments:
        time: "15:00"
        name: {contains: reyes}
  forbidden_phrases: ["my instructions are"]
  end_reason: [user_hangup, agent_hangup]
tool_mocks:
  - tool: check_availability
    result: {available: true}
script:
  lines: ["I'd like to book a cleaning.", "Next Tuesday at 3 pm."]
  replies:
    - when: "name"
      say: "Dana Reyes."
---
kind: persona
id: rushed
patience_s: 4
pace: fast
---
kind: suite
id: smoke
scenarios: [book-cleaning]
personas: [neutral, rushed]
iterations: 3
---
kind: agent
id: clinic
version: "1.2.0"
connector:
  kind: openai
  base_url: http://127.0.0.1:9/v1
  model: reference-agent
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_a_valid_folder_loads_every_kind_with_builtin_personas(tmp_path: Path) -> None:
    _write(tmp_path, "all.yaml", VALID)
    loaded = load_definitions([tmp_path])
    scenario = loaded.scenarios["book-cleaning"]
    assert scenario.facts == {"name": "Dana Reyes"}
    required = scenario.checks.required_tools[0]
    assert required.arguments["time"] == "15:00"
    assert required.arguments["name"] == ArgumentMatcher(contains="reyes")
    assert scenario.unmocked_tools is UnmockedTools.ERROR
    assert loaded.suites["smoke"].iterations == 3
    assert loaded.personas["rushed"].patience_s == 4.0
    assert "neutral" in loaded.personas  # built in
    assert loaded.agents["clinic"].connector.settings() == {
        "base_url": "http://127.0.0.1:9/v1",
        "model": "reference-agent",
    }


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = _write(tmp_path, "defs.yaml", text)
    with pytest.raises(DefinitionError) as caught:
        load_definitions([tmp_path])
    lines = [str(problem) for problem in caught.value.problems]
    assert all(line.startswith(str(path)) for line in lines)
    return lines


def test_an_unknown_field_is_refused_with_its_line_and_name(tmp_path: Path) -> None:
    text = VALID.replace("  name: Dana Reyes\n", "  name: Dana Reyes\npatiense: 3\n")
    (line,) = _problems(tmp_path, text)
    assert ":6: patiense: Extra inputs are not permitted" in line


def test_a_wrong_value_deep_inside_points_at_its_own_line(tmp_path: Path) -> None:
    text = VALID.replace(
        '        time: "15:00"\n        name: {contains: reyes}', "        name: {contains: reyes, regex: x}"
    )
    (line,) = _problems(tmp_path, text)
    assert ":10: checks.required_tools.0.arguments.name" in line
    assert "exactly one of contains, regex, one_of, absent" in line


def test_a_missing_field_points_at_its_definition(tmp_path: Path) -> None:
    text = VALID.replace("goal: Book a teeth cleaning next Tuesday at 3 pm.\n", "")
    (line,) = _problems(tmp_path, text)
    assert ":1: goal: Field required" in line


def test_an_unknown_kind_and_a_bad_regex_are_both_reported(tmp_path: Path) -> None:
    text = VALID.replace("kind: persona", "kind: personna").replace('when: "name"', 'when: "(name"')
    lines = _problems(tmp_path, text)
    assert any(":23: kind: must be one of scenario, persona, suite, agent" in line for line in lines)
    assert any(":20: script.replies.0" in line and "does not compile" in line for line in lines)


def test_references_and_duplicates_are_checked_across_files(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", VALID)
    _write(
        tmp_path,
        "b.yaml",
        "kind: suite\nid: smoke\nscenarios: [book-cleaning]\n---\n"
        "kind: suite\nid: other\nscenarios: [nope]\npersonas: [ghost]\n",
    )
    with pytest.raises(DefinitionError) as caught:
        load_definitions([tmp_path])
    lines = [str(problem) for problem in caught.value.problems]
    assert any(
        "b.yaml:2: id: suite 'smoke' is also defined at" in line and "a.yaml:" in line for line in lines
    )
    assert any("b.yaml:6: scenarios: suite 'other' names unknown scenario 'nope'" in line for line in lines)
    assert any("unknown persona 'ghost'" in line for line in lines)


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    (line,) = _problems(tmp_path, "kind: scenario\nid: x\ngoal: [unclosed\n")
    assert ":4: not valid YAML" in line or ":3: not valid YAML" in line


def test_a_missing_path_is_an_error_not_an_empty_set(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="no such file or folder"):
        load_definitions([tmp_path / "absent"])


def test_the_published_schema_is_the_generated_one_and_checks_documents_as_the_loader_does() -> None:
    import json

    import jsonschema
    import yaml

    from convoscope.simulate.schema import definitions_schema

    schema = definitions_schema()
    published = Path(__file__).resolve().parents[2] / "docs" / "schema" / "simulation.json"
    assert json.loads(published.read_text()) == schema
    validator = jsonschema.Draft202012Validator(schema)
    for document in yaml.safe_load_all(VALID):
        assert not list(validator.iter_errors(document)), document["kind"]
    typo = {"kind": "persona", "id": "x", "patiense": 3}
    assert list(validator.iter_errors(typo))
    assert list(validator.iter_errors({"kind": "robot", "id": "x"}))
