"""Retention on lm-eval tasks in the report: the row's summary over seeds, the table cell, the retention
axis of the stability–plasticity plot and of the interactive Pareto plot."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from peftbench.report import stability
from peftbench.report.benchmarks import lost, retention_summary, retention_text, unmeasured_retention
from peftbench.report.collect import RunGroup
from peftbench.report.explore import explore_data


def _run(method: str, seed: int, accuracy: float, change: float | None, **task) -> dict:
    if change is None:
        return {"method": {"name": method}, "seed": seed, "metrics": {"test": {"accuracy": accuracy}}}
    scored = {
        "metric": "acc",
        "higher_is_better": True,
        "before": 0.5,
        "after": 0.5 + change,
        "change": change,
        "change_ci95_low": change - 0.1,
        "change_ci95_high": change + 0.1,
        "seconds": 2.0,
        **task,
    }
    return {
        "method": {"name": method},
        "seed": seed,
        "metrics": {"test": {"accuracy": accuracy}},
        "efficiency": {"trainable_params": 100},
        "retention": {"tasks": {"mmlu": scored}, "reason": None},
    }


@pytest.fixture
def groups() -> list[RunGroup]:
    return [
        RunGroup("full", [_run("full", 1, 0.90, -0.20), _run("full", 2, 0.88, -0.10)]),
        RunGroup("lora", [_run("lora", 1, 0.85, -0.02)]),
        RunGroup("head", [_run("head", 1, 0.70, None)]),
    ]


def test_one_seed_keeps_its_paired_interval_several_get_a_t_interval(groups):
    one = retention_summary(groups[1])["retention"]["mmlu"]
    assert (one["change_ci95_low"], one["change_ci95_high"]) == pytest.approx((-0.12, 0.08))
    two = retention_summary(groups[0])["retention"]["mmlu"]
    changes = np.array([-0.20, -0.10])
    half = scipy_stats.t.ppf(0.975, 1) * changes.std(ddof=1) / np.sqrt(2)
    assert two["change"] == pytest.approx(-0.15)
    assert (two["change_ci95_low"], two["change_ci95_high"]) == pytest.approx((-0.15 - half, -0.15 + half))
    assert retention_summary(groups[2]) == {"retention": None}


def test_the_table_cell_reads_before_after_and_change(groups):
    row = retention_summary(groups[1])
    assert retention_text(row) == "mmlu acc 0.5 → 0.48 (-0.02 [-0.12, +0.08])"
    assert retention_text({"retention": None}) == "–"


def test_lost_follows_the_metrics_direction():
    assert lost(_run("lora", 1, 0.8, -0.02), "mmlu") == pytest.approx(0.02)
    assert lost(_run("lora", 1, 0.8, 0.3, higher_is_better=False), "mmlu") == pytest.approx(0.3)
    assert lost(_run("lora", 1, 0.8, None), "mmlu") is None


def test_retention_is_an_axis_of_the_tradeoff_and_pareto_plots(groups):
    assert stability.tradeoff_plot(groups, "accuracy", "mmlu").startswith(b"\x89PNG")
    assert stability.tradeoff_plot(groups, "accuracy", "arc_easy") is None  # no run scored it
    data = explore_data(groups, ["accuracy"])
    axis = next(m for m in data["metrics"] if m["key"] == "retention_mmlu")
    assert axis["higher"] is True and "mmlu acc" in axis["label"]
    means = {p["run"]: p for p in data["points"] if p["kind"] == "mean"}
    assert means["full"]["retention_mmlu"] == pytest.approx(-0.15)
    assert means["head"]["retention_mmlu"] is None
    assert "retention_mmlu|accuracy" in means["lora"]["front"]  # lost least, more accurate than head


def test_runs_without_retention_are_named_with_the_reason():
    classifier = {"method": {"name": "full"}, "retention": {"tasks": None, "reason": "no LM head"}}
    assert unmeasured_retention([RunGroup("full", [classifier])]) == [
        "retention not measured for full: no LM head"
    ]
