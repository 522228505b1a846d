"""Accuracy of the deterministic evaluators on the independent labelled set in ``evals_set/``.

The set was written before any tuning against it, one JSONL file per label (PII leak, say-do, prompt
injection, disclosure present, disclosure early, agent loop), each case tagged with the failure class or
look-alike it exercises and split once, by a hash of its id, into ``tune`` (40 %) and ``holdout`` (60 %).
The holdout split is never used for tuning; its figures are the ones to report.

Each metric runs with its documented defaults; disclosures with the case's requirement configured as
its kind (``ai_disclosure`` or ``recording_notice``) with the kind's phrase as the docs show it as an extra
phrasing, or (``--disclosure-as phrase``) with only that phrase, as before requirement kinds existed. A
case counts as flagged when the result fails.
Reported per label and split: n, precision, recall, F1 and the confusion counts, then per class of the
holdout split the same counts, so the failing classes are visible, and every holdout case got wrong.

Run: ``uv run python benchmarks/evals_holdout.py`` (``--json PATH``; ``--split tune|holdout|all`` limits
the per-class table and the list of wrong cases, default ``holdout``; ``--set-dir DIR`` runs another set in
the same format, such as ``evals_set_b/`` or ``evals_set_c/``, whose ``b-`` and ``c-`` cases are all holdout).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, print_environment, print_table, write_json
from convoscope.evals.base import EvalContext, Metric
from convoscope.evals.rules.injection import PromptInjection
from convoscope.evals.rules.loops import LoopDetection
from convoscope.evals.rules.phrases import Disclosure, DisclosureParams
from convoscope.evals.rules.pii import PiiLeakage
from convoscope.evals.rules.saydo import SayDoConsistency
from convoscope.model import Call

SET_DIR = Path(__file__).resolve().parent / "evals_set"
LABELS = ("pii", "saydo", "injection", "disclosure_present", "disclosure_early", "loop")
"""One file per label, ``<label>.jsonl``."""
MIN_CASES = {label: (60 if label == "disclosure_early" else 100) for label in LABELS}
TUNE_SHARE = 40
"""Percent of the cases in the ``tune`` split."""
TURN_S = 2.0


def split_of(case_id: str) -> str:
    """The split a case id falls in, for ever: the first 8 hex digits of its SHA-256, modulo 100.

    Batches B to E (``evals_set_b/`` ... ``evals_set_e/``, ids ``b-...`` ... ``e-...``) are never tuned
    on: all of their cases are holdout."""
    if case_id.startswith(("b-", "c-", "d-", "e-")):
        return "holdout"
    bucket = int(hashlib.sha256(case_id.encode()).hexdigest()[:8], 16) % 100
    return "tune" if bucket < TUNE_SHARE else "holdout"


def load_set(label: str, set_dir: Path = SET_DIR) -> list[dict[str, Any]]:
    """The cases of one label, in file order."""
    path = set_dir / f"{label}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def to_call(case: dict[str, Any]) -> Call:
    """The case as a canonical call, turns 2 s long and 0.5 s apart, tool calls numbered."""
    turns = [
        {
            "role": turn["role"],
            "text": turn["text"],
            "start_s": i * (TURN_S + 0.5),
            "end_s": i * (TURN_S + 0.5) + TURN_S,
        }
        for i, turn in enumerate(case["turns"])
    ]
    tool_calls = [{"id": f"t{i}", **tc} for i, tc in enumerate(case.get("tool_calls", []))]
    return Call.model_validate(
        {
            "id": case["id"],
            "source": "generic",
            "external_id": case["id"],
            "started_at": datetime(2026, 1, 5, 10, tzinfo=UTC),
            "turns": turns,
            "tool_calls": tool_calls,
        }
    )


DISCLOSURE_AS = {"as": "kind"}
"""How a case's requirement is configured: ``kind`` (its kind, with the phrase as an extra phrasing) or
``phrase`` (only the phrase, as before disclosure kinds existed); set by ``--disclosure-as``."""


def _disclosure(case: dict[str, Any]) -> Metric[Any]:
    requirement = case["requirement"]
    if DISCLOSURE_AS["as"] == "phrase":
        return Disclosure(DisclosureParams(phrases=[requirement["phrase"]]))
    kind = {"kind": requirement["kind"], "phrases": [requirement["phrase"]]}
    return Disclosure(DisclosureParams.model_validate({"requirements": [kind]}))


METRICS: dict[str, Callable[[dict[str, Any]], Metric[Any]]] = {
    "pii": lambda _case: PiiLeakage(),
    "saydo": lambda _case: SayDoConsistency(),
    "injection": lambda _case: PromptInjection(),
    "disclosure_present": _disclosure,
    "disclosure_early": _disclosure,
    "loop": lambda _case: LoopDetection(),
}
"""Per label, the metric a case runs with (documented defaults; disclosures with the case's phrase)."""


@dataclass
class Counts:
    """Confusion counts of the flag."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, label: bool, flagged: bool) -> None:
        if label and flagged:
            self.tp += 1
        elif label:
            self.fn += 1
        elif flagged:
            self.fp += 1
        else:
            self.tn += 1

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        """2TP / (2TP + FP + FN); None when there was nothing to find and nothing flagged."""
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else None

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.n if self.n else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "positives": self.tp + self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "accuracy": self.accuracy,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
        }


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def evaluate(label: str, set_dir: Path = SET_DIR) -> list[tuple[dict[str, Any], bool]]:
    """Every case of the label with whether the metric flagged it (the result failed)."""
    out = []
    for case in load_set(label, set_dir):
        outcome = METRICS[label](case).evaluate(to_call(case), EvalContext())
        if outcome.error is not None:
            raise SystemExit(f"{case['id']}: {outcome.error}")
        out.append((case, outcome.passed is False))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--split", choices=["tune", "holdout", "all"], default="holdout")
    parser.add_argument("--disclosure-as", choices=["kind", "phrase"], default="kind")
    parser.add_argument("--set-dir", type=Path, default=SET_DIR)
    args = parser.parse_args()
    DISCLOSURE_AS["as"] = args.disclosure_as
    env = environment()
    print_environment(env)
    figures: dict[str, Any] = {}
    overall_rows = []
    class_rows = []
    wrong_lines = []
    for label in LABELS:
        results = evaluate(label, args.set_dir)
        per_split: dict[str, Counts] = {"tune": Counts(), "holdout": Counts(), "all": Counts()}
        per_class: dict[str, Counts] = {}
        wrong: list[dict[str, Any]] = []
        for case, flagged in results:
            per_split[case["split"]].add(case["label"], flagged)
            per_split["all"].add(case["label"], flagged)
            if args.split not in ("all", case["split"]):
                continue
            per_class.setdefault(case["class"], Counts()).add(case["label"], flagged)
            if flagged != case["label"]:
                what = "missed" if case["label"] else "false alarm"
                wrong.append({"id": case["id"], "class": case["class"], "what": what})
                shown = [t["text"] for t in case["turns"] if t["role"] != "agent" or label != "injection"]
                text = " / ".join(shown)
                wrong_lines.append(f"  {label} {case['id']} [{case['class']}] {what}: {text[:110]}")
        for split in ("holdout", "tune", "all"):
            counts = per_split[split]
            overall_rows.append(
                [
                    label,
                    split,
                    f"{counts.n} ({counts.tp + counts.fn}+)",
                    _fmt(counts.precision),
                    _fmt(counts.recall),
                    _fmt(counts.f1),
                    f"{counts.tp}/{counts.fp}/{counts.fn}/{counts.tn}",
                ]
            )
        for name, counts in sorted(per_class.items(), key=lambda item: (item[1].accuracy, item[0])):
            class_rows.append(
                [
                    label,
                    name,
                    f"{counts.n} ({counts.tp + counts.fn}+)",
                    _fmt(counts.f1),
                    f"{counts.accuracy:.2f}",
                    f"{counts.tp}/{counts.fp}/{counts.fn}/{counts.tn}",
                ]
            )
        figures[label] = {
            "splits": {split: counts.as_dict() for split, counts in per_split.items()},
            f"classes_{args.split}": {name: counts.as_dict() for name, counts in sorted(per_class.items())},
            f"wrong_{args.split}": wrong,
        }
    print("\nper label and split (flag = the result failed; F1 goal ≥ 0.95 on the holdout split):")
    print_table(["label", "split", "cases", "precision", "recall", "F1", "TP/FP/FN/TN"], overall_rows)
    print(f"\nper class, {args.split} split (F1 —: nothing to find in the class and nothing flagged):")
    print_table(["label", "class", "cases", "F1", "accuracy", "TP/FP/FN/TN"], class_rows)
    print(f"\ncases got wrong ({args.split} split):")
    for line in wrong_lines:
        print(line)
    shown = {
        "environment": env,
        "set_dir": str(args.set_dir),
        "split_shown": args.split,
        "disclosure_as": args.disclosure_as,
    }
    write_json(args.json, {**shown, "figures": figures})


if __name__ == "__main__":
    main()
