import math

import numpy as np
import pytest

from peftbench.metrics.stats import (
    accuracy_resolution,
    degenerate_warnings,
    mcnemar,
    paired_bootstrap,
    summarize,
)


def test_summary_matches_hand_computed_t_interval():
    summary = summarize([1.0, 2.0, 3.0])
    assert summary["mean"] == 2.0 and summary["std"] == 1.0
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, df=2) * std / sqrt(n)
    assert summary["ci95_low"] == pytest.approx(2 - half) and summary["ci95_high"] == pytest.approx(2 + half)
    assert summarize([0.5])["std"] is None and summarize([])["mean"] is None


def test_exact_mcnemar_matches_binomial_tail():
    reference = np.array([True] * 10 + [False] * 2 + [True] * 5)
    run = np.array([False] * 10 + [True] * 2 + [True] * 5)
    result = mcnemar(reference, run)
    # 12 discordant pairs, 2 in the run's favour: p = 2 * (C(12,0)+C(12,1)+C(12,2)) / 2^12
    assert result["only_reference_right"] == 10 and result["only_run_right"] == 2
    assert result["p"] == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert mcnemar(reference, reference)["p"] == 1.0


def test_paired_bootstrap_separates_real_from_no_difference():
    truth = np.array([1, 0] * 50)
    good = truth.copy()
    bad = truth.copy()
    bad[:40] = 1 - bad[:40]

    def accuracy(predictions):
        return lambda idx: float((predictions[idx] == truth[idx]).mean())

    clear = paired_bootstrap(accuracy(good), accuracy(bad), len(truth), seed=1)
    assert clear["difference"] == pytest.approx(0.4) and clear["p"] < 0.01
    assert clear["ci95_low"] > 0
    same = paired_bootstrap(accuracy(good), accuracy(good), len(truth), seed=1)
    assert same["difference"] == 0 and same["p"] == 1.0


def test_accuracy_resolution():
    assert accuracy_resolution(0.5, 100) == pytest.approx(1.96 * 0.05)


def _result(matrix, losses, method="lora"):
    return {
        "method": {"name": method},
        "confusion_matrix": {"labels": ["neg", "pos"], "rows_true_cols_pred": matrix},
        "history": [{"train_loss": v} for v in losses],
    }


def test_degenerate_results_are_flagged():
    assert "predicts only 'pos'" in degenerate_warnings(_result([[0, 6], [0, 4]], [1.0, 0.8]))[0]
    assert degenerate_warnings(_result([[0, 6], [0, 4]], [], method="majority")) == []
    assert "NaN" in degenerate_warnings(_result([[3, 3], [1, 3]], [1.0, float("nan")]))[0]
    assert "diverged" in degenerate_warnings(_result([[3, 3], [1, 3]], [1.0, 2.0]))[0]
    assert degenerate_warnings(_result([[3, 3], [1, 3]], [1.0, 0.7])) == []


def test_summary_skips_missing_values_and_scales_the_interval_by_the_std():
    assert summarize([]) == {"n": 0, "mean": None, "std": None, "ci95_low": None, "ci95_high": None}
    assert summarize([0.5, None]) == {"n": 1, "mean": 0.5, "std": None, "ci95_low": None, "ci95_high": None}
    summary = summarize([1.0, float("nan"), 3.0, None, 8.0])
    std = math.sqrt(((1 - 4) ** 2 + (3 - 4) ** 2 + (8 - 4) ** 2) / 2)  # sample std of 1, 3, 8
    half = 4.302652729911275 * std / math.sqrt(3)
    assert summary == pytest.approx(
        {"n": 3, "mean": 4.0, "std": std, "ci95_low": 4 - half, "ci95_high": 4 + half}
    )


def test_mcnemar_takes_0_and_1_as_wrong_and_right():
    reference = np.array([1] * 10 + [0] * 2 + [1] * 5)
    run = np.array([0] * 10 + [1] * 2 + [1] * 5)
    assert mcnemar(reference, run) == {
        "test": "exact McNemar",
        "only_reference_right": 10,
        "only_run_right": 2,
        "p": pytest.approx(2 * (1 + 12 + 66) / 4096),
    }


def _accuracies(flipped: int, size: int = 100):
    """Accuracy functions of a perfect run and of one wrong on the first `flipped` examples."""
    truth = np.array([1, 0] * (size // 2))
    worse = truth.copy()
    worse[:flipped] = 1 - worse[:flipped]

    def accuracy(predictions):
        return lambda idx: float((predictions[idx] == truth[idx]).mean())

    return accuracy(truth), accuracy(worse)


def test_paired_bootstrap_interval_is_the_binomial_one():
    # The run beats the reference on exactly 40 of 100 examples and ties elsewhere, so a resample's
    # difference is (resampled copies of those 40) / 100 ~ Binomial(100, 0.4) / 100.
    good, bad = _accuracies(40)
    result = paired_bootstrap(good, bad, 100, resamples=20000, seed=1)
    assert result["ci95_low"] == pytest.approx(0.31) and result["ci95_high"] == pytest.approx(0.50)
    assert result["test"] == "paired bootstrap over 100 examples (20000 resamples)"
    worse = paired_bootstrap(bad, good, 100, resamples=2000, seed=1)  # the other way round
    assert worse["difference"] == pytest.approx(-0.4) and worse["p"] < 0.01
    assert worse["ci95_high"] == pytest.approx(-0.31, abs=0.011)
    assert (
        paired_bootstrap(good, bad, 100, unit="prompts")["test"]
        == "paired bootstrap over 100 prompts (1000 resamples)"
    )


def test_paired_bootstrap_p_counts_ties_with_zero():
    # One example of ten in the run's favour: a resample shows no difference when it misses that
    # example, probability 0.9^10, so p = 2 * 0.9^10 (ties count against the run).
    good, bad = _accuracies(1, size=10)
    result = paired_bootstrap(good, bad, 10, resamples=20000, seed=1)
    assert result["difference"] == pytest.approx(0.1)
    assert result["p"] == pytest.approx(2 * 0.9**10, abs=0.02)
    reverse = paired_bootstrap(bad, good, 10, resamples=20000, seed=1)
    assert reverse["p"] == pytest.approx(2 * 0.9**10, abs=0.02)
    assert paired_bootstrap(good, bad, 10) == paired_bootstrap(good, bad, 10)  # seeded by default


def test_degenerate_warning_thresholds():
    assert degenerate_warnings(_result([[5, 1], [4, 0]], [1.0, 0.8])) == []  # 'neg' predicted once
    assert degenerate_warnings(_result([[3, 3], [1, 3]], [1.0, 2.0, 1.2])) == []  # judged on the last
    assert degenerate_warnings(_result([[3, 3], [1, 3]], [1.0, 1.5])) == []  # 1.5x is the limit
    assert degenerate_warnings(_result([[3, 3], [1, 3]], [2.0, 2.5])) == []
    assert degenerate_warnings(_result([[3, 3], [1, 3]], [1.0, 1.2, 2.0])) == [
        "training loss diverged (1 -> 2)"
    ]
    assert degenerate_warnings(_result([[3, 3], [1, 3]], [1.0, float("inf")])) == [
        "training loss became NaN or infinite"
    ]
