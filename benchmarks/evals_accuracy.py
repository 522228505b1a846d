"""Accuracy of the deterministic evaluators on a labelled transcript set built by the project.

The set (``_evals_labelled.py``) has PII leaks in spoken and written forms with hard negatives (order
numbers, business contacts, masked values), claimed-but-not-done actions against tool calls (missing,
failed and mismatched ones, beside offers and refusals), injection attempts beside benign look-alikes,
required disclosures verbatim, paraphrased, late or missing, and agent loops beside normal re-asks. Each
metric runs with its defaults (disclosures with the two phrases the set requires); a case counts as
flagged when the result fails. Reported per metric: precision and recall of the flag, the confusion
counts and every case it got wrong. Presidio (the ``pii`` extra) runs on the same PII cases in the same
run, as a reference for what a written-text detector catches.

Goal: precision and recall ≥ 0.9 on every deterministic metric.

Run: ``uv run python benchmarks/evals_accuracy.py`` (``--json PATH``; ``--no-presidio`` to skip it).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, print_environment, print_table, write_json
from _evals_labelled import DISCLOSURE, DISCLOSURE_PHRASES, INJECTION, LOOPS, PII, SAY_DO, Case
from convoscope.evals.base import EvalContext, Metric
from convoscope.evals.rules.injection import PromptInjection
from convoscope.evals.rules.loops import LoopDetection
from convoscope.evals.rules.phrases import Disclosure, DisclosureParams
from convoscope.evals.rules.pii import PiiLeakage, PiiParams
from convoscope.evals.rules.saydo import SayDoConsistency
from convoscope.model import Call

GOAL = 0.9
TURN_S = 2.0


def to_call(case: Case, number: int) -> Call:
    """The case as a canonical call, turns 2 s long and 0.5 s apart."""
    turns = [
        {"role": role, "text": text, "start_s": i * (TURN_S + 0.5), "end_s": i * (TURN_S + 0.5) + TURN_S}
        for i, (role, text) in enumerate(case.turns)
    ]
    tool_calls = [{"id": f"t{i}", **tc} for i, tc in enumerate(case.tool_calls)]
    return Call.model_validate(
        {
            "id": f"case-{number}",
            "source": "generic",
            "external_id": f"case-{number}",
            "started_at": datetime(2026, 1, 5, 10, tzinfo=UTC),
            "turns": turns,
            "tool_calls": tool_calls,
            **case.fields,
        }
    )


@dataclass
class Score:
    """Confusion counts of one metric on one set, and the cases it got wrong."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    wrong: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def add(self, label: bool, flagged: bool, note: str) -> None:
        if label and flagged:
            self.tp += 1
        elif label:
            self.fn += 1
            self.wrong.append(f"missed: {note}")
        elif flagged:
            self.fp += 1
            self.wrong.append(f"false alarm: {note}")
        else:
            self.tn += 1


def score(metric: Metric[Any], cases: list[Case]) -> tuple[Score, float]:
    """The metric's confusion counts on the cases, and its mean seconds per case."""
    result = Score()
    began = time.perf_counter()
    for number, case in enumerate(cases):
        outcome = metric.evaluate(to_call(case, number), EvalContext())
        assert outcome.error is None, (case.note, outcome.error)
        result.add(case.label, outcome.passed is False, case.note)
    return result, (time.perf_counter() - began) / len(cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-presidio", action="store_true")
    args = parser.parse_args()
    env = environment()
    print_environment(env)
    runs: list[tuple[str, str, Metric[Any], list[Case]]] = [
        ("pii_leakage", "rules (spoken + written)", PiiLeakage(), PII),
        ("say_do_consistency", "patterns (no judge)", SayDoConsistency(), SAY_DO),
        ("prompt_injection", "rules", PromptInjection(), INJECTION),
        (
            "disclosure",
            "near-verbatim, by agent turn 2",
            Disclosure(DisclosureParams(phrases=DISCLOSURE_PHRASES)),
            DISCLOSURE,
        ),
        ("loop_detection", "defaults", LoopDetection(), LOOPS),
    ]
    if not args.no_presidio:
        runs.append(("pii_leakage", "presidio (reference)", PiiLeakage(PiiParams(engine="presidio")), PII))
        runs.append(("pii_leakage", "rules + presidio", PiiLeakage(PiiParams(engine="both")), PII))
    rows = []
    figures: dict[str, Any] = {}
    for name, variant, metric, cases in runs:
        if "presidio" in variant:
            metric.evaluate(to_call(cases[0], 0), EvalContext())  # load the spaCy model outside the timing
        counts, per_case_s = score(metric, cases)
        positives = sum(c.label for c in cases)
        is_goal = "presidio" not in variant
        met = counts.precision >= GOAL and counts.recall >= GOAL
        rows.append(
            [
                name,
                variant,
                f"{len(cases)} ({positives}+)",
                f"{counts.precision:.2f}",
                f"{counts.recall:.2f}",
                f"{counts.tp}/{counts.fp}/{counts.fn}/{counts.tn}",
                f"{per_case_s * 1e3:.2f}",
                ("met" if met else "**MISSED**") if is_goal else "—",
            ]
        )
        figures[f"{name} / {variant}"] = {
            "cases": len(cases),
            "positives": positives,
            "precision": counts.precision,
            "recall": counts.recall,
            "tp": counts.tp,
            "fp": counts.fp,
            "fn": counts.fn,
            "tn": counts.tn,
            "ms_per_case": per_case_s * 1e3,
            "wrong": counts.wrong,
        }
    print(f"\nprecision and recall of the flag (goal ≥ {GOAL} on every deterministic metric):")
    print_table(["metric", "variant", "cases", "precision", "recall", "TP/FP/FN/TN", "ms/case", "goal"], rows)
    print("\ncases got wrong:")
    for key, figure in figures.items():
        for line in figure["wrong"]:
            print(f"  {key}: {line}")
    write_json(args.json, {"environment": env, "figures": figures})


if __name__ == "__main__":
    main()
