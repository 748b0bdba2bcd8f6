"""A catalogue of failures: each bad name, corrupted file, override or number ends in one error line."""

import errno
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from filelock import FileLock
from transformers import TrainerControl
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.config.config import apply_overrides
from peftbench.errors import PeftbenchError
from peftbench.execution import executor
from peftbench.grid import lr_search
from peftbench.inputs.experiment import build_config
from peftbench.report.collect import load_run_groups
from peftbench.results import results, run_folder
from peftbench.results.checkpoints import SaveEveryMinutes
from peftbench.results.run_folder import read_run, recording
from peftbench.training.training import _arguments

runner = CliRunner()


@pytest.mark.parametrize("name", ["../../../escaped", "/tmp/abs", "..", ".", "a/b", "with space", "", "-x"])
def test_method_names_that_leave_the_experiment_are_refused(experiment, name):
    experiment["methods"][0]["name"] = name
    with pytest.raises(PeftbenchError, match="methods.0.name.*not a valid name; use letters, digits"):
        build_config(experiment)


@pytest.mark.parametrize("name", ["..", "../up", "/abs", "a/b", "x y", "a\\b"])
def test_experiment_names_that_leave_output_dir_are_refused(experiment, name):
    experiment["name"] = name
    with pytest.raises(PeftbenchError, match="config key 'name'.*not a valid name"):
        build_config(experiment)


def test_sweep_values_that_make_a_path_are_refused(experiment):
    experiment["methods"] = [{"method": "lora", "sweep": {"target_modules": [["query"], ["../x"]]}}]
    with pytest.raises(PeftbenchError, match="run name from sweep values 'lora-tm../x' is not a valid name"):
        build_config(experiment)


def test_valid_names_pass(experiment):
    experiment["name"] = "exp_1.v2"
    experiment["methods"][0]["name"] = "full-lr1e-3+x=y"
    assert build_config(experiment).methods[0].run_name == "full-lr1e-3+x=y"


def _finished_run(folder: Path, config_hash: str = "h") -> Path:
    results.write_json(folder / results.RESULT_FILE, {"run": folder.name, "method": {"name": "full"}})
    run_folder.write_status(folder, "complete", config_hash=config_hash)
    return folder


@pytest.mark.parametrize("damaged", [results.RESULT_FILE, results.STATUS_FILE])
def test_a_truncated_file_skips_that_run_with_a_warning(tmp_path, capsys, damaged):
    good, bad = _finished_run(tmp_path / "good"), _finished_run(tmp_path / "bad")
    text = (bad / damaged).read_text()
    (bad / damaged).write_text(text[: len(text) // 2])
    assert [r["run"] for r in run_folder.finished_results(tmp_path)] == ["good"]
    assert [c.name for c in load_run_groups(tmp_path)] == ["good"]
    warning = capsys.readouterr().err
    assert f"warning: skipped damaged {bad / damaged}" in warning and "peftbench run" in warning
    assert warning.count("warning:") == 1  # once per file, not once per reader
    assert read_run(good).finished_with("h") and not read_run(bad).finished_with("h")


def test_a_status_that_is_not_an_object_is_damaged(tmp_path):
    run = _finished_run(tmp_path / "run")
    (run / results.STATUS_FILE).write_text("[1, 2]")
    assert read_run(run).status == "unknown" and run_folder.finished_results(tmp_path) == []


def test_a_damaged_search_record_cannot_be_chosen(tmp_path):
    run = _finished_run(tmp_path / "search")
    (run / lr_search.SEARCH_FILE).write_text('{"validation": {"loss"')
    assert lr_search._trial(run, 1e-3, "loss") == {"learning_rate": 1e-3, "value": None, "status": "damaged"}


def test_a_running_status_whose_process_is_gone_reads_interrupted(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    run_folder.write_status(run, "running", pid=dead.pid, host=socket.gethostname(), config_hash="h")
    assert read_run(run).status == "interrupted"
    assert not read_run(run).finished_with("h")
    run_folder.write_status(run, "running", pid=os.getpid(), host=socket.gethostname())
    assert read_run(run).status == "running"


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("learning_rate", float("inf"), "finite number"),
        ("learning_rate", float("nan"), "finite number"),
        ("batch_size", True, "not true/false"),
        ("epochs", False, "not true/false"),
    ],
)
def test_numbers_must_be_finite_numbers(experiment, key, value, problem):
    experiment["training"][key] = value
    with pytest.raises(PeftbenchError, match=f"training.{key}.*{problem}"):
        build_config(experiment)


def test_yaml_infinity_and_booleans_in_files_and_lists(experiment):
    experiment["methods"][0]["learning_rate"] = float("inf")
    with pytest.raises(PeftbenchError, match="methods.0.learning_rate"):
        build_config(experiment)
    experiment["methods"][0]["learning_rate"] = 1e-3
    experiment["seeds"] = [1, True]
    with pytest.raises(PeftbenchError, match="seeds.*not true/false"):
        build_config(experiment)


def test_a_broken_override_is_one_error_line(experiment):
    with pytest.raises(PeftbenchError, match=r"override 'training.epochs=\[1': the value is not valid YAML"):
        apply_overrides(experiment, ["training.epochs=[1"])


def test_an_output_dir_that_is_a_file_fails_before_the_model_loads(tmp_path, experiment):
    (tmp_path / "runs").write_text("not a folder")
    experiment["model"] = "no-such-model-is-loaded"
    result = runner.invoke(app, ["run", str(_yaml(tmp_path, experiment))])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "error: cannot write to the experiment folder" in result.output.replace("\n", " ")


def test_a_second_run_on_the_same_experiment_is_refused(tmp_path, experiment):
    folder = tmp_path / "runs" / "tiny"
    folder.mkdir(parents=True)
    with FileLock(folder / executor.LOCK_FILE):
        result = runner.invoke(app, ["run", str(_yaml(tmp_path, experiment))])
    assert result.exit_code == 2
    assert "is in use by another `peftbench run`" in result.output.replace("\n", " ")


def _yaml(tmp_path: Path, experiment: dict) -> Path:
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(experiment))
    return path


def test_a_full_disk_marks_the_run_failed_with_the_fix(tmp_path):
    with pytest.raises(OSError), recording(tmp_path / "run"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    status = read_run(tmp_path / "run")
    assert status.status == "failed" and "free disk space under output_dir" in status.error


def test_when_not_even_the_status_can_be_written_the_grid_marks_the_run(tmp_path, monkeypatch):
    real_mark = run_folder.write_status

    def disk_full(run_dir, status, **details):
        if status != "running":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_mark(run_dir, status, **details)

    monkeypatch.setattr(run_folder, "write_status", disk_full)
    with pytest.raises(ValueError, match="the run's own error"), recording(tmp_path / "run", "h"):
        raise ValueError("the run's own error")
    monkeypatch.setattr(run_folder, "write_status", real_mark)
    assert executor._failures_after_worker([tmp_path / "run"], 1) == [
        "run: worker process exited with code 1 before the run finished (crash or out of memory)"
    ]
    assert read_run(tmp_path / "run").config_hash == "h"


@pytest.mark.slow
def test_an_unwritable_run_folder_fails_that_run_and_the_grid_goes_on(tmp_path, experiment):
    experiment["methods"] = [{"method": "head", "name": "a"}, {"method": "head", "name": "b"}]
    experiment["baselines"] = False
    (tmp_path / "runs" / "tiny").mkdir(parents=True)
    (tmp_path / "runs" / "tiny" / "a").write_text("a file where the run folder should be")
    result = runner.invoke(app, ["run", str(_yaml(tmp_path, experiment)), "--inline"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "error: run a: worker process exited" in result.output.replace("\n", " ")
    assert "status could not be written" in result.output.replace("\n", " ")
    assert read_run(tmp_path / "runs" / "tiny" / "b").status == "complete"


SECRET = "hf_SecretValue1234"


def test_every_written_file_loses_secret_substrings(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    results.write_atomic(tmp_path / "predictions.jsonl", f'{{"text": "prefix {SECRET} suffix"}}\\n')
    results.write_json(tmp_path / "a.json", {"model": f"https://user:{SECRET}@host/m"})
    for path in (tmp_path / "predictions.jsonl", tmp_path / "a.json"):
        assert SECRET not in path.read_text() and "<redacted>" in path.read_text()


def test_library_files_in_a_finished_run_are_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    with recording(tmp_path / "run") as run_dir:
        (run_dir / "adapter").mkdir()
        (run_dir / "adapter" / "adapter_config.json").write_text(f'{{"base_model_name_or_path": "{SECRET}"}}')
    assert SECRET not in (tmp_path / "run" / "adapter" / "adapter_config.json").read_text()


def test_tokenizer_names_are_not_secrets(monkeypatch):
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false-but-long")
    data = {
        "tokenizer_name_or_path": "bert-base",
        "hub_token": "x",
        "access_token": "y",
        "text": "false-but-long",
    }
    assert results.redact(data) == {**data, "hub_token": "<redacted>", "access_token": "<redacted>"}


def test_files_follow_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        results.write_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640


def test_a_checkpoint_is_asked_for_every_n_minutes():
    now = [0.0]
    callback = SaveEveryMinutes(2, clock=lambda: now[0])
    control = TrainerControl()
    now[0] = 119
    callback.on_step_end(None, None, control)
    assert not control.should_save
    now[0] = 120
    callback.on_step_end(None, None, control)
    assert control.should_save
    callback.on_save(None, None, control)
    control.should_save = False
    now[0] = 200
    callback.on_step_end(None, None, control)
    assert not control.should_save


def test_checkpoint_every_turns_on_step_checkpoints(experiment):
    experiment["training"]["checkpoint_every"] = 7
    config = build_config(experiment).training
    arguments = _arguments(config, Path("out"), 0, evaluate=False, loss_only=False)
    assert (arguments.save_strategy, arguments.save_steps, arguments.save_total_limit) == ("steps", 7, None)
