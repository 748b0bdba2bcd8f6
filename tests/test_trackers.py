"""report_to passes through to the Trainer's integrations; TensorBoard checked offline."""

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.errors import PeftbenchError
from peftbench.inputs.experiment import build_config

runner = CliRunner()


@pytest.mark.slow
def test_each_run_logs_its_losses_to_tensorboard(experiment, tmp_path):
    experiment["training"]["report_to"] = ["tensorboard"]
    experiment["baselines"] = False
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(experiment))
    result = runner.invoke(app, ["run", str(path), "--inline"])
    assert result.exit_code == 0, result.output
    for run in ("full", "lora"):
        event_files = list((tmp_path / "runs" / "tiny" / run / "trainer").rglob("events.out.tfevents.*"))
        assert event_files, f"no TensorBoard events for {run}"
        events = EventAccumulator(str(event_files[0].parent))
        events.Reload()
        tags = set(events.Tags()["scalars"])
        assert {"train/loss", "eval/loss"} <= tags, tags
        assert any("tiny/" + run in text for text in _texts(events)), "run name not logged"
        assert "peftbench/config/text_summary" in events.Tags()["tensors"]
        config = str(events.Tensors("peftbench/config/text_summary")[0].tensor_proto.string_val)
        assert f"method: {run}" in config and "report_to" in config


def _texts(events) -> list[str]:
    return [str(t.tensor_proto.string_val) for tag in events.Tags()["tensors"] for t in events.Tensors(tag)]


def test_unknown_tracker_is_a_clear_error(experiment):
    experiment["training"]["report_to"] = ["tensorbord"]
    with pytest.raises(
        PeftbenchError, match="unknown tracker 'tensorbord' \\(did you mean 'tensorboard'\\?\\)"
    ):
        build_config(experiment)
