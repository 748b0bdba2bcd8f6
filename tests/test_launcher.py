"""Several ranks per run: the launch command, config checks, and a 2-process DDP run (gloo, CPU) that must
reproduce the single-process run."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from transformers import BertConfig
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.errors import PeftbenchError
from peftbench.execution.launch import launch_command
from peftbench.grid.grid import expand
from peftbench.inputs.experiment import build_config

runner = CliRunner()


def _spec(experiment, **launcher):
    experiment["launcher"] = launcher
    return expand(build_config(experiment))[1]


def test_launch_commands(experiment):
    spec_file = Path("spec.json")
    local = launch_command(_spec(experiment), spec_file)
    assert local[1:] == ["-m", "peftbench.run.worker", "spec.json"]
    torchrun = launch_command(_spec(experiment, kind="torchrun", num_processes=2), spec_file)
    assert torchrun[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    accelerate = launch_command(_spec(experiment, kind="accelerate", num_processes=4), spec_file)
    assert accelerate[1:7] == [
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        "4",
        "--multi_gpu",
        "-m",
    ]


def test_launcher_checks(experiment, tmp_path):
    with pytest.raises(PeftbenchError, match="does not split over launcher.num_processes 3"):
        _spec(experiment, kind="torchrun", num_processes=3)
    with pytest.raises(PeftbenchError, match="needs launcher.kind torchrun or accelerate"):
        _spec(experiment, num_processes=2)
    with pytest.raises(PeftbenchError, match="launcher.config_file .* not found"):
        _spec(experiment, kind="accelerate", config_file=str(tmp_path / "fsdp.yaml"))


def _result(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text())


@pytest.mark.slow
def test_two_process_ddp_reproduces_the_single_process_run(tmp_path, tiny_bert, experiment):
    """Same global batch (2 ranks x 4 = 8), same example order, no dropout: the same training, up to
    the order of floating-point sums."""
    model_dir = tmp_path / "no-dropout"
    shutil.copytree(tiny_bert, model_dir)
    config = BertConfig.from_pretrained(model_dir)
    config.update({"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})
    config.save_pretrained(model_dir)
    experiment.update(model=str(model_dir), baselines=False, methods=[{"method": "full"}])
    experiment["data"]["max_train_samples"] = 32
    experiment["training"].update(epochs=2, batch_size=8, precision="fp32")
    folders = {}
    for name, launcher in (("single", {}), ("ddp", {"kind": "torchrun", "num_processes": 2})):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**experiment, "name": name, "launcher": launcher}))
        result = runner.invoke(app, ["run", str(path)])
        assert result.exit_code == 0, result.output
        folders[name] = tmp_path / "runs" / name / "full"
    single, ddp = _result(folders["single"]), _result(folders["ddp"])
    for epoch_single, epoch_ddp in zip(single["history"], ddp["history"], strict=True):
        for key in ("train_loss", "validation_loss"):
            assert epoch_ddp[key] == pytest.approx(epoch_single[key], rel=1e-4), key
    assert ddp["metrics"]["test"]["accuracy"] == single["metrics"]["test"]["accuracy"]
    # The test split is scored in batches split across the ranks, padded differently: a looser bound.
    assert ddp["metrics"]["test"]["loss"] == pytest.approx(single["metrics"]["test"]["loss"], rel=1e-3)
    memory = ddp["efficiency"]
    assert memory["ranks"] == 2 and memory["peak_rss_above_start_bytes"] == max(
        r["peak_rss_above_start_bytes"] for r in memory["per_rank"]
    )
    left = {p.name for p in (tmp_path / "runs" / "ddp").iterdir()} - {".specs"}  # spec files are removed
    expected = [
        ".peftbench.lock",
        "current_runs.json",
        "experiment.yaml",
        "full",
        "prepare.log",
        "retention-cache",
        "time_split.json",
    ]
    assert sorted(left) == expected
