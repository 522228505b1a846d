"""Simulation: scenarios × personas run against an agent before release.

A *scenario* is what the simulated caller wants and what must happen; a *persona* is how the caller
behaves; a *suite* crosses them; a *run* executes a suite against an *agent under test* through a
*connector*, and every simulated conversation becomes an ordinary call (``source=simulation``), stored and
scored by the same evaluators as production, plus the scenario's own expected-outcome checks.
"""
