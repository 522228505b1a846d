"""Cohen's kappa and the per-metric calibration, against examples worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from convoscope.evals.calibration import attach_calibration, cohen_kappa
from convoscope.review.calibration import agreement_settings, calibrate_labels
from convoscope.store.reviews_meta import StoredLabel

from .conftest import result

AT = datetime(2026, 3, 2, tzinfo=UTC)


def _label(
    call: str, verdict: str | None, passed: bool | None, *, metric: str = "csat", **more: Any
) -> StoredLabel:
    judge: dict[str, Any] = (
        {} if passed is None and "judge" not in more else {"passed": passed, "version": "2"}
    )
    return StoredLabel(
        id=call,
        call_id=call,
        metric=metric,
        reviewer_id=more.get("reviewer", "k1"),
        reviewer_name="alice",
        verdict=verdict,
        value=more.get("value"),
        note="",
        rule="low_score",
        judge={**judge, **more.get("judge", {})},
        created_at=AT,
        updated_at=None,
    )


def test_kappa_matches_the_hand_worked_example() -> None:
    """10 calls: both pass 4, both fail 3, person pass / judge fail 2, person fail / judge pass 1.

    p_o = 7/10 = 0.7. The person says pass 6 times, the judge 5 times, so by chance they agree
    p_e = (6*5 + 4*5) / 100 = 0.5; kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
    """
    pairs = [("pass", "pass")] * 4 + [("fail", "fail")] * 3 + [("pass", "fail")] * 2 + [("fail", "pass")] * 1
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    labels = [_label(f"c{i}", h, j == "pass") for i, (h, j) in enumerate(pairs)]
    (csat,) = calibrate_labels(labels, {"csat": "judge"})
    assert csat.status == "calibrated" and csat.kappa == pytest.approx(0.4)
    assert csat.agreement == pytest.approx(0.7) and csat.compared == 10 and csat.calls == 10
    assert csat.confusion == {"fail": {"fail": 3, "pass": 1}, "pass": {"fail": 2, "pass": 4}}


def test_perfect_and_chance_level_agreement() -> None:
    assert cohen_kappa([("pass", "pass"), ("fail", "fail")]) == pytest.approx(1.0)
    # Both raters split 50/50 but never agree: p_o = 0, p_e = 0.5, kappa = -1.
    assert cohen_kappa([("pass", "fail"), ("fail", "pass")]) == pytest.approx(-1.0)
    # The judge always fails; the person fails one of two: p_o = 0.5, p_e = 0.5, kappa = 0.
    assert cohen_kappa([("fail", "fail"), ("pass", "fail")]) == pytest.approx(0.0)


def test_unlabelled_judges_are_uncalibrated_and_one_sided_pairs_undefined() -> None:
    labels = [
        _label("a", "fail", False),
        _label("b", "fail", False),  # one label on both sides: chance agreement is total
        _label("c", None, True, metric="latency", value=1.5, judge={"value": 2.0}),
        _label("d", "pass", None, metric="relevancy"),  # no verdict of the judge to compare
    ]
    rows = {row.metric: row for row in calibrate_labels(labels, {}, always=["hallucination", "csat"])}
    assert rows["csat"].status == "undefined" and rows["csat"].kappa is None and rows["csat"].compared == 2
    assert rows["hallucination"].status == "uncalibrated" and rows["hallucination"].labels == 0
    assert rows["latency"].status == "uncalibrated" and rows["latency"].mean_abs_diff == pytest.approx(0.5)
    assert rows["relevancy"].status == "uncalibrated" and rows["relevancy"].labels == 1


def test_the_stored_agreement_is_what_results_carry() -> None:
    labels = [_label("a", "pass", True), _label("b", "fail", False), _label("c", "pass", False)]
    (csat,) = calibrate_labels(labels, {"csat": "judge"})
    kept = agreement_settings(csat, AT)
    assert kept["kappa"] == pytest.approx(0.4, abs=1e-6) and kept["source"] == "review" and kept["n"] == 3
    (attached,) = attach_calibration([result("a", "csat", 4.0, True)], {"calibration": {"csat": kept}})
    assert attached.evidence["calibration"] == kept
