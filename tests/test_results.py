"""Summaries of a run's records, against values computed by hand."""

from __future__ import annotations

import math

import pytest

from fomo_host.results import area_under, backward_transfer, drop_from_best, forgetting, summarise, trajectories, zero_shot_drop

GROUPS = {"adaptation": ["a", "b"], "zero_shot": ["z"]}


def record(task: int, scores: dict[str, float], trained: dict[str, int] | None = None) -> dict:
    a_ka = (scores["a"] + scores["b"]) / 2
    a_zs = scores["z"]
    result = {
        "task": task,
        "step": 10 * (task + 1),
        "samples_seen": 100 * (task + 1),
        "scores": scores,
        "A_KA": a_ka,
        "A_ZS": a_zs,
        "GM": math.sqrt(a_ka * a_zs),
        "groups": GROUPS,
    }
    if trained is not None:
        result["task_datasets"] = trained
    return result


# a: trained in tasks 0 and 1; b: trained in task 2 (the last); z: zero-shot
RECORDS = [
    record(-1, {"a": 0.2, "b": 0.1, "z": 0.8}),
    record(0, {"a": 0.6, "b": 0.1, "z": 0.7}, {"a": 3}),
    record(1, {"a": 0.5, "b": 0.2, "z": 0.6}, {"a": 2}),
    record(2, {"a": 0.3, "b": 0.7, "z": 0.5}, {"b": 4}),
]


# a: first trained in task 1 (and again in 2), with a high base score it never learnt from; b: first trained in task 0;
# c: first trained in the final task 3; z: zero-shot
CHAUDHRY = [
    record(-1, {"a": 0.9, "b": 0.1, "c": 0.2, "z": 0.8}),
    record(0, {"a": 0.3, "b": 0.7, "c": 0.2, "z": 0.7}, {"b": 2}),
    record(1, {"a": 0.6, "b": 0.5, "c": 0.2, "z": 0.75}, {"a": 2}),
    record(2, {"a": 0.7, "b": 0.6, "c": 0.25, "z": 0.6}, {"a": 1}),
    record(3, {"a": 0.4, "b": 0.55, "c": 0.8, "z": 0.5}, {"c": 3}),
]


def test_forgetting_is_chaudhrys_best_score_since_first_trained_minus_final():
    # a: best after tasks 1-2 is 0.7 (not the base's 0.9), final 0.4; b: best after tasks 0-2 is 0.7, final 0.55;
    # c is first trained in the final task: no earlier evaluation, left out
    assert forgetting(CHAUDHRY, ["a", "b", "c"]) == pytest.approx({"a": 0.3, "b": 0.15})
    summary = summarise([dict(r, groups={"adaptation": ["a", "b", "c"], "zero_shot": ["z"]}) for r in CHAUDHRY])
    assert summary["forgetting"]["adaptation_mean"] == pytest.approx((0.3 + 0.15) / 2)
    assert "Chaudhry" in summary["forgetting"]["definition"]
    # the original records: a first trained in task 0, best 0.6 after it, final 0.3; b trained only in the final task
    assert forgetting(RECORDS, GROUPS["adaptation"]) == pytest.approx({"a": 0.3})
    assert forgetting(RECORDS[:2], GROUPS["adaptation"]) == {}


def test_zero_shot_sets_report_their_drop_from_the_base_model():
    assert zero_shot_drop(CHAUDHRY, ["z"]) == pytest.approx({"z": 0.8 - 0.5})
    assert zero_shot_drop(CHAUDHRY[:1], ["z"]) == {}


def test_drop_from_best_counts_every_earlier_evaluation_the_base_included():
    assert drop_from_best(CHAUDHRY) == pytest.approx({"a": 0.5, "b": 0.15, "c": -0.55, "z": 0.3})


def test_backward_transfer_compares_the_end_with_right_after_last_training():
    # a was last trained in task 1 (0.5 then) and ends at 0.3; b was trained in the final task: left out
    assert backward_transfer(RECORDS, GROUPS["adaptation"]) == pytest.approx({"a": -0.2})
    assert backward_transfer(RECORDS[:1], GROUPS["adaptation"]) == {}


def test_area_under_a_trajectory_is_per_task():
    # trapezoids over x = -1, 0, 1, 2 of 0.15, 0.35, 0.35, 0.5: (0.25 + 0.35 + 0.425) / 3
    values = [r["A_KA"] for r in RECORDS]
    assert area_under([-1, 0, 1, 2], values) == pytest.approx((0.25 + 0.35 + 0.425) / 3)
    assert area_under([-1, 0], [0.2, 0.4]) == pytest.approx(0.3)
    assert area_under([-1], [0.2]) == 0.2


def test_summary_collects_every_measure():
    summary = summarise(RECORDS)
    assert summary["tasks_done"] == 3 and summary["num_evaluations"] == 4
    a_ka = summary["A_KA"]
    assert a_ka["base"] == pytest.approx(0.15) and a_ka["final"] == pytest.approx(0.5)
    assert a_ka["mean"] == pytest.approx((0.35 + 0.35 + 0.5) / 3)
    assert a_ka["best"] == pytest.approx(0.5) and a_ka["change"] == pytest.approx(0.35)
    assert summary["A_ZS"]["auc"] == pytest.approx((0.75 + 0.65 + 0.55) / 3)
    assert summary["forgetting"]["adaptation_mean"] == pytest.approx(0.3)
    assert summary["zero_shot_drop"]["mean"] == pytest.approx(0.3)
    assert summary["drop_from_best"]["per_dataset"] == pytest.approx({"a": 0.3, "b": -0.5, "z": 0.3})
    assert set(summary["definitions"]) == {"mean", "auc", "best", "change"}
    assert summary["backward_transfer"]["mean"] == pytest.approx(-0.2)
    assert summary["stability_plasticity"] == pytest.approx({"delta_A_KA": 0.35, "delta_A_ZS": -0.3})
    assert summary["datasets"] == GROUPS
    assert summary["trajectories"]["scores"]["b"] == [0.1, 0.1, 0.2, 0.7]
    assert summary["trajectories"]["task"] == [-1, 0, 1, 2]


def test_trajectories_mark_a_dataset_missing_from_an_evaluation():
    records = [dict(RECORDS[0], scores={"a": 0.2}), RECORDS[1]]
    result = trajectories(records)
    assert result["scores"]["a"] == [0.2, 0.6]
    assert math.isnan(result["scores"]["z"][0])


def test_records_without_groups_still_summarise():
    records = [{key: value for key, value in r.items() if key != "groups"} for r in RECORDS]
    summary = summarise(records)
    assert summary["datasets"] == {"adaptation": [], "zero_shot": []}
    assert math.isnan(summary["forgetting"]["adaptation_mean"])
    assert summary["backward_transfer"]["mean"] is None
