"""Fair-comparison mode: search specs, choosing the best validation rate, and an end-to-end grid."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import _save_tiny, write_reviews
from rich.console import Console
from transformers import BertConfig, BertForSequenceClassification

from peftbench.config.search_config import LrSearchConfig
from peftbench.errors import PeftbenchError
from peftbench.execution.executor import run_grid
from peftbench.grid import lr_search
from peftbench.grid.grid import SEARCH_FOLDER
from peftbench.grid.halving import arrival_order, pruner_for, rung_step
from peftbench.inputs.experiment import build_config
from peftbench.report import build, write
from peftbench.results import results, run_folder


@pytest.fixture
def searched(experiment):
    experiment["lr_search"] = {"learning_rates": [1e-4, 1e-2], "max_train_samples": 24}
    experiment["seeds"] = [3, 4]
    return experiment


def test_search_specs_cover_every_method_and_rate_on_the_first_seed(searched):
    specs = lr_search.search_specs(build_config(searched))
    assert [s.name for s in specs] == ["full-lr0.0001", "full-lr0.01", "lora-lr0.0001", "lora-lr0.01"]
    assert {s.config.seed for s in specs} == {3}
    assert all(s.kind == "search" and s.config.data.max_train_samples == 24 for s in specs)
    assert specs[2].entry.learning_rate == 1e-4 and specs[2].entry.options["r"] == 4
    assert specs[0].folders([]) == [f"{SEARCH_FOLDER}/full-lr0.0001"]


def test_search_metric_must_be_a_validation_metric_of_the_task(searched):
    searched["lr_search"]["metric"] = "bleu"
    with pytest.raises(PeftbenchError, match="not a validation metric of task 'classification'"):
        build_config(searched)


def test_search_and_a_learning_rate_sweep_exclude_each_other(searched):
    searched["methods"][1]["sweep"] = {"learning_rate": [1e-3, 1e-2]}
    with pytest.raises(PeftbenchError, match="sweep learning_rate while lr_search picks it"):
        build_config(searched)


def _fake_trial(directory, name, rate, validation, status="complete"):
    folder = directory / SEARCH_FOLDER / f"{name}-lr{rate:g}"
    folder.mkdir(parents=True)
    run_folder.write_status(folder, status)
    record = {"validation": validation, "train_seconds": 1.0}
    (folder / lr_search.SEARCH_FILE).write_text(json.dumps(record))


def test_choose_picks_the_best_usable_rate_and_apply_drops_hopeless_methods(searched, tmp_path):
    searched["lr_search"]["learning_rates"] = [1e-4, 1e-3, 1e-2]
    searched["lr_search"]["metric"] = "accuracy"
    config = build_config(searched)
    _fake_trial(tmp_path, "full", 1e-4, {"accuracy": 0.6})
    _fake_trial(tmp_path, "full", 1e-3, {"accuracy": 0.8})
    _fake_trial(tmp_path, "full", 1e-2, {"accuracy": 0.9}, status="failed")  # failed runs never win
    _fake_trial(tmp_path, "lora", 1e-4, {"accuracy": math.nan})  # diverged
    summary = lr_search.pick_rates(tmp_path, config)
    assert summary["methods"]["full"]["chosen_learning_rate"] == 1e-3
    assert summary["methods"]["lora"]["chosen_learning_rate"] is None
    statuses = [t["status"] for t in summary["methods"]["lora"]["trials"]]
    assert statuses == ["diverged", "missing", "missing"]
    assert json.loads((tmp_path / lr_search.SUMMARY_FILE).read_text()) == summary
    final, failures = lr_search.with_chosen_rates(config, summary)
    assert [m.run_name for m in final.methods] == ["full"] and final.methods[0].learning_rate == 1e-3
    assert final.lr_search is None and len(failures) == 1 and failures[0].startswith("lora:")
    assert "full: lr 0.001" in lr_search.describe(summary)[0]


def test_lower_loss_wins_by_default(searched, tmp_path):
    config = build_config(searched)
    _fake_trial(tmp_path, "full", 1e-4, {"loss": 0.7})
    _fake_trial(tmp_path, "full", 1e-2, {"loss": 0.4})
    assert lr_search.pick_rates(tmp_path, config)["methods"]["full"]["chosen_learning_rate"] == 1e-2


@pytest.mark.slow
def test_grid_with_search_runs_final_runs_at_the_chosen_rates(searched, tmp_path):
    searched["methods"] = [{"method": "head"}, {"method": "lora", "r": 2, "target_modules": ["query"]}]
    searched["baselines"] = False
    searched["lr_search"]["strategy"] = "exhaustive"
    del searched["seeds"]
    directory, failed = run_grid(build_config(searched), inline=True, console=Console(quiet=True))
    assert failed == []
    summary = json.loads((directory / lr_search.SUMMARY_FILE).read_text())
    assert summary["strategy"] == "exhaustive" and "halving" not in summary
    assert summary["steps"]["spent"] == summary["steps"]["exhaustive"] == 2 * 2 * math.ceil(24 / 8)
    for name in ("head", "lora"):
        found = summary["methods"][name]
        assert [t["status"] for t in found["trials"]] == ["complete", "complete"]
        final = json.loads((directory / name / results.RESULT_FILE).read_text())
        assert final["training"]["learning_rate"] == found["chosen_learning_rate"]
        search = json.loads(
            (directory / SEARCH_FOLDER / f"{name}-lr0.01" / lr_search.SEARCH_FILE).read_text()
        )
        assert search["train_samples"] == 24 and "loss" in search["validation"]
    assert not (directory / SEARCH_FOLDER / "head-lr0.01" / results.RESULT_FILE).exists()  # not a final run
    report = build(directory)
    assert report.lr_search == summary and "Learning-rate search (validation split)" in report.figures
    markdown = write(report, tmp_path / "report")[0].read_text()
    assert "## Learning-rate search" in markdown and "★" in markdown
    assert (
        "Search: exhaustive (every rate trained all its epochs). It trained 12 optimizer steps, 100%"
        in markdown
    )


def test_search_strategy_is_halving_or_exhaustive(searched):
    assert build_config(searched).lr_search.strategy == "halving"
    searched["lr_search"]["strategy"] = "random"
    with pytest.raises(PeftbenchError, match="strategy"):
        build_config(searched)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("count", "lower"), [(6, True), (6, False), (9, True), (4, True), (2, False)])
def test_the_pruner_keeps_exactly_the_best_of_a_synchronous_rung(count, lower, seed):
    """Optuna's pruner (ASHA) asked in arrival_order keeps the best count // 3 (at least one), whatever the
    values' order: what synchronous successive halving keeps."""
    import optuna

    values = dict(zip(range(count), np.random.default_rng(seed).permutation(count) * 0.1, strict=True))
    study = optuna.create_study(
        direction="minimize" if lower else "maximize",
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3),
    )
    trials = {rate: study.ask() for rate in values}
    for rate, trial in trials.items():
        trial.report(values[rate], 2)
    kept = {rate for rate in arrival_order(values, 3, lower) if not trials[rate].should_prune()}
    best = sorted(values, key=lambda rate: values[rate], reverse=not lower)[: max(1, count // 3)]
    assert kept == set(best)


def test_a_rung_whose_values_all_tie_promotes_every_rate_as_optunas_pruner_decides():
    """Nothing learned yet (a rung inside the warm-up did this): Optuna keeps all tied values, not a third."""
    import optuna

    study = optuna.create_study(
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    )
    values = dict.fromkeys(range(6), 3.76)
    trials = {rate: study.ask() for rate in values}
    for rate, trial in trials.items():
        trial.report(values[rate], 1)
    assert not any(trials[rate].should_prune() for rate in arrival_order(values, 3, True))


HALVING_RATES = [1e-6, 1e-5, 1e-4, 1e-2, 1.0, 3.0]  # 1e-2 learns; the others are too slow or diverge


@pytest.fixture(scope="module")
def seeded_bert(tmp_path_factory):
    """The tiny BERT drawn from a fixed seed: which rate wins must not depend on the tests run before."""
    torch.manual_seed(0)
    return _save_tiny(tmp_path_factory.mktemp("seeded-bert"), BertConfig, BertForSequenceClassification)


def _search_grid(experiment, model, tmp_path, strategy):
    """Full fine-tuning of the tiny BERT on reviews whose mood words give the label away: 1e-2 learns it."""
    reviews = tmp_path / "more-reviews.csv"
    write_reviews(reviews, count=240)
    experiment = {**experiment, "name": strategy, "baselines": False, "methods": [{"method": "full"}]}
    experiment["model"] = str(model)
    experiment["data"] = {**experiment["data"], "dataset": str(reviews)}
    experiment["training"] = {**experiment["training"], "batch_size": 8}
    experiment["lr_search"] = {
        "learning_rates": HALVING_RATES,
        "epochs": 9,
        "max_train_samples": 96,
        "strategy": strategy,
    }
    directory, failed = run_grid(build_config(experiment), inline=True, console=Console(quiet=True))
    assert failed == []
    return directory, json.loads((directory / lr_search.SUMMARY_FILE).read_text())


@pytest.mark.slow
def test_halving_trains_under_40_percent_of_the_steps_and_picks_the_exhaustive_rate(
    experiment, seeded_bert, tmp_path
):
    halving_dir, halving = _search_grid(experiment, seeded_bert, tmp_path, "halving")
    _, exhaustive = _search_grid(experiment, seeded_bert, tmp_path, "exhaustive")
    full_run = math.ceil(96 / 8) * 9  # steps of one search run: 96 examples, batch 8, 9 epochs
    assert exhaustive["steps"]["spent"] == exhaustive["steps"]["exhaustive"] == len(HALVING_RATES) * full_run
    assert halving["steps"]["exhaustive"] == len(HALVING_RATES) * full_run
    spent = sum(
        json.loads((halving_dir / SEARCH_FOLDER / f"full-lr{rate:g}" / lr_search.SEARCH_FILE).read_text())[
            "steps_trained"
        ]
        for rate in HALVING_RATES
    )  # from the runs' own records
    assert halving["steps"]["spent"] == spent <= 0.4 * len(HALVING_RATES) * full_run
    found, reference = halving["methods"]["full"], exhaustive["methods"]["full"]
    assert found["chosen_learning_rate"] == reference["chosen_learning_rate"]
    chosen = found["chosen_learning_rate"]
    value = next(t["value"] for t in found["trials"] if t["learning_rate"] == chosen)
    assert value == pytest.approx(  # the survivor's run is its exhaustive run, paused and resumed
        next(t["value"] for t in reference["trials"] if t["learning_rate"] == chosen), rel=1e-6
    )
    statuses = {t["learning_rate"]: t["status"] for t in found["trials"]}
    assert chosen == 1e-2 and statuses[1e-6] == statuses[3.0] == "pruned" and statuses[chosen] == "complete"
    assert halving["strategy"] == "halving" and halving["halving"]["rung_fractions"] == ["1/9", "3/9", "9/9"]
    pruned = [t for t in found["trials"] if t["status"] == "pruned"]
    assert {t["pruned_at_step"] for t in pruned} <= {12, 36} and all("last_value" in t for t in pruned)
    assert not list((halving_dir / SEARCH_FOLDER).glob("*/trainer/checkpoint-*"))  # none left behind
    survivor = json.loads(
        (halving_dir / SEARCH_FOLDER / f"full-lr{chosen:g}" / lr_search.SEARCH_FILE).read_text()
    )
    segments = [(r["step"], r["resumed_from"]) for r in survivor["rungs"]]
    assert segments == [(12, 0), (36, 12), (108, 36)]  # each rung went on from the last: nothing retrained
    markdown = write(build(halving_dir), tmp_path / "report")[0].read_text()
    assert "Search: successive halving (Optuna's SuccessiveHalvingPruner)" in markdown
    assert "It trained 192 optimizer steps, 30% of the 648 of an exhaustive search" in markdown
    assert "pruned" in markdown


def _lora_search(experiment, model, tmp_path, strategy) -> dict:
    """LoRA, two rates: the later one (1e-2) survives, so in halving it starts after the other's first rung,
    in exhaustive after the other's whole run, both in one --inline process."""
    reviews = tmp_path / "more-reviews.csv"
    write_reviews(reviews, count=240)
    lora = {"method": "lora", "r": 4, "target_modules": ["query", "value"]}
    experiment = {**experiment, "name": strategy, "baselines": False, "methods": [lora], "model": str(model)}
    experiment["data"] = {**experiment["data"], "dataset": str(reviews)}
    experiment["lr_search"] = {
        "learning_rates": [1e-6, 1e-2],
        "epochs": 9,
        "max_train_samples": 24,
        "strategy": strategy,
    }
    directory, failed = run_grid(build_config(experiment), inline=True, console=Console(quiet=True))
    assert failed == []
    record = directory / SEARCH_FOLDER / "lora-lr0.01" / lr_search.SEARCH_FILE
    return json.loads(record.read_text())


@pytest.mark.slow
def test_a_halving_lora_survivor_is_its_exhaustive_run(experiment, seeded_bert, tmp_path):
    """LoRA draws its A matrices when the method is applied; they must come from the run's seed, not from
    the RNG the rates trained before it in the same process left behind."""
    halving = _lora_search(experiment, seeded_bert, tmp_path, "halving")
    exhaustive = _lora_search(experiment, seeded_bert, tmp_path, "exhaustive")
    assert [r["step"] for r in halving["rungs"]] == [3, 9, 27]
    assert halving["history"][-1] == exhaustive["history"][-1]
    assert halving["validation"] == exhaustive["validation"]


def _completed_rungs(study) -> int:
    return sum(key.startswith("completed_rung_") for key in study.trials[-1].system_attrs)


@pytest.mark.parametrize(
    ("max_steps", "warmup"), [(16, 0), (16, 2), (22, 3), (27, 3), (108, 0), (9, 3), (100, 40), (5, 0), (4, 3)]
)
@pytest.mark.parametrize(("eta", "rungs"), [(3, 3), (2, 4), (3, 2), (4, 3)])
def test_rungs_pause_after_the_warm_up_at_the_steps_optunas_pruner_judges(max_steps, warmup, eta, rungs):
    """Each pause is past the warm-up, is where the run pauses (rung_step, as PauseAt computes it), and is
    the first step at which Optuna's pruner, built as the search builds it, judges that rung."""
    import optuna

    search = LrSearchConfig(reduction_factor=eta, rungs=rungs)
    steps = lr_search.rung_steps(search, max_steps, warmup)
    pauses = steps[:-1]
    assert steps[-1] == max_steps and len(steps) <= rungs and pauses == sorted(set(pauses))
    assert all(warmup < step < max_steps for step in pauses)
    for k in range(rungs - 1):
        expected = pauses[k] if k < len(pauses) else max_steps  # no room: the run's end
        assert rung_step(max_steps, warmup, lr_search.rung_pause(search, k)) == expected
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(pruner=pruner_for(search, max_steps, warmup))
    for k, step in enumerate(pauses):
        for reported, judged in ((step - 1, k), (step, k + 1)):  # a lone trial is promoted at every rung
            trial = study.ask()
            trial.report(0.0, reported)
            assert not trial.should_prune() and _completed_rungs(study) == judged
            study.tell(trial, 0.0)


def test_a_run_too_short_for_every_rung_after_its_warm_up_has_fewer_and_says_so(searched, tmp_path):
    searched["lr_search"]["learning_rates"] = [1e-4, 1e-2]
    config = build_config(searched)
    for rate, loss in ((1e-4, 0.7), (1e-2, 0.4)):
        _fake_trial(tmp_path, "full", rate, {"loss": loss})
        record = tmp_path / SEARCH_FOLDER / f"full-lr{rate:g}" / lr_search.SEARCH_FILE
        record.write_text(json.dumps({**json.loads(record.read_text()), "max_steps": 9, "warmup_steps": 3}))
    summary = lr_search.pick_rates(tmp_path, config)
    assert summary["methods"]["full"]["rung_steps"] == [4, 9]  # 9 // 9 = 1 is in the warm-up; 4 * 3 > 9
    lines = lr_search.describe(summary)
    assert (
        "full: rungs at steps 4, 9 (only 2 of the 3 rungs configured fit in 9 steps once the first is "
        in ("\n".join(lines))
    )


@pytest.mark.slow
def test_a_halving_search_with_warm_up_pauses_after_it(experiment, seeded_bert, tmp_path):
    """Warm-up 0.1 of 27 steps is 3 (math.ceil(2.7), as the Trainer rounds it): without it the rungs would
    be at 27 // 9 = 3 (the warm-up's last step) and 9; with it, at 4 and 12, the pruner's own steps."""
    reviews = tmp_path / "more-reviews.csv"
    write_reviews(reviews, count=240)
    experiment = {
        **experiment,
        "baselines": False,
        "methods": [{"method": "full"}],
        "model": str(seeded_bert),
    }
    experiment["data"] = {**experiment["data"], "dataset": str(reviews)}
    experiment["training"] = {**experiment["training"], "warmup_ratio": 0.1}
    experiment["lr_search"] = {"learning_rates": [1e-6, 1e-2], "epochs": 9, "max_train_samples": 24}
    directory, failed = run_grid(build_config(experiment), inline=True, console=Console(quiet=True))
    assert failed == []
    summary = json.loads((directory / lr_search.SUMMARY_FILE).read_text())
    found = summary["methods"]["full"]
    assert found["warmup_steps"] == 3 and found["rung_steps"] == [4, 12, 27]
    survivor = json.loads((directory / SEARCH_FOLDER / "full-lr0.01" / lr_search.SEARCH_FILE).read_text())
    assert survivor["warmup_steps"] == 3
    assert [(r["step"], r["resumed_from"]) for r in survivor["rungs"]] == [(4, 0), (12, 4), (27, 12)]
    pruned = next(t for t in found["trials"] if t["learning_rate"] == 1e-6)
    assert pruned["status"] == "pruned" and pruned["pruned_at_step"] == 4 and pruned["steps_trained"] == 4
    markdown = write(build(directory), tmp_path / "report")[0].read_text()
    assert "rates were scored after steps 4, 12 and 27 (the end) of their run" in markdown
