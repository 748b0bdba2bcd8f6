"""Report pieces that depend on how the data was split: same-fraction references, duplicate warnings."""

import json

from peftbench.data.splits import share
from peftbench.report.collect import RunGroup, data_warnings
from peftbench.report.summary import summary_rows
from peftbench.report.verdict import verdict


def _cell(tmp_path, name, method, fraction, correct, duplicates=0):
    folder = tmp_path / name
    folder.mkdir()
    rows = [{"label": "a", "prediction": "a" if ok else "b"} for ok in correct]
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = {"data_fraction": fraction, "sizes": {"test": len(rows)}, "train_test_duplicates": duplicates}
    run = {
        "method": {"name": method},
        "kind": "method",
        "seed": 1,
        "metrics": {"test": {"accuracy": sum(correct) / len(correct)}},
        "efficiency": {},
        "data": data,
        "_dir": str(folder),
    }
    return RunGroup(name, [run])


def test_each_cell_is_compared_with_the_reference_at_its_own_fraction(tmp_path):
    right = [True] * 8 + [False] * 2
    cells = [
        _cell(tmp_path, "full@frac0.5", "full", 0.5, right),
        _cell(tmp_path, "full@frac1", "full", 1.0, [True] * 10),
        _cell(tmp_path, "lora@frac0.5", "lora", 0.5, right),
        _cell(tmp_path, "lora@frac1", "lora", 1.0, [True] * 10),
    ]
    rows = {r["run"]: r for r in summary_rows(cells, cells[0], ["accuracy"], "classification")}
    assert rows["lora@frac0.5"]["delta_accuracy"] == 0 and rows["lora@frac1"]["delta_accuracy"] == 0
    assert rows["lora@frac0.5"]["reference_p"] == 1.0 and rows["lora@frac1"]["reference_p"] == 1.0
    sentences = verdict(list(rows.values()), "accuracy", "classification")
    assert any(
        s.startswith("**lora@frac1**") and "reaches 100.0% of full@frac1's accuracy" in s for s in sentences
    )


def test_runs_at_different_fractions_are_never_paired(tmp_path):
    from peftbench.report.collect import paired_test

    mine = _cell(tmp_path, "lora@frac0.5", "lora", 0.5, [True] * 10)
    other = _cell(tmp_path, "full@frac1", "full", 1.0, [False] * 10)
    assert paired_test(mine, other, "classification") is None


def test_train_test_duplicates_become_one_warning(tmp_path):
    cells = [
        _cell(tmp_path, "full", "full", 1.0, [True] * 10, duplicates=1),
        _cell(tmp_path, "lora", "lora", 1.0, [True] * 10, duplicates=1),
    ]
    assert data_warnings(cells) == [
        "data: 1 of 10 test examples also occur in the train split (exact duplicate inputs), "
        "so their scores can reflect memorisation"
    ]


def test_a_split_short_of_its_share_becomes_one_report_warning(tmp_path):
    cells = [
        _cell(tmp_path, "full", "full", 0.5, [True] * 10),
        _cell(tmp_path, "lora", "lora", 0.5, [True] * 10),
    ]
    for cell in cells:
        cell.runs[0]["data"]["shares"] = {
            "train": share(10, 100, 50),
            "test": share(10, 10, 10),
        }
    assert data_warnings(cells) == [
        "data (data fraction 0.5): train split kept 10 of 100 rows (10.0%) where data_fraction and the caps "
        "asked for 50 (50.0%): its inputs come in groups of repeated rows too large to fit; deduplicate the "
        "data or change the fraction"
    ]


def test_prompts_cut_to_nothing_become_a_report_warning(tmp_path):
    cell = _cell(tmp_path, "full", "full", 1.0, [True] * 10)
    cell.runs[0]["data"]["dropped_prompts"] = {"train": 3, "validation": 0, "test": 0, "generation": 0}
    assert data_warnings([cell]) == [
        "data: 3 train prompts kept none of their tokens (the target took the context)"
    ]


def _seeded(tmp_path, name, method, outcomes_per_seed):
    tmp_path.mkdir(exist_ok=True)
    runs = []
    for seed, correct in enumerate(outcomes_per_seed, start=1):
        runs.append(_cell(tmp_path, f"{name}@seed{seed}", method, 1.0, correct).runs[0] | {"seed": seed})
    return RunGroup(name, runs)


def test_repeated_seeds_never_count_as_more_test_examples(tmp_path):
    """Every seed is tested on the same examples: three identical seeds carry the evidence of one."""
    from peftbench.report.collect import paired_test

    run = [True] * 14 + [False] * 6
    reference = [True] * 8 + [False] * 12
    one = paired_test(
        _seeded(tmp_path / "a", "lora", "lora", [run]),
        _seeded(tmp_path / "a", "full", "full", [reference]),
        "classification",
    )
    three = paired_test(
        _seeded(tmp_path / "b", "lora", "lora", [run] * 3),
        _seeded(tmp_path / "b", "full", "full", [reference] * 3),
        "classification",
    )
    assert one["test"] == "exact McNemar" and one["examples"] == 20 and one["seeds"] == 1
    assert three["examples"] == 20 and three["seeds"] == 3 and "bootstrap" in three["test"]
    # Pooling the three seeds as 60 independent pairs would make the same 6 discordant pairs look like
    # 18 and the difference look far more certain than one seed's evidence allows.
    import numpy as np

    from peftbench.metrics.stats import paired_bootstrap

    run_array, reference_array = np.array(run), np.array(reference)
    one_seed = paired_bootstrap(lambda i: run_array[i].mean(), lambda i: reference_array[i].mean(), 20)
    assert three["p"] == one_seed["p"] > 0 and three["difference"] == one_seed["difference"]
    assert (three["ci95_low"], three["ci95_high"]) == (one_seed["ci95_low"], one_seed["ci95_high"])


def test_macro_f1_paired_test_scores_sklearns_macro_f1(tmp_path):
    """The baseline test for classification: a paired bootstrap of macro-F1, equal to sklearn's on the
    same predictions; a model that learned the minority classes beats a one-class predictor on it even
    where accuracy ties."""
    import numpy as np
    from sklearn.metrics import f1_score

    from peftbench.report.collect import paired_test

    labels = ["pos"] * 30 + ["neg"] * 10
    learned = ["pos"] * 24 + ["neg"] * 6 + ["neg"] * 6 + ["pos"] * 4  # 30/40 right, both classes
    majority = ["pos"] * 40  # 30/40 right
    groups = []
    for name, predicted in (("lora", learned), ("baseline-majority", majority)):
        folder = tmp_path / name
        folder.mkdir()
        rows = [{"label": a, "prediction": b} for a, b in zip(labels, predicted, strict=True)]
        (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        run = {"method": {"name": name}, "seed": 1, "data": {"data_fraction": 1.0}, "_dir": str(folder)}
        groups.append(RunGroup(name, [run]))
    test = paired_test(*groups, "classification", "f1_macro")
    expected = f1_score(labels, learned, average="macro") - f1_score(
        labels, majority, average="macro", zero_division=0
    )
    assert test["metric"] == "f1_macro" and "bootstrap" in test["test"]
    assert np.isclose(test["difference"], expected) and expected > 0.25
    assert test["p"] < 0.05 and test["ci95_low"] > 0
    assert paired_test(*groups, "classification")["p"] == 1.0  # accuracy: 30 vs 30, McNemar sees a tie


def test_macro_f1_of_the_bootstrap_equals_sklearns_on_every_resample_even_with_absent_classes():
    """The bootstrap scores macro-F1 with two counts per class instead of sklearn's f1_score (which
    made the classification report take ~20 s); sklearn, given the same labels, is the yardstick."""
    import numpy as np
    from sklearn.metrics import f1_score

    from peftbench.metrics.metrics import macro_f1

    rng = np.random.default_rng(0)
    truth, predictions = rng.integers(0, 3, 60), rng.integers(0, 4, 60)  # class 3: predicted, never true
    predictions[:20] = truth[:20]
    for _ in range(200):
        i = rng.integers(0, 60, int(rng.integers(1, 60)))
        expected = f1_score(truth[i], predictions[i], labels=range(5), average="macro", zero_division=0)
        assert np.isclose(macro_f1(truth[i], predictions[i], 5), expected)


def test_perplexity_paired_test_resamples_examples_of_the_target_loss_file(tmp_path):
    """Language tasks' baseline test: corpus perplexity, exp(sum of losses / sum of tokens), on the same
    resampled test examples of both runs."""
    import numpy as np

    from peftbench.report.collect import paired_test
    from peftbench.tasks.language import TARGET_LOSSES_FILE

    rng = np.random.default_rng(0)
    tokens = rng.integers(5, 30, 40)
    tuned, zero_shot = tokens * rng.uniform(3.2, 3.6, 40), tokens * rng.uniform(3.7, 4.1, 40)
    groups = []
    for name, sums in (("full", tuned), ("baseline-untrained", zero_shot)):
        folder = tmp_path / name
        folder.mkdir()
        rows = [
            {"index": i, "nll_sum": float(s), "target_tokens": int(t)}
            for i, (s, t) in enumerate(zip(sums, tokens, strict=True))
        ]
        (folder / TARGET_LOSSES_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
        run = {"method": {"name": name}, "seed": 1, "data": {"data_fraction": 1.0}, "_dir": str(folder)}
        groups.append(RunGroup(name, [run]))
    test = paired_test(*groups, "generation", "perplexity")
    expected = np.exp(tuned.sum() / tokens.sum()) - np.exp(zero_shot.sum() / tokens.sum())
    assert test["metric"] == "perplexity" and np.isclose(test["difference"], expected) and expected < -5
    assert test["p"] < 0.001 and test["ci95_high"] < 0
    assert paired_test(groups[0], groups[0], "generation", "perplexity")["p"] == 1.0
    assert paired_test(*groups, "causal_lm") is None  # accuracy: no per-example outputs to pair
