"""Grid expansion, the config-hash cache, --force, and one crashing run not stopping the others."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.errors import PeftbenchError
from peftbench.grid.grid import cell_of, expand
from peftbench.inputs.experiment import build_config
from peftbench.run.worker import CRASH_ENV

runner = CliRunner()


def test_grid_expands_sweeps_seeds_and_fractions(experiment):
    experiment["methods"] = [
        {"method": "full"},
        {
            "method": "lora",
            "target_modules": ["query"],
            "sweep": {"r": [2, 4], "learning_rate": [1e-3, 3e-3]},
        },
    ]
    experiment["seeds"] = [1, 2]
    experiment["data_fractions"] = [0.5, 1.0]
    specs = expand(build_config(experiment))
    methods = [s for s in specs if s.kind == "method"]
    assert (
        len(methods) == (1 + 4) * 2 * 2 and len(specs) - len(methods) == 2 * 2
    )  # baselines per seed x fraction
    names = {s.name for s in methods}
    assert "lora-r2-lr0.001@frac0.5@seed1" in names and "full@frac1@seed2" in names
    lora = next(s for s in methods if s.name == "lora-r4-lr0.003@frac1@seed2")
    assert lora.entry.options["r"] == 4 and lora.entry.learning_rate == 0.003
    assert lora.config.seed == 2 and lora.config.data.data_fraction == 1.0
    assert cell_of(lora.name) == "lora-r4-lr0.003@frac1"
    assert len({s.config_hash for s in specs}) == len(specs)


def test_single_seed_keeps_plain_run_names(experiment):
    assert [s.name for s in expand(build_config(experiment))] == ["baselines", "full", "lora"]


def test_sweep_values_are_validated(experiment):
    experiment["methods"] = [{"method": "lora", "sweep": {"rank_typo": [2, 4]}}]
    with pytest.raises(PeftbenchError, match="has no option 'rank_typo'"):
        build_config(experiment)


def _statuses(folder):
    return {p.parent.name: json.loads(p.read_text())["status"] for p in folder.glob("*/status.json")}


@pytest.mark.slow
def test_cache_skips_complete_runs_and_force_redoes_them(tmp_path, experiment):
    experiment["methods"] = [{"method": "head"}]
    experiment["baselines"] = False
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(experiment))
    first = runner.invoke(app, ["run", str(path)])
    assert first.exit_code == 0, first.output
    result_file = tmp_path / "runs" / "tiny" / "head" / "result.json"
    written = result_file.stat().st_mtime_ns
    again = runner.invoke(app, ["run", str(path)])
    assert "already complete (same config), skipped" in again.output
    assert result_file.stat().st_mtime_ns == written
    changed = runner.invoke(app, ["run", str(path), "--set", "training.learning_rate=0.002"])
    assert "skipped" not in changed.output and result_file.stat().st_mtime_ns != written
    written = result_file.stat().st_mtime_ns
    forced = runner.invoke(app, ["run", str(path), "--set", "training.learning_rate=0.002", "--force"])
    assert forced.exit_code == 0 and result_file.stat().st_mtime_ns != written


@pytest.mark.slow
def test_a_crashed_worker_is_recorded_and_the_grid_goes_on(tmp_path, experiment, monkeypatch):
    monkeypatch.setenv(CRASH_ENV, "full")  # the worker running 'full' dies as an OOM kill would
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(experiment))
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 1
    folder = tmp_path / "runs" / "tiny"
    assert _statuses(folder) == {
        "full": "failed",
        "lora": "complete",
        "baseline-untrained": "complete",
        "baseline-majority": "complete",
    }
    error = json.loads((folder / "full" / "status.json").read_text())["error"]
    assert "exited with code 70" in error and "exited with code 70" in result.output
    monkeypatch.delenv(CRASH_ENV)
    rerun = runner.invoke(app, ["run", str(path)])  # failed runs run again, complete ones are skipped
    assert rerun.exit_code == 0 and rerun.output.count("skipped") == 3  # lora and both baselines
    assert _statuses(folder)["full"] == "complete"


def test_the_worker_gives_a_run_the_grid_processes_hash_when_the_config_holds_a_secret(
    experiment, monkeypatch
):
    """The spec file a worker reads has secret environment values redacted; its hash must not change."""
    from peftbench.results.results import redact_text
    from peftbench.run.worker import spec_from_json, spec_to_json

    secret = "hf_secretsecretsecret"
    monkeypatch.setenv("HF_TOKEN", secret)
    experiment["model"] = {"name": experiment["model"], "revision": secret}
    spec = next(s for s in expand(build_config(experiment)) if s.kind == "method")
    read_back = spec_from_json(redact_text(spec_to_json(spec)))
    assert read_back.config.model.revision == "<redacted>"
    assert read_back.config_hash == spec.config_hash
