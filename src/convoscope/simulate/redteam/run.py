"""Run attacks against an agent through the simulation engine and report what broke it.

Nothing here talks to the agent itself: :func:`run_redteam` builds the plan (:mod:`.build`) and hands it
to :func:`~convoscope.simulate.runner.run_suite` with a connector, exactly as ``convoscope simulate``
does, so every attack conversation is an ordinary simulated call that can be stored, scored again on
the server and opened in the UI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from ...evals.llm import JudgeClient
from ...model import Call
from ..connectors.registry import AnyConnector
from ..definitions import AgentSpec
from ..runner import ConversationResult, run_suite
from .build import build_plan, redteam_scorer
from .library import Attack
from .mutate import Skipped
from .report import RedTeamReport

__all__ = ["run_redteam"]


async def run_redteam(
    attacks: Iterable[Attack],
    agent: AgentSpec,
    connector: AnyConnector,
    *,
    canaries: Sequence[str] = (),
    judge: JudgeClient | None = None,
    concurrency: int = 16,
    iterations: int = 1,
    skipped: Sequence[Skipped] = (),
    run_id: str | None = None,
    prepare: Callable[[Call], Call] = lambda call: call,
    on_result: Callable[[ConversationResult], None] | None = None,
) -> RedTeamReport:
    """Every attack (variants included) against ``agent``, graded with the agent's canaries
    (``AgentSpec.canaries``) and ``canaries``; ``judge`` runs the judge evaluators an attack names."""
    plan = build_plan(attacks, canaries=[*agent.canaries, *canaries], iterations=iterations)
    report = await run_suite(
        plan.definitions,
        plan.suite,
        agent,
        connector,
        scorer=redteam_scorer(plan.attacks, judge=judge),
        prepare=prepare,
        concurrency=concurrency,
        run_id=run_id,
        on_result=on_result,
        items=plan.items,
    )
    return RedTeamReport(report, plan.attacks, list(skipped), plan.canaries)
