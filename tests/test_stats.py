import math

import numpy as np
import pytest

from peftbench.stats import accuracy_resolution, degenerate_warnings, mcnemar, paired_bootstrap, summarize


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
