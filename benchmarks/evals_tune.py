"""Accuracy of the deterministic evaluators on tuning material only: the ``tune`` split of ``evals_set/``
and the cases written for tuning in ``evals_tune/``.

The holdout split of ``evals_set/`` is never loaded here (cases are filtered by ``split_of`` before they are
run), so this runner can be used freely while changing the rules: it prints per label and source the
confusion counts, per class the same, and every case got wrong. The holdout figures come from
``evals_holdout.py``, run by someone not tuning.

Run: ``uv run python benchmarks/evals_tune.py`` (``--label saydo`` limits the labels, ``--quiet`` drops
the list of wrong cases, ``--json PATH`` writes the figures).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, write_json
from convoscope.evals.base import EvalContext
from evals_holdout import LABELS, METRICS, SET_DIR, Counts, _fmt, split_of, to_call

TUNE_DIR = Path(__file__).resolve().parent / "evals_tune"
"""Cases written for tuning, one JSONL file per label, ids prefixed ``t-``."""


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tune_cases(label: str) -> dict[str, list[dict[str, Any]]]:
    """Per source, the tuning cases of one label: the set's ``tune`` split (filtered by id hash before
    anything else reads them) and the written tuning cases."""
    from_set = [case for case in _read(SET_DIR / f"{label}.jsonl") if split_of(case["id"]) == "tune"]
    return {"set-tune": from_set, "evals_tune": _read(TUNE_DIR / f"{label}.jsonl")}


def flagged(label: str, case: dict[str, Any]) -> bool:
    """Whether the label's metric flags the case (its result failed)."""
    outcome = METRICS[label](case).evaluate(to_call(case), EvalContext())
    if outcome.error is not None:
        raise SystemExit(f"{case['id']}: {outcome.error}")
    return outcome.passed is False


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--label", action="append", choices=LABELS, default=None)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows: list[list[str]] = []
    class_rows: list[list[str]] = []
    wrong: list[str] = []
    figures: dict[str, Any] = {}
    for label in args.label or LABELS:
        for source, cases in tune_cases(label).items():
            counts = Counts()
            per_class: dict[str, Counts] = {}
            for case in cases:
                got = flagged(label, case)
                counts.add(case["label"], got)
                per_class.setdefault(case["class"], Counts()).add(case["label"], got)
                if got != case["label"]:
                    what = "missed" if case["label"] else "false alarm"
                    text = " / ".join(t["text"] for t in case["turns"])
                    wrong.append(f"  {label} {source} {case['id']} [{case['class']}] {what}: {text[:160]}")
            tally = f"{counts.tp}/{counts.fp}/{counts.fn}/{counts.tn}"
            n = f"{counts.n} ({counts.tp + counts.fn}+)"
            rows.append(
                [label, source, n, _fmt(counts.precision), _fmt(counts.recall), _fmt(counts.f1), tally]
            )
            for name, c in sorted(per_class.items(), key=lambda item: (item[1].accuracy, item[0])):
                if c.accuracy < 1.0:
                    ctally = f"{c.tp}/{c.fp}/{c.fn}/{c.tn}"
                    class_rows.append([label, source, name, f"{c.n}", f"{c.accuracy:.2f}", ctally])
            figures.setdefault(label, {})[source] = counts.as_dict()
    print_table(["label", "source", "cases", "precision", "recall", "F1", "TP/FP/FN/TN"], rows)
    if class_rows:
        print("\nclasses with errors:")
        print_table(["label", "source", "class", "cases", "accuracy", "TP/FP/FN/TN"], class_rows)
    if wrong and not args.quiet:
        print("\ncases got wrong:")
        print("\n".join(wrong))
    write_json(args.json, {"figures": figures})


if __name__ == "__main__":
    main()
