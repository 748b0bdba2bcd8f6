"""A report is of one configuration: runs an earlier configuration left behind are named, never mixed in;
the cost table covers every seed; the verdict's least-forgetting line and the head-rate confound."""

import csv

import pytest
import yaml
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.errors import PeftbenchError
from peftbench.grid import lr_search
from peftbench.report.collect import load_current_groups
from peftbench.report.summary import head_rate_warnings, summary_rows
from peftbench.report.tables import cost_table
from peftbench.report.verdict import verdict
from peftbench.results import results, run_folder

runner = CliRunner()


def _run(root, folder, config_hash, rate=1e-3, seed=1, method="head", head_rate=None):
    """A complete run folder as a worker leaves it: status.json with its config hash, then result.json."""
    path = root / folder
    results.write_json(
        path / results.RESULT_FILE,
        {
            "run": folder,
            "cell": folder.split("@seed")[0],
            "method": {"name": method, "options": {}},
            "kind": "baseline" if folder.startswith("baseline-") else "method",
            "task": "classification",
            "seed": seed,
            "training": {"learning_rate": rate, "epochs": 1.0},
            "learning_rates": {"body": None, "head": head_rate or rate},
            "metrics": {"test": {"accuracy": 0.5, "f1_macro": 0.4}},
            "efficiency": {
                "trainable_params": 306,
                "train_seconds": seed,
                "peak_rss_above_start_bytes": seed * 2**20,
            },
            "data": {"data_fraction": 1.0, "sizes": {"test": 10}},
        },
    )
    run_folder.write_status(path, "complete", config_hash=config_hash)


def test_runs_of_an_earlier_configuration_are_left_out_and_named(tmp_path):
    _run(tmp_path, "head@seed1", "new", rate=3e-3)
    _run(tmp_path, "head@seed2", "old", rate=1e-3, seed=2)  # an earlier config: seeds [1, 2]
    _run(tmp_path, "bitfit@seed1", "old", method="bitfit")  # bitfit dropped since
    _run(tmp_path, "baseline-majority@seed1", "base-old")  # the baselines' config changed too
    run_folder.write_current(tmp_path, {"head@seed1": "new", "baseline-majority@seed1": "base-new"})
    groups, warnings = load_current_groups(tmp_path)
    assert [(g.name, len(g.runs)) for g in groups] == [("head", 1)]
    assert groups[0].runs[0]["training"]["learning_rate"] == 3e-3
    assert warnings == [
        "3 runs from an earlier configuration left out (not averaged, ranked or recommended): "
        "baseline-majority@seed1 (lr 0.001), bitfit@seed1 (lr 0.001; no longer in "
        "the experiment), head@seed2 (lr 0.001, now 0.003; no longer in the experiment)"
    ]


def test_a_run_folder_given_alone_is_judged_by_its_experiment(tmp_path):
    _run(tmp_path, "head", "old")
    run_folder.write_current(tmp_path, {"head": "new"})
    with pytest.raises(PeftbenchError, match=r"no complete runs under .*\(1 run from an earlier config"):
        load_current_groups(tmp_path / "head")


def test_a_folder_run_never_recorded_keeps_every_run_and_says_so(tmp_path):
    _run(tmp_path, "head@seed1", "a")
    _run(tmp_path, "head@seed2", "b", seed=2)
    groups, warnings = load_current_groups(tmp_path)
    assert len(groups[0].runs) == 2
    assert len(warnings) == 1 and warnings[0].startswith(f"{tmp_path} has no current_runs.json")


def test_the_cost_table_summarises_every_seed(tmp_path):
    """Seeds 1 and 2 trained 1 s and 2 s with 1 and 2 MiB, at rates 0.001 and 0.003 (only a folder
    written before current_runs.json can hold both): means, and both rates, never the first seed's."""
    _run(tmp_path, "head@seed1", "a", rate=1e-3)
    _run(tmp_path, "head@seed2", "b", rate=3e-3, seed=2)
    groups, _ = load_current_groups(tmp_path)
    row = summary_rows(groups, None, ["accuracy"], "classification")[0]
    assert (
        row["train_seconds"] == 1.5
        and row["peak_rss_above_start_mb"] == 1.5
        and row["trainable_params"] == 306
    )
    assert row["head_learning_rate"] == "0.001, 0.003" and row["learning_rate"] is None
    assert cost_table([row]).rows[0][4][0] == "– / 0.001, 0.003"


def _row(run, f1, base_p, forgetting):
    return {
        "run": run,
        "kind": "method",
        "seeds": 3,
        "f1_macro": f1,
        "f1_macro_ci95_low": None,
        "baseline": "baseline-majority",
        "baseline_metric": "f1_macro",
        "baseline_value": 0.33,
        "baseline_p": base_p,
        "reference": None,
        "forgetting": forgetting,
        "forgetting_metric": "loss",
        "head_learning_rate": None,
    }


def test_least_forgetting_is_named_among_the_methods_that_learned():
    rows = [_row("full", 0.9, 0.001, 0.8), _row("lora", 0.8, 0.001, 0.2), _row("bitfit", 0.33, 1.0, 0.0)]
    text = "\n".join(verdict(rows, "f1_macro", "classification"))
    assert "Least forgetting among the methods that learned: **lora** (loss after − before +0.2)" in text
    assert "Least forgetting: none" not in text
    unlearned = "\n".join(verdict([rows[2]], "f1_macro", "classification"))
    assert "Least forgetting: none named" in unlearned and "**bitfit** (" not in unlearned


def test_different_head_rates_are_a_confound_warning():
    rows = [
        {"run": "full", "kind": "method", "head_learning_rate": 2e-5},
        {"run": "lora", "kind": "method", "head_learning_rate": 2e-4},
        {"run": "bitfit", "kind": "method", "head_learning_rate": 2e-4},
        {"run": "baseline-majority", "kind": "baseline", "head_learning_rate": None},
    ]
    (warning,) = head_rate_warnings(rows)
    assert "different learning rates: 2e-05 (full); 0.0002 (lora, bitfit)" in warning
    assert "confound" in warning and "training.head_learning_rate" in warning
    assert head_rate_warnings([{**r, "head_learning_rate": 1e-3} for r in rows]) == []


@pytest.mark.slow
def test_editing_and_rerunning_reports_only_the_current_configuration(tmp_path, tiny_bert, reviews_csv):
    """The user's loop: run head and bitfit, edit the YAML (another rate, one seed, no bitfit), run again."""
    experiment = {
        "name": "tiny",
        "model": str(tiny_bert),
        "data": {"dataset": str(reviews_csv), "max_length": 16},
        "training": {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "logging_steps": 2},
        "methods": [{"method": "head"}, {"method": "bitfit"}],
        "seeds": [1, 2],
        "interpolation": False,
        "output_dir": str(tmp_path / "runs"),
    }
    path, folder = tmp_path / "experiment.yaml", tmp_path / "runs" / "tiny"
    path.write_text(yaml.safe_dump(experiment))
    assert runner.invoke(app, ["run", str(path), "--inline"]).exit_code == 0
    (folder / lr_search.SUMMARY_FILE).write_text("{}")  # as if the first configuration searched rates
    experiment |= {"methods": [{"method": "head"}], "seeds": [1]}
    experiment["training"]["learning_rate"] = 3e-3
    path.write_text(yaml.safe_dump(experiment))
    second = runner.invoke(app, ["run", str(path), "--inline"])
    assert second.exit_code == 0, second.output
    left_out = "5 runs from an earlier configuration left out"
    assert left_out in " ".join(second.output.split())
    assert not (folder / lr_search.SUMMARY_FILE).exists()
    assert runner.invoke(app, ["report", str(folder)]).exit_code == 0
    rows = {r["run"]: r for r in csv.DictReader((folder / "summary.csv").open())}
    assert set(rows) == {"head", "baseline-majority", "baseline-untrained"}
    assert rows["head"]["seeds"] == "1" and float(rows["head"]["head_learning_rate"]) == 3e-3
    text = (folder / "report.md").read_text()
    warnings = text.split("## Warnings")[1].split("##")[0]
    assert f"- {left_out} (not averaged, ranked or recommended): " in warnings
    for name in ("bitfit@seed1", "bitfit@seed2", "baseline-majority@seed2", "baseline-untrained@seed2"):
        assert name in warnings
    assert "head@seed2 (lr 0.001, now 0.003; no longer in the experiment)" in warnings
    assert "bitfit" not in text.replace(warnings, "")  # in no table, verdict line or recommendation
    assert "| head | 1 |" in text and "| – / 0.003 |" in text
    compared = runner.invoke(app, ["compare", str(folder)])
    assert "bitfit" not in compared.output.split("warning:")[0] and left_out in compared.output
