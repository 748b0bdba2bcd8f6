"""The grid's display: a live table in a terminal, one start and one end line per run in a pipe, and each
run's Trainer logs, progress bars and warnings in its train.log unless --verbose."""

import io
import json
import logging
import os
import re
import sys
import warnings
from types import SimpleNamespace

import pytest
import yaml
from rich.console import Console
from transformers.utils import logging as hf_logging
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.execution.display import GridDisplay, key_metric
from peftbench.execution.executor import run_grid
from peftbench.inputs.experiment import build_config
from peftbench.results.progress import LOG_FILE, PROGRESS_FILE, ProgressFile, read_progress

runner = CliRunner()
ESCAPE = "\x1b["
RUNS = ("head", "baseline-majority", "baseline-untrained")
SECRET = "hf_SecretValue1234"


@pytest.fixture
def head_only(experiment):
    experiment["methods"] = [{"method": "head"}]
    return experiment


@pytest.fixture
def noisy(monkeypatch):
    """Each training run also warns and logs through transformers, as libraries do."""
    begin = ProgressFile.on_train_begin

    def show(
        message, category, filename, lineno, file=None, line=None
    ):  # Python's own, which pytest replaces
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    def on_train_begin(self, *args, **kwargs):
        warnings.warn("a library FutureWarning", FutureWarning, stacklevel=1)
        hf_logging.get_logger("transformers.trainer").warning("a transformers logging line")
        print(f"a library printing the token {os.environ.get('HF_TOKEN')}")
        return begin(self, *args, **kwargs)

    monkeypatch.setattr(ProgressFile, "on_train_begin", on_train_begin)
    monkeypatch.setattr(warnings, "showwarning", show)


def _run(experiment, terminal: bool, inline: bool = True) -> tuple[str, object]:
    buffer = io.StringIO()
    console = Console(force_terminal=terminal, width=120, file=buffer)
    directory, failed = run_grid(build_config(experiment), inline=inline, console=console)
    assert failed == []
    return buffer.getvalue(), directory


def test_a_terminal_shows_one_live_row_per_run_with_its_final_state(head_only, noisy):
    output, directory = _run(head_only, terminal=True)
    assert ESCAPE in output  # drawn live, in place
    final = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output[output.rindex("tiny: 3/3 runs done") :])
    for run in RUNS:
        assert re.search(rf"{run}\s+│\s+complete", final), final
    metric = json.loads((directory / "head" / "result.json").read_text())["metrics"]["test"]["f1_macro"]
    assert f"f1_macro {metric:.4g}" in final
    for row in ("run", "status", "epoch", "step", "loss", "samples/s", "ETA", "key metric"):
        assert row in final
    for noise in ("'loss'", "grad_norm", "FutureWarning", "a transformers logging line", "it/s"):
        assert noise not in output, noise


def test_train_log_holds_the_trainer_logs_and_warnings_of_an_inline_run(head_only, noisy, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    _, directory = _run(head_only, terminal=False)
    log = (directory / "head" / LOG_FILE).read_text()
    assert "printing the token <redacted>" in log and SECRET not in log  # like every file peftbench writes
    assert "'loss'" in log and "grad_norm" in log  # the Trainer's log dicts
    assert "a library FutureWarning" in log and "a transformers logging line" in log
    assert "it/s]" in log or "s/it]" in log  # its tqdm bar
    progress = read_progress(directory / "head")
    assert progress["phase"] == "evaluating" and progress["step"] == progress["max_steps"] > 0


@pytest.mark.slow
def test_a_pipe_gets_one_start_and_one_end_line_per_run_without_escape_codes(head_only):
    output, directory = _run(head_only, terminal=False, inline=False)  # subprocess workers
    assert ESCAPE not in output and "\r" not in output
    lines = output.splitlines()
    for run in RUNS:
        assert sum(f": {run} started" in line for line in lines) == 1, output
        ends = [line for line in lines if f": {run} complete after" in line]
        assert len(ends) == 1, output
    assert "f1_macro" in next(line for line in lines if ": head complete after" in line)
    assert "'loss'" not in output and "'loss'" in (directory / "head" / LOG_FILE).read_text()


def test_verbose_streams_the_run_output_and_writes_no_train_log(head_only, tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(head_only))
    quiet = runner.invoke(app, ["run", str(path), "--inline", "--force"])
    assert quiet.exit_code == 0, quiet.output
    assert "'loss'" not in quiet.output and "head started" in quiet.output
    (tmp_path / "runs" / "tiny" / "head" / LOG_FILE).unlink()
    loud = runner.invoke(app, ["run", str(path), "--inline", "--force", "--verbose"])
    assert loud.exit_code == 0, loud.output
    assert "'loss'" in loud.output and "head started" in loud.output
    assert not (tmp_path / "runs" / "tiny" / "head" / LOG_FILE).exists()


def _state(step: int, max_steps: int = 40, epoch: float = 0.0):
    return SimpleNamespace(global_step=step, max_steps=max_steps, epoch=epoch, is_world_process_zero=True)


def test_progress_file_is_throttled_and_its_rate_and_eta_follow_the_steps(tmp_path):
    now = [100.0]
    callback = ProgressFile(tmp_path, every=1.0, clock=lambda: now[0])
    args = SimpleNamespace(
        train_batch_size=8, gradient_accumulation_steps=2, world_size=1, num_train_epochs=2
    )
    callback.on_train_begin(args, _state(4), None)  # resumed at step 4
    assert read_progress(tmp_path)["step"] == 4 and read_progress(tmp_path)["eta_seconds"] is None
    now[0] = 110.0
    callback.on_log(args, _state(14, epoch=0.7), None, logs={"loss": 0.25})
    written = read_progress(tmp_path)
    # 10 steps in 10 s: 1 step/s x 16 samples a step; 26 steps left at 1 step/s
    assert written["samples_per_second"] == pytest.approx(16.0) and written["eta_seconds"] == pytest.approx(
        26
    )
    assert written["loss"] == 0.25 and written["epoch"] == 0.7 and written["epochs"] == 2
    now[0] = 110.5
    callback.on_step_end(args, _state(15), None)
    assert read_progress(tmp_path)["step"] == 14  # within a second of the last write: not written
    callback.on_train_end(args, _state(40), None)
    assert read_progress(tmp_path)["phase"] == "evaluating" and read_progress(tmp_path)["step"] == 40


def test_grid_eta_adds_running_etas_and_the_typical_run_for_each_queued_one(tmp_path):
    now = [0.0]
    display = GridDisplay(Console(file=io.StringIO()), tmp_path, live=False, clock=lambda: now[0])
    folders = [tmp_path / name for name in ("a", "b", "c", "d")]
    display.queue(folders, "run")
    assert display.eta_text() == "ETA after the first run"
    display.start(folders[:1])
    folders[0].mkdir()
    (folders[0] / PROGRESS_FILE).write_text(json.dumps({"elapsed_seconds": 30, "eta_seconds": 90}))
    assert display.eta_seconds() == pytest.approx(90 + 3 * 120)  # the running run: 30 s + 90 s
    display.rows[folders[0]].status, display.rows[folders[0]].seconds = "complete", 100.0
    display.rows[folders[1]].status, display.rows[folders[1]].started = "running", 0.0
    now[0] = 40.0
    assert display.eta_seconds() == pytest.approx(60 + 2 * 100)  # no progress yet: typical minus elapsed


def test_key_metric_is_the_tasks_learning_metric_on_the_test_split():
    test = {"accuracy": 0.9, "f1_macro": 0.712345}
    assert key_metric({"task": "classification", "metrics": {"test": test}}) == "f1_macro 0.7123"
    test = {"bleu": 3.0, "perplexity": 12.5}
    assert key_metric({"task": "generation", "metrics": {"test": test}}) == "perplexity 12.5"
    assert key_metric(None) == "" and key_metric({"task": "nope"}) == ""


def test_a_ray_task_relays_each_change_of_its_progress_to_the_driver(tmp_path, monkeypatch):
    from peftbench.execution import ray_executor

    monkeypatch.setattr(ray_executor, "RELAY_SECONDS", 0)
    (tmp_path / "a").mkdir()
    writes = iter(['{"step": 1}', '{"step": 1}', '{"step": 2}'])

    class Worker:
        returncode = 3
        polls = 0

        def poll(self):
            self.polls += 1
            if self.polls > 3:
                return self.returncode
            (tmp_path / "a" / PROGRESS_FILE).write_text(next(writes))
            return None

    sent = []
    assert ray_executor._relay(Worker(), tmp_path, ["a", "b"], lambda *item: sent.append(item)) == 3
    assert sent == [("a", '{"step": 1}'), ("a", '{"step": 2}')]


def test_output_to_leaves_every_logging_handler_writing_where_it_can(tmp_path):
    from peftbench.results.run_log import output_to

    closed = open(tmp_path / "gone.txt", "w")  # noqa: SIM115
    stale = logging.StreamHandler(closed)  # bound to a stream that is gone, like a test runner's capture
    closed.close()
    logging.getLogger("peftbench-test-stale").addHandler(stale)
    try:
        with output_to(tmp_path / LOG_FILE):
            made_inside = logging.StreamHandler()  # bound to the log file
            logging.getLogger("peftbench-test-inside").addHandler(made_inside)
            logging.getLogger("peftbench-test-inside").warning("inside")
        assert stale.stream is closed and made_inside.stream is sys.stderr
        assert "inside" in (tmp_path / LOG_FILE).read_text()
    finally:
        logging.getLogger("peftbench-test-stale").removeHandler(stale)
        logging.getLogger("peftbench-test-inside").removeHandler(made_inside)
