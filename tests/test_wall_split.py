"""The wall-time split: training, evaluation and other (overhead) from the runs' recorded seconds."""

import json
import os
import time

import pytest
import yaml
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.execution import wall_split
from peftbench.results import results


def _method(training: float, evaluation: float, forgetting: float = 0.0, alpha: float = 0.0, run=None):
    return {
        "kind": "method",
        "efficiency": {"train_seconds": training - 1, "train_wall_seconds_including_eval": training},
        "seconds": {"evaluation": evaluation, "run": run or training + evaluation + forgetting + alpha},
        "forgetting": {"seconds": forgetting},
        "interpolation_info": {"seconds": alpha},
    }


def _write(directory, name, result):
    results.write_json(directory / name / results.RESULT_FILE, result)


def test_known_seconds_give_known_shares(tmp_path):
    since = time.time() - 1
    _write(tmp_path, "full", _method(40, 8, forgetting=3, alpha=4))
    _write(tmp_path, "lora", _method(20, 2))
    _write(tmp_path, "baseline-untrained", {"kind": "baseline", "seconds": {"evaluation": 3, "run": 3}})
    results.write_json(tmp_path / "lr-search" / "lora-lr0" / "search.json", {"train_seconds": 10})
    found = wall_split.split(tmp_path, since, end=since + 100)
    assert (found.training_seconds, found.evaluation_seconds, found.other_seconds) == (70, 20, 10)
    assert found.shares() == pytest.approx({"training": 0.7, "evaluation": 0.2, "other": 0.1})
    assert found.runs == 4 and found.workers == 1
    assert found.line() == "time: training 70% · evaluation 20% · other 10% of 1 min 40 s"


def test_runs_from_before_are_left_out(tmp_path):
    _write(tmp_path, "full", _method(40, 8))
    since = time.time() + 1
    found = wall_split.split(tmp_path, since, end=since + 10)
    assert (found.runs, found.training_seconds, found.other_seconds) == (0, 0, 10)


@pytest.mark.parametrize("wall", [0.0, 5.0, 50.0, 60.0])
def test_other_is_never_negative(tmp_path, wall):
    since = time.time() - 1
    _write(tmp_path, "full", _method(50, 10))
    found = wall_split.split(tmp_path, since, end=since + wall)
    assert found.other_seconds >= 0
    assert sum(found.shares().values()) == pytest.approx(1.0)
    assert found.other_seconds == max(0.0, wall - 60)


def test_parallel_runs_count_against_worker_seconds(tmp_path):
    since = time.time() - 1
    for name in ("a", "b"):  # written together, each 30 s long: they ran side by side
        _write(tmp_path, name, _method(25, 5))
    found = wall_split.split(tmp_path, since, parallel=True, end=since + 40)
    assert found.workers == 2
    assert found.other_seconds == pytest.approx(2 * 40 - 60)
    assert found.line().endswith("of 40 s x 2 workers")
    assert wall_split.split(tmp_path, since, end=since + 40).workers == 1


def test_most_at_once_counts_overlaps():
    runs = [wall_split.RunSeconds(0, 0, s, e) for s, e in [(0, 10), (5, 15), (10, 20), (12, 13)]]
    assert wall_split.most_at_once(runs) == 3  # 10 closes one as the next opens: (5,15),(10,20),(12,13)
    assert wall_split.most_at_once([]) == 1


def test_record_writes_the_file_atomically(tmp_path, monkeypatch):
    since = time.time() - 1
    _write(tmp_path, "full", _method(10, 2))
    written = wall_split.record(tmp_path, since)
    saved = json.loads((tmp_path / wall_split.SPLIT_FILE).read_text())
    assert saved["training_seconds"] == 10 and saved["evaluation_seconds"] == 2
    assert saved["other_seconds"] == pytest.approx(written.other_seconds)
    assert set(saved["shares"]) == {"training", "evaluation", "other"} and "how" in saved

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(results.os, "replace", broken)
    with pytest.raises(OSError):
        wall_split.record(tmp_path, since)
    assert json.loads((tmp_path / wall_split.SPLIT_FILE).read_text()) == saved  # the old file, whole
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow
def test_run_prints_the_split_last_and_records_it(tmp_path, experiment):
    experiment["methods"] = [{"method": "lora", "r": 4, "target_modules": ["query", "value"]}]
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    result = CliRunner().invoke(app, ["run", str(path), "--inline"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("time: training ")
    directory = tmp_path / "runs" / "tiny"
    saved = json.loads((directory / wall_split.SPLIT_FILE).read_text())
    assert saved["runs"] == 3  # the majority and untrained baselines, and lora
    lora = json.loads((directory / "lora" / results.RESULT_FILE).read_text())
    assert 0 < lora["seconds"]["evaluation"] < lora["seconds"]["run"]
    assert saved["training_seconds"] == lora["efficiency"]["train_wall_seconds_including_eval"]
    assert saved["wall_seconds"] >= saved["training_seconds"] + saved["evaluation_seconds"]
    assert os.path.getmtime(directory / wall_split.SPLIT_FILE) >= os.path.getmtime(directory / "lora")


@pytest.mark.slow
def test_demo_records_a_split_per_experiment(tmp_path, experiment, monkeypatch):
    from rich.console import Console

    from peftbench.execution import demo
    from peftbench.inputs.experiment import build_config

    experiment["methods"] = [{"method": "lora", "r": 4, "target_modules": ["query", "value"]}]
    monkeypatch.setattr(demo, "demo_config", lambda name, quick, output_dir: build_config(experiment))
    console = Console(record=True, width=200)
    since = time.time() - 5
    [folder] = demo.run_demo(True, str(tmp_path), console, since=since)
    saved = json.loads((folder / wall_split.SPLIT_FILE).read_text())
    assert saved["runs"] == 3 and saved["wall_seconds"] >= 5
    assert console.export_text().strip().splitlines()[-1].startswith("time: training ")
