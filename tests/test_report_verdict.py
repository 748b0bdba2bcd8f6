"""The verdict, the tables and the Pareto plot on synthetic summary rows: what the numbers support."""

import re
from html import escape

from peftbench.report.model import Report
from peftbench.report.plots import frontier_to_draw
from peftbench.report.render import html, markdown, sections
from peftbench.report.verdict import verdict


def _row(run, value, *, kind="method", metric="accuracy", baseline=None, seeds=1, **extra):
    """A summary row as report.summary builds it; baseline = (name, value, p)."""
    name, base_value, base_p = baseline or (None, None, None)
    return {
        "run": run,
        "method": run.removeprefix("baseline-"),
        "kind": kind,
        "seeds": seeds,
        metric: value,
        f"{metric}_std": None,
        f"{metric}_ci95_low": None,
        f"{metric}_ci95_high": None,
        f"delta_{metric}": None,
        "reference": extra.pop("reference", "full"),
        "reference_p": extra.pop("reference_p", None),
        "reference_test": "exact McNemar",
        "paired_test": None,
        "baseline": name,
        "baseline_p": base_p,
        "baseline_test": "exact McNemar",
        "baseline_value": base_value,
        "trainable_params": extra.pop("trainable_params", None),
        "trainable_percent": None,
        "fewer_trainable_x": None,
        "artifact_mb": None,
        "train_seconds": extra.pop("train_seconds", None),
        "peak_rss_above_start_mb": extra.pop("peak_rss_above_start_mb", None),
        "learning_rate": None,
        "head_learning_rate": None,
        "forgetting": extra.pop("forgetting", None),
        "forgetting_metric": extra.pop("forgetting_metric", None),
        **extra,
    }


MAJORITY = ("baseline-majority", 0.617, None)


def test_a_method_at_the_majority_baseline_did_not_learn():
    rows = [
        _row("baseline-majority", 0.617, kind="baseline"),
        _row("full", 0.617, baseline=(*MAJORITY[:2], 1.0), trainable_params=1e7),
        _row("ia3", 0.617, baseline=(*MAJORITY[:2], 1.0), reference_p=1.0, trainable_params=1e4),
    ]
    lines = verdict(rows, "accuracy", "classification")
    ia3 = next(s for s in lines if s.startswith("**ia3**"))
    assert "did not learn beyond the majority class" in ia3 and "%" not in ia3
    assert lines[0].startswith("Recommendation: none yet")
    assert "Best quality: none" in " ".join(lines)
    assert "**ia3** (10,000) (but it did not learn beyond the baselines)" in " ".join(lines)


def test_numbers_at_the_noise_floor_get_no_percentage():
    zero_shot = ("baseline-untrained", 0.01, None)
    rows = [
        _row("baseline-untrained", 0.01, kind="baseline", metric="bleu"),
        _row("full", 0.06405, metric="bleu", baseline=(*zero_shot[:2], 0.01)),
        _row("lora", 0.04093, metric="bleu", baseline=(*zero_shot[:2], 0.02), reference_p=0.3),
    ]
    lora = next(s for s in verdict(rows, "bleu", "generation") if s.startswith("**lora**"))
    assert "learned beyond the zero-shot model" in lora
    assert "%" not in lora and "has bleu 0.04093 against full's 0.06405" in lora


def test_a_share_of_the_reference_needs_both_runs_off_the_noise_floor():
    rows = [
        _row("full", 0.9, baseline=(*MAJORITY[:2], 0.001)),
        _row("lora", 0.85, baseline=(*MAJORITY[:2], 0.001), reference_p=0.01),
    ]
    lora = next(s for s in verdict(rows, "accuracy", "classification") if s.startswith("**lora**"))
    assert "reaches 94.4% of full's accuracy (0.85 vs 0.9); difference significant, p=0.01" in lora


def test_a_reference_that_did_not_learn_gives_no_share():
    rows = [
        _row("full", 0.617, baseline=(*MAJORITY[:2], 1.0)),
        _row("lora", 0.8, baseline=(*MAJORITY[:2], 0.001), reference_p=0.001),
    ]
    lora = next(s for s in verdict(rows, "accuracy", "classification") if s.startswith("**lora**"))
    assert "the reference full did not, so no share of it is given" in lora and "%" not in lora


def test_a_clear_winner_is_named_per_criterion_and_recommended():
    rows = [
        _row("baseline-majority", 0.6, kind="baseline"),
        _row(
            "full",
            0.9,
            baseline=(*MAJORITY[:2], 0.001),
            seeds=3,
            trainable_params=1e8,
            train_seconds=100.0,
            peak_rss_above_start_mb=4000.0,
            forgetting=-0.2,
            forgetting_metric="accuracy",
        ),
        _row(
            "lora",
            0.89,
            baseline=(*MAJORITY[:2], 0.001),
            seeds=3,
            reference_p=0.4,
            trainable_params=1e5,
            train_seconds=60.0,
            peak_rss_above_start_mb=2000.0,
            forgetting=-0.01,
            forgetting_metric="accuracy",
        ),
        _row(
            "bitfit",
            0.7,
            baseline=(*MAJORITY[:2], 0.001),
            seeds=3,
            reference_p=0.001,
            trainable_params=1e4,
            train_seconds=50.0,
            peak_rss_above_start_mb=1900.0,
        ),
    ]
    text = "\n".join(verdict(rows, "accuracy", "classification"))
    assert "Best quality: **full** (accuracy 0.9)" in text
    assert "Fewest trainable parameters: **bitfit**" in text and "Fastest training: **bitfit**" in text
    assert "Least forgetting among the methods that learned: **lora** (accuracy after − before -0.01)" in text
    assert text.startswith("Recommendation: **lora** (no significant accuracy difference from full")
    assert "3 seeds per method" in text


def test_the_recommendation_says_what_the_method_costs_against_the_best_and_how_sure_it_learned():
    rows = [
        _row("baseline-majority", 0.6, kind="baseline"),
        _row("full", 0.9, baseline=(*MAJORITY[:2], 0.0), trainable_params=22_713_986, train_seconds=200.0),
        _row(
            "ia3",
            0.89,
            baseline=(*MAJORITY[:2], 0.0004),
            reference_p=0.5,
            trainable_params=165_508,
            train_seconds=90.0,
        ),
    ]
    assert verdict(rows, "accuracy", "classification")[0].startswith(
        "Recommendation: **ia3** (no significant accuracy difference from full with fewer trainable "
        "parameters; it costs 165,508 trainable parameters (0.73% of full's) and 90 s of training (45% of "
        "full's); beyond the baselines at p<0.001; caveat: only 1 seed"
    )
    rows[2]["reference_p"] = 0.001  # significantly worse: full is recommended, its own costs plain
    assert verdict(rows, "accuracy", "classification")[0].startswith(
        "Recommendation: **full** (best quality; it costs 22,713,986 trainable parameters and 200 s of "
        "training; beyond the baselines at p<0.001; caveat"
    )
    rows[2].update(accuracy=0.95, reference_p=0.5)  # ia3 best: its costs against its reference, full
    assert (
        "(best quality; it costs 165,508 trainable parameters (0.73% of full's)"
        in verdict(rows, "accuracy", "classification")[0]
    )


def test_forgetting_in_a_lower_is_better_metric_prefers_the_smaller_rise():
    rows = [
        _row("full", 0.9, baseline=(*MAJORITY[:2], 0.001), forgetting=5.0, forgetting_metric="perplexity"),
        _row("lora", 0.9, baseline=(*MAJORITY[:2], 0.001), forgetting=0.5, forgetting_metric="perplexity"),
        _row("ia3", 0.9, baseline=(*MAJORITY[:2], 0.001), forgetting=None),
    ]
    text = "\n".join(verdict(rows, "accuracy", "classification"))
    assert "Least forgetting among the methods that learned: **lora**" in text


def _report(rows):
    return Report(
        "t", "classification", "full", ["accuracy"], rows, verdict(rows, "accuracy", "classification"), []
    )


def test_markdown_and_html_print_the_same_verdict_and_tables():
    rows = [
        _row("baseline-majority", 0.6, kind="baseline"),
        _row("full", 0.9, baseline=(*MAJORITY[:2], 0.001)),
        _row("lora", 0.85, baseline=(*MAJORITY[:2], 0.2), reference_p=0.03),
    ]
    report = _report(rows)
    text, page = markdown(report, {}), html(report)
    for sentence in report.verdict:
        assert f"- {sentence}" in text
        assert re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escape(sentence)) in page
    for heading, table in sections(report):
        assert f"## {heading}" in text and f"<h2>{heading}</h2>" in page
        assert "| " + " | ".join(table.header) + " |" in text
        assert "".join(f"<th>{h}</th>" for h in table.header) in page
        for row in table.rows:
            assert "| " + " | ".join(c for c, _ in row) + " |" in text
        for note in [table.legend, *table.notes]:
            assert note in text and escape(note) in page
    assert "95% CI" not in sections(report)[0][1].header  # one seed: no interval to show
    lora = next(r for r in sections(report)[0][1].rows if r[0][0] == "lora")
    assert lora[-2] == ("✗", "p=0.03, exact McNemar against full") and lora[-1][0] == "≈"
    assert "<td title='p=0.03, exact McNemar against full'>✗</td>" in page


def test_a_frontier_of_one_point_is_not_drawn_and_the_rest_are_dominated():
    line, dominated = frontier_to_draw([(10, 0.9), (100, 0.8), (1000, 0.7)], higher=True)
    assert line == [] and dominated == [1, 2]
    line, dominated = frontier_to_draw([(10, 0.7), (100, 0.9), (50, 0.6)], higher=True)
    assert line == [0, 1] and dominated == [2]


def test_a_lead_over_the_baseline_within_noise_is_not_learning():
    by_test = _row("lora", 0.64, baseline=(*MAJORITY[:2], 0.4))
    by_interval = _row(
        "ia3", 0.64, seeds=3, baseline=MAJORITY, accuracy_ci95_low=0.6, accuracy_ci95_high=0.68
    )
    clear = _row("full", 0.64, seeds=3, baseline=MAJORITY, accuracy_ci95_low=0.63, accuracy_ci95_high=0.65)
    lines = verdict([by_test, by_interval, clear], "accuracy", "classification")
    assert "**lora** did not learn beyond the majority class (accuracy 0.64 vs 0.617, p=0.4)." in lines
    assert any(s.startswith("**ia3** did not learn beyond the majority class") for s in lines)
    assert any(s.startswith("**full** learned beyond the majority class") for s in lines)


def test_logged_steps_keep_every_logging_step_and_evaluation_and_drop_the_summary():
    from peftbench.training.training_log import logged_steps

    log_history = [
        {"loss": 1.0, "grad_norm": 2.0, "learning_rate": 1e-3, "epoch": 0.5, "step": 10},
        {"loss": 0.8, "epoch": 1.0, "step": 20},
        {"eval_loss": 0.9, "eval_accuracy": 0.7, "eval_runtime": 1.2, "epoch": 1.0, "step": 20},
        {"train_runtime": 30.0, "train_loss": 0.9, "epoch": 1.0, "step": 20},
    ]
    assert logged_steps(log_history) == [
        {"step": 10, "epoch": 0.5, "train_loss": 1.0},
        {"step": 20, "epoch": 1.0, "train_loss": 0.8},
        {"step": 20, "epoch": 1.0, "validation_loss": 0.9, "validation_accuracy": 0.7},
    ]


def test_the_epoch_view_is_drawn_only_for_several_epochs():
    from peftbench.report.collect import RunGroup
    from peftbench.report.plots import epoch_curves, loss_curves

    steps = [{"step": 10, "train_loss": 1.0}, {"step": 20, "train_loss": 0.8, "validation_loss": 0.9}]
    one = [RunGroup("lora", [{"logged_steps": steps, "history": [{"epoch": 1, "train_loss": 0.9}]}])]
    two = [RunGroup("lora", [{"logged_steps": steps, "history": [{"epoch": 1}, {"epoch": 2}]}])]
    assert loss_curves(one).startswith(b"\x89PNG") and epoch_curves(one) is None
    assert epoch_curves(two).startswith(b"\x89PNG")


def test_a_winner_near_zero_is_named_but_not_recommended():
    zero_shot = ("baseline-untrained", 0.1465, 0.0)
    rows = [
        _row("full", 0.5328, metric="bleu", baseline=zero_shot, trainable_params=1e8),
        _row("lora", 0.2431, metric="bleu", baseline=(*zero_shot[:2], 0.27), reference_p=0.25),
    ]
    lines = verdict(rows, "bleu", "generation")
    assert lines[0].startswith(
        "Recommendation: none yet; **full** learned beyond the baselines, but its bleu"
    )
    assert "Best quality: **full** (bleu 0.5328, near zero on its 0-100 scale)." in lines
    assert "**full** learned beyond the zero-shot model (bleu 0.5328 vs 0.1465, p<0.001)." in lines


def test_report_modules_import_on_their_own():
    """No import circle: each module loads first in a fresh interpreter."""
    import subprocess
    import sys

    for module in ("report.render", "report.tables", "report.verdict", "report.compare", "report"):
        done = subprocess.run([sys.executable, "-c", f"import peftbench.{module}"], capture_output=True)
        assert done.returncode == 0, done.stderr.decode()[-500:]


def test_learning_is_judged_on_the_rows_baseline_metric():
    # accuracy ties the majority class on skewed labels, macro-F1 does not: the row's baseline metric decides
    untrained = ("baseline-untrained", 0.3076, 0.0005)
    rows = [
        _row("baseline-majority", 0.6544, kind="baseline"),
        _row("full", 0.7256, baseline=untrained, baseline_metric="f1_macro", f1_macro=0.4911),
        _row(
            "lora",
            0.6887,
            baseline=untrained,
            baseline_metric="f1_macro",
            f1_macro=0.4814,
            reference_p=0.065,
            trainable_params=2e5,
        ),
        _row("flat", 0.6544, baseline=(untrained[0], 0.3076, 1.0), baseline_metric="f1_macro", f1_macro=0.26),
    ]
    seeded = _row("ia3", 0.68, baseline=(untrained[0], 0.3076, None), baseline_metric="f1_macro", seeds=3)
    seeded |= {"f1_macro": 0.48, "f1_macro_ci95_low": 0.45, "f1_macro_ci95_high": 0.51}  # no paired test
    rows.append(seeded)
    lines = verdict(rows, "accuracy", "classification")
    assert any(s.startswith("**ia3** learned beyond the untrained model (f1_macro 0.48") for s in lines)
    lora = next(s for s in lines if s.startswith("**lora**"))
    assert "learned beyond the untrained model (f1_macro 0.4814 vs 0.3076, p<0.001)" in lora
    assert "94.9% of full's accuracy" in lora
    flat = next(s for s in lines if s.startswith("**flat**"))
    assert "did not learn beyond the untrained model (f1_macro 0.26 vs 0.3076" in flat


def test_nist_and_cider_are_near_zero_on_their_own_scales():
    from peftbench.report.verdict import near_zero

    assert not near_zero(0.5, "nist") and not near_zero(0.5, "cider")  # 0.5 NIST is a score, not noise
    assert near_zero(0.05, "cider") and near_zero(0.5, "bleu")
