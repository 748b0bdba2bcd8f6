"""--executor ray: a small grid as tasks on a local Ray, results in the experiment folder, same cache."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from peftbench.cli import app

runner = CliRunner()
pytestmark = pytest.mark.slow


def test_grid_runs_as_ray_tasks_and_is_cached_like_a_local_grid(experiment, tmp_path):
    experiment["methods"] = [{"method": "head"}, {"method": "lora", "r": 2, "target_modules": ["query"]}]
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(experiment))
    first = runner.invoke(app, ["run", str(path), "--executor", "ray", "--cpus-per-run", "1"])
    assert first.exit_code == 0, first.output
    assert "on Ray" in first.output
    folder = tmp_path / "runs" / "tiny"
    for run in ("head", "lora", "baseline-untrained", "baseline-majority"):
        assert json.loads((folder / run / "status.json").read_text())["status"] == "complete", run
        assert json.loads((folder / run / "result.json").read_text())["run"] == run
    assert (folder / "lora" / "adapter" / "adapter_config.json").is_file()
    assert "'loss'" in (folder / "lora" / "train.log").read_text()  # the task's output came back with it
    assert first.output.count(": lora started") == 1 and first.output.count(": lora complete after") == 1
    again = runner.invoke(app, ["run", str(path), "--executor", "ray"])
    skipped = again.output.count("already complete (same config), skipped")
    assert again.exit_code == 0 and skipped == 4  # one line per run: head, lora and the two baselines


def test_unknown_executor_is_a_clear_error(experiment, tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(experiment))
    result = runner.invoke(app, ["run", str(path), "--executor", "slurm"])
    assert result.exit_code == 2 and "--executor 'slurm' is not known" in result.output
