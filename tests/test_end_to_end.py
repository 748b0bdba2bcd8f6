import json

import pytest
import yaml
from peft import PeftModel
from transformers import AutoModelForSequenceClassification
from typer.testing import CliRunner

from peftbench.cli import app

runner = CliRunner()
pytestmark = pytest.mark.slow


def _write(tmp_path, experiment):
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    return path


def test_run_two_methods_writes_complete_results(tmp_path, experiment, tiny_bert, monkeypatch):
    secret = "hf_secretsecretsecret"
    monkeypatch.setenv("HF_TOKEN", secret)
    # a token pasted into the config (revision is ignored for a local model folder) must not be written
    experiment["model"] = {"name": experiment["model"], "revision": secret}
    result = runner.invoke(app, ["run", str(_write(tmp_path, experiment))])
    assert result.exit_code == 0, result.output
    experiment_dir = tmp_path / "runs" / "tiny"
    for run in ("full", "lora", "baseline-untrained", "baseline-majority"):
        status = json.loads((experiment_dir / run / "status.json").read_text())
        assert status["status"] == "complete"
        data = json.loads((experiment_dir / run / "result.json").read_text())
        assert data["schema_version"] == 1 and data["status"] == "complete"
        assert 0 <= data["metrics"]["test"]["accuracy"] <= 1
        assert sum(map(sum, data["confusion_matrix"]["rows_true_cols_pred"])) == data["data"]["sizes"]["test"]
    lora = json.loads((experiment_dir / "lora" / "result.json").read_text())
    full = json.loads((experiment_dir / "full" / "result.json").read_text())
    assert lora["efficiency"]["trainable_params"] < full["efficiency"]["trainable_params"]
    assert full["efficiency"]["trainable_params"] == full["efficiency"]["total_params"]
    assert lora["efficiency"]["artifact_bytes"] > 0 and lora["efficiency"]["train_seconds"] > 0
    assert lora["history"][0]["train_loss"] is not None and "validation_loss" in lora["history"][0]
    assert (
        len((experiment_dir / "lora" / "predictions.jsonl").read_text().splitlines())
        == lora["data"]["sizes"]["test"]
    )
    written = [p for p in experiment_dir.rglob("*") if p.is_file()]
    assert {"config.yaml", "result.json", "status.json", "predictions.jsonl"} <= {p.name for p in written}
    assert not [p for p in written if secret.encode() in p.read_bytes()]
    assert "revision: <redacted>" in (experiment_dir / "lora" / "config.yaml").read_text()
    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    assert isinstance(PeftModel.from_pretrained(base, experiment_dir / "lora" / "adapter"), PeftModel)

    compared = runner.invoke(
        app,
        [
            "compare",
            str(experiment_dir),
            "--markdown",
            str(tmp_path / "t.md"),
            "--csv",
            str(tmp_path / "t.csv"),
        ],
    )
    assert compared.exit_code == 0, compared.output
    assert "| lora |" in (tmp_path / "t.md").read_text()
    assert (tmp_path / "t.csv").read_text().count("\n") == 5


def test_bad_target_modules_fail_before_any_run(tmp_path, experiment):
    experiment["methods"][1]["target_modules"] = ["q_proj"]
    result = runner.invoke(app, ["run", str(_write(tmp_path, experiment))])
    assert result.exit_code == 2
    assert "match no module" in result.output
    assert not list((tmp_path / "runs").rglob("result.json"))


def test_failed_run_is_marked_and_others_continue(tmp_path, experiment, monkeypatch):
    from peftbench.run import runner as runner_module

    original = runner_module.train

    def explode(model, *args, **kwargs):
        if model.__class__.__name__.startswith("Peft"):
            raise RuntimeError("simulated crash")
        return original(model, *args, **kwargs)

    monkeypatch.setattr(runner_module, "train", explode)
    experiment["baselines"] = False
    result = runner.invoke(app, ["run", str(_write(tmp_path, experiment)), "--inline"])
    assert result.exit_code == 1
    assert "simulated crash" in result.output
    lora_dir = tmp_path / "runs" / "tiny" / "lora"
    assert json.loads((lora_dir / "status.json").read_text())["status"] == "failed"
    assert not (lora_dir / "result.json").exists()
    assert (tmp_path / "runs" / "tiny" / "full" / "result.json").exists()


def test_train_from_flags(tmp_path, tiny_bert, reviews_csv):
    result = runner.invoke(
        app,
        [
            "train",
            "--model",
            str(tiny_bert),
            "--dataset",
            str(reviews_csv),
            "--method",
            "bitfit",
            "--epochs",
            "1",
            "--output-dir",
            str(tmp_path),
            "--set",
            "data.max_length=16",
        ],
    )
    assert result.exit_code == 0, result.output
    assert list(tmp_path.rglob("bitfit/result.json"))


def test_unknown_model_is_one_line_error(tmp_path, experiment):
    experiment["model"] = str(tmp_path / "missing-model")
    result = runner.invoke(app, ["run", str(_write(tmp_path, experiment))])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:") and "does not exist" in result.output


def test_methods_command_lists_registry():
    result = runner.invoke(app, ["methods"])
    assert result.exit_code == 0
    for name in ("full", "freeze", "bitfit", "head", "lora", "ia3", "prompt_tuning"):
        assert name in result.output


def test_every_command_has_help():
    for command in ("run", "train", "compare", "methods", "validate"):
        assert runner.invoke(app, [command, "--help"]).exit_code == 0
