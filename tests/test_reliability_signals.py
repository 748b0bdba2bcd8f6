"""Signals: SIGTERM/SIGINT to `peftbench run` mark the run interrupted in one line; a worker whose parent
was killed stops; the next `peftbench run` finishes the experiment."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.results import results
from peftbench.results.run_folder import read_run

pytestmark = pytest.mark.slow


def _start(tmp_path, experiment, epochs: float = 400) -> tuple[subprocess.Popen, Path]:
    experiment["methods"] = [{"method": "full"}]
    experiment["baselines"] = False
    experiment["training"]["epochs"] = epochs
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(experiment))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    command = [sys.executable, "-c", "from peftbench.cli import app; app()", "run", str(path)]
    log = (tmp_path / "output.txt").open("w")  # a file, not a pipe: a full pipe would block the worker
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    return process, tmp_path / "runs" / "tiny" / "full"


def _quality(metrics: dict) -> dict:
    """Metrics without measured speeds (tokens per second differ between any two runs)."""
    if all(isinstance(value, dict) for value in metrics.values()):
        return {split: _quality(values) for split, values in metrics.items()}
    return {name: value for name, value in metrics.items() if not name.endswith("_per_second")}


def _wait_for_training(process: subprocess.Popen, run_dir: Path, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        status = results.read_json(run_dir / results.STATUS_FILE) or {}
        if status.get("status") == "running":
            time.sleep(3)  # into the training loop
            return status
        time.sleep(0.2)
    process.kill()
    raise AssertionError("the run never started: " + (run_dir.parents[2] / "output.txt").read_text())


def _alive(pid: int) -> bool:
    """Running, not a zombie (a container's init may never reap an orphan)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(
    ("stop", "to_group"), [(signal.SIGTERM, False), (signal.SIGINT, True)], ids=["sigterm", "ctrl-c"]
)
def test_a_signal_to_the_parent_marks_the_run_interrupted_in_one_line(tmp_path, experiment, stop, to_group):
    process, run_dir = _start(tmp_path, experiment)
    worker = _wait_for_training(process, run_dir)["pid"]
    if to_group:  # what a terminal's Ctrl-C does: the whole foreground process group
        os.killpg(process.pid, stop)
    else:
        process.send_signal(stop)
    process.wait(timeout=60)
    output = (tmp_path / "output.txt").read_text()
    assert process.returncode == 128 + stop, output
    assert "Traceback" not in output
    assert f"error: interrupted by {stop.name} during run full" in output.replace("\n", " ")
    status = json.loads((run_dir / results.STATUS_FILE).read_text())
    assert status["status"] == "interrupted" and status["signal"] == stop.name
    assert not _alive(worker)


def test_a_worker_stops_when_its_parent_is_killed(tmp_path, experiment):
    process, run_dir = _start(tmp_path, experiment)
    worker = _wait_for_training(process, run_dir)["pid"]
    process.kill()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and read_run(run_dir).status == "running":
        time.sleep(0.2)
    assert json.loads((run_dir / results.STATUS_FILE).read_text())["status"] == "interrupted"
    while time.monotonic() < deadline + 30 and _alive(worker):
        time.sleep(0.2)
    assert not _alive(worker)


def _complete_result(folder: Path) -> dict:
    assert read_run(folder).status == "complete"
    return json.loads((folder / results.RESULT_FILE).read_text())


def test_sigterm_mid_training_then_run_again_equals_an_uninterrupted_run(tmp_path, experiment):
    """Fault injection: preempted after a checkpoint, the run resumes from it and ends as if never stopped."""
    experiment["training"]["checkpoint_every"] = 20
    process, run_dir = _start(tmp_path, experiment, epochs=60)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((run_dir / "trainer").glob("checkpoint-*")):
        time.sleep(0.2)
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert read_run(run_dir).status == "interrupted"
    assert len(list((run_dir / "trainer").glob("checkpoint-*"))) == 1  # only the last is kept
    config = tmp_path / "e.yaml"
    again = CliRunner().invoke(app, ["run", str(config)])
    assert again.exit_code == 0, again.output
    resumed = _complete_result(run_dir)
    assert resumed["resumed_from"]["checkpoint"].startswith("checkpoint-")
    assert not list((run_dir / "trainer").glob("checkpoint-*"))
    fresh = CliRunner().invoke(app, ["run", str(config), "--set", f"output_dir={tmp_path / 'fresh'}"])
    assert fresh.exit_code == 0, fresh.output
    uninterrupted = _complete_result(tmp_path / "fresh" / "tiny" / "full")
    assert uninterrupted["resumed_from"] is None
    assert resumed["config_hash"] == uninterrupted["config_hash"]
    # Exact wherever the signal landed (tests/test_resume.py stops at chosen steps): every logged loss,
    # the validation history, the test metrics (loss included) and every prediction.
    assert resumed["logged_steps"] == uninterrupted["logged_steps"]
    assert resumed["history"] == uninterrupted["history"]
    assert _quality(resumed["metrics"]) == _quality(uninterrupted["metrics"])
    assert (run_dir / "predictions.jsonl").read_text() == (
        tmp_path / "fresh" / "tiny" / "full" / "predictions.jsonl"
    ).read_text()
    # The seconds up to the checkpoint plus the resumed segment's, the redone work counted once.
    before, after = (
        resumed["resumed_from"]["train_seconds_before"],
        resumed["resumed_from"]["train_seconds_resumed"],
    )
    assert before > 0 and after > 0
    assert resumed["efficiency"]["train_seconds"] == pytest.approx(before + after, rel=1e-12)


def test_without_checkpoints_an_interrupted_run_is_redone_to_the_same_result(tmp_path, experiment):
    process, run_dir = _start(tmp_path, experiment, epochs=400)
    _wait_for_training(process, run_dir)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert read_run(run_dir).status == "interrupted"
    config = tmp_path / "e.yaml"
    assert CliRunner().invoke(app, ["run", str(config)]).exit_code == 0
    fresh = CliRunner().invoke(app, ["run", str(config), "--set", f"output_dir={tmp_path / 'fresh'}"])
    assert fresh.exit_code == 0
    redone, uninterrupted = _complete_result(run_dir), _complete_result(tmp_path / "fresh" / "tiny" / "full")
    assert redone["config_hash"] == uninterrupted["config_hash"]
    assert _quality(redone["metrics"]) == _quality(uninterrupted["metrics"])
    assert redone["history"] == uninterrupted["history"]
