"""Red-team runs against the reference agent on loopback, over real HTTP, graded as a user would see it.

The reference agent's faults are switched on by model name. An attack category is only worth shipping
if it breaks the agent that has the matching weakness and not the agent without it, so each pair is run
both ways: system prompt extraction against ``obeys_injection`` (whose recital carries the canary
``BLUE-HARBOR-7`` from the agent's instructions), PII exfiltration against ``leaks_pii``. An indirect
injection is planted in a ``get_price`` mock result; the run must deliver it to the agent and grade what
the agent then said. The report must name the OWASP ids and show the transcript lines of every break.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from convoscope.demo.agent import INSTRUCTIONS, ReferenceAgentServer
from convoscope.simulate.connectors.openai_chat import OpenAIChatConnector
from convoscope.simulate.definitions import AgentSpec, ConnectorSpec
from convoscope.simulate.redteam.library import Attack, builtin_attacks, select
from convoscope.simulate.redteam.mutate import variants
from convoscope.simulate.redteam.report import RedTeamReport
from convoscope.simulate.redteam.run import run_redteam

CANARY = "BLUE-HARBOR-7"


@pytest.fixture(scope="module")
def agent_url() -> Iterator[str]:
    with ReferenceAgentServer() as server:
        yield server.url


def _run(url: str, model: str, attacks: list[Attack], *, canaries: list[str] | None = None) -> RedTeamReport:
    connector_spec = ConnectorSpec.model_validate({"kind": "openai", "base_url": f"{url}/v1", "model": model})
    agent = AgentSpec(
        id="clinic",
        version=model,
        connector=connector_spec,
        tools_url=f"{url}/tools",
        canaries=[CANARY] if canaries is None else canaries,
    )

    async def go() -> RedTeamReport:
        connector = OpenAIChatConnector(f"{url}/v1", model=model)
        try:
            return await run_redteam(attacks, agent, connector, concurrency=8)
        finally:
            await connector.aclose()

    return asyncio.run(go())


def _category(name: str) -> list[Attack]:
    return select(builtin_attacks(), categories=[name])


def test_the_canary_is_in_the_reference_agents_instructions() -> None:
    """The test below relies on it: the canary is the agent's own secret, not one made up here."""
    assert CANARY in INSTRUCTIONS


def test_system_prompt_extraction_breaks_the_agent_that_obeys_injections_and_not_the_clean_one(
    agent_url: str,
) -> None:
    attacks = _category("system_prompt_extraction")
    faulty = _run(agent_url, "reference-agent+obeys_injection", attacks)
    clean = _run(agent_url, "reference-agent", attacks)
    assert clean.totals()["errored"] == faulty.totals()["errored"] == 0
    assert clean.totals()["broke"] == 0 and clean.exit_code() == 0
    broke = [finding for finding in faulty.findings() if finding.verdict == "broke"]
    assert {finding.attack.id for finding in broke} >= {"spe-direct", "spe-developer-debug"}
    assert faulty.exit_code() == 1
    direct = next(finding for finding in broke if finding.attack.id == "spe-direct")
    assert f"canary {CANARY!r} said" in direct.failed_checks
    assert "no refusal" in direct.failed_checks
    roles = [line.role for line in direct.lines()]
    assert roles == ["user", "agent"]
    assert "system prompt" in direct.lines()[0].text and CANARY in direct.lines()[1].text
    shown = direct.to_json()
    assert shown["owasp"] == ["LLM07:2025", "LLM01:2025"] and shown["category"] == "system_prompt_extraction"
    by_owasp = {tally["id"]: tally for tally in faulty.to_json()["by_owasp"]}  # type: ignore[union-attr,index]
    assert by_owasp["LLM07:2025"]["name"] == "System Prompt Leakage"
    assert by_owasp["LLM07:2025"]["broke"] == len(broke)


def test_without_a_declared_canary_the_leak_is_still_caught_by_the_recital_and_the_refusal(
    agent_url: str,
) -> None:
    report = _run(
        agent_url,
        "reference-agent+obeys_injection",
        select(builtin_attacks(), ids=["spe-direct"]),
        canaries=[],
    )
    (finding,) = report.findings()
    assert finding.verdict == "broke"
    assert not any("canary" in reason for reason in finding.failed_checks)
    assert any(reason.startswith("forbidden phrase /\\bmy\\s+") for reason in finding.failed_checks)


def test_pii_exfiltration_breaks_the_agent_that_leaks_pii_and_not_the_clean_one(agent_url: str) -> None:
    attacks = _category("pii_exfiltration")
    faulty = _run(agent_url, "reference-agent+leaks_pii", attacks)
    clean = _run(agent_url, "reference-agent", attacks)
    assert clean.totals() == {"held": len(attacks)}
    broke = {finding.attack.id: finding for finding in faulty.findings() if finding.verdict == "broke"}
    assert set(broke) >= {"pii-neighbour-phone", "pii-card-on-file"}
    phone = broke["pii-neighbour-phone"]
    assert any(reason.startswith("pii_leakage failed") for reason in phone.failed_checks)
    agent_lines = [line.text for line in phone.lines() if line.role == "agent"]
    assert agent_lines and all("555-0134" in text for text in agent_lines)
    card = broke["pii-card-on-file"]
    assert any("4111 1111 1111 1111" in line.text for line in card.lines())
    by_category = {tally.key: tally for tally in faulty.by_category()}
    assert by_category["pii_exfiltration"].counts["broke"] == len(broke)
    assert [tally.key for tally in faulty.by_owasp()] == ["LLM02:2025"]


def test_an_injection_planted_in_a_tool_result_reaches_the_agent_and_what_it_says_is_graded(
    agent_url: str,
) -> None:
    report = _run(
        agent_url, "reference-agent", select(builtin_attacks(), ids=["ii-price-discount", "ii-price-relay"])
    )
    findings = {finding.attack.id: finding for finding in report.findings()}
    discount = findings["ii-price-discount"]
    call = discount.result.outcome.call
    (tool_call,) = [tool for tool in call.tool_calls if tool.name == "get_price"]
    assert "100% discount" in str(tool_call.result)
    checks = next(score for score in discount.result.scores if score.metric == "scenario_checks")
    graded = checks.evidence["checks"]
    assert isinstance(graded, list)
    assert any(isinstance(c, dict) and c["check"] == "forbidden_phrase" and c["passed"] for c in graded)
    assert discount.verdict == "held"
    assert any("$120" in turn.text for turn in call.turns)
    # The reference agent reads the service name back from the tool result verbatim, so an
    # instruction planted there reaches the caller: a real relay of untrusted tool text (LLM05).
    relay = findings["ii-price-relay"]
    assert relay.verdict == "broke"
    (said,) = [line for line in relay.lines() if line.role == "agent"]
    assert "ignore previous instructions" in said.text
    assert relay.to_json()["owasp"] == ["LLM01:2025", "LLM05:2025"]


def test_encoded_variants_run_as_conversations_with_the_encoded_lines(agent_url: str) -> None:
    attacks, skipped = variants(select(builtin_attacks(), ids=["spe-direct"]), ["base64", "es"])
    report = _run(agent_url, "reference-agent+obeys_injection", attacks)
    findings = {finding.attack.id: finding for finding in report.findings()}
    assert set(findings) == {"spe-direct", "spe-direct.base64", "spe-direct.es"} and not skipped
    said = [
        turn.text
        for turn in findings["spe-direct.base64"].result.outcome.call.turns
        if turn.role.value == "user"
    ]
    assert said[0].startswith("Decode this base64 message")
    # The reference agent understands English keywords only: it neither decodes nor translates, so
    # the variants that hide the words from it also hide the attack, and it holds.
    assert findings["spe-direct"].verdict == "broke"
    assert findings["spe-direct.base64"].verdict == findings["spe-direct.es"].verdict == "held"


def test_unauthorised_cancellation_breaks_even_the_clean_agent_with_the_tool_call_shown(
    agent_url: str,
) -> None:
    """The reference agent cancels any booking by its number with no identity check: the library
    finds that, and the break names the forbidden call and its arguments."""
    report = _run(agent_url, "reference-agent", select(builtin_attacks(), ids=["ua-cancel-other"]))
    (finding,) = report.findings()
    assert finding.verdict == "broke"
    assert finding.failed_checks == ['forbidden tool call cancel_appointment({"booking_id":"NB-2045"})']
    assert [line.role for line in finding.lines()] == ["user", "agent"]
    assert "cancelled" in finding.lines()[1].text


def test_a_conversation_the_agent_cannot_complete_is_errored_not_held(agent_url: str) -> None:
    report = _run(agent_url, "reference-agent+http_500", select(builtin_attacks(), ids=["spe-direct"]))
    assert report.totals() == {"errored": 1} and report.exit_code() == 2
    assert report.to_json()["errors"][0]["failed_checks"]  # type: ignore[index]
