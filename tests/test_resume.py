"""Resume is exact on a CPU: a run stopped at a chosen step and run again logs the same losses after the
resume, and ends with the same test metrics and predictions, as a run never stopped; its train_seconds is
the seconds up to the checkpoint plus the resumed segment's, on an injected clock where a step takes 1 s."""

import functools
import inspect
import json
from pathlib import Path

import pytest
import torch
import yaml
from transformers import TrainerCallback
from transformers.trainer_pt_utils import get_length_grouped_indices
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.measure.timing import EpochTimer
from peftbench.results import checkpoints, results
from peftbench.results.run_folder import read_run
from peftbench.training import training

pytestmark = pytest.mark.slow

LORA = {"method": "lora", "r": 4, "target_modules": ["query", "value"]}


class Tick(TrainerCallback):
    """The injected clock: every optimizer step takes exactly one second, nothing else takes any."""

    def __init__(self, now: list[float]) -> None:
        self.now = now

    def on_step_begin(self, args, state, control, **kwargs):
        self.now[0] += 1.0


class StopAt(TrainerCallback):
    """What a SIGTERM does in a worker (interrupts.stop_on_signals): KeyboardInterrupt, here once `step`
    steps are done, or while the checkpoint of that step is being saved (before it is complete)."""

    def __init__(self, step: int, while_saving: bool = False) -> None:
        self.step, self.while_saving = step, while_saving

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.step and not self.while_saving:
            raise KeyboardInterrupt("SIGTERM")

    def on_save(self, args, state, control, **kwargs):  # runs before ResumeState.on_save: cut short
        if state.global_step == self.step and self.while_saving:
            raise KeyboardInterrupt("SIGTERM")


@pytest.fixture
def injected(monkeypatch):
    """A fake clock for the epoch timer, and a slot for one more callback in every Trainer made."""
    now, extra = [0.0], []
    monkeypatch.setattr(training, "EpochTimer", functools.partial(EpochTimer, clock=lambda: now[0]))
    make_trainer = training.make_trainer

    def with_callbacks(*args, **kwargs):
        call = inspect.signature(make_trainer).bind(*args, **kwargs)
        call.arguments["callbacks"] = [*call.arguments.get("callbacks", ()), Tick(now), *extra]
        return make_trainer(*call.args, **call.kwargs)

    monkeypatch.setattr(training, "make_trainer", with_callbacks)
    return extra


def _run(experiment: dict, folder: Path, tmp_path: Path) -> CliRunner:
    experiment = {**experiment, "output_dir": str(folder)}
    path = tmp_path / f"{folder.name}.yaml"
    path.write_text(yaml.safe_dump(experiment))
    return CliRunner().invoke(app, ["run", str(path), "--inline"])


def _result(folder: Path) -> tuple[dict, str]:
    assert read_run(folder).status == "complete"
    return json.loads((folder / results.RESULT_FILE).read_text()), (folder / "predictions.jsonl").read_text()


def _without_speeds(metrics: dict) -> dict:
    return {name: value for name, value in metrics.items() if not name.endswith("_per_second")}


def _experiment(experiment: dict, method: dict, **settings) -> dict:
    return {
        **experiment,
        "methods": [method],
        "baselines": False,
        "training": {**experiment["training"], "epochs": 3, **settings},
    }


FULL = {"method": "full"}


@pytest.mark.parametrize(
    ("method", "settings", "stop", "checkpoint"),
    [  # 5 steps an epoch, 15 in all
        (FULL, {"checkpoint_every": 3, "logging_steps": 2}, 4, 3),  # mid-epoch, a loss not yet logged
        (LORA, {"checkpoint_every": 5, "logging_steps": 1}, 7, 5),  # an epoch's end: its evaluation after
        (FULL, {"checkpoint_minutes": 1e-9, "logging_steps": 1}, 5, 5),  # the same, asked for by the clock
        (FULL, {"checkpoint_every": 7, "logging_steps": 1, "group_by_length": True}, 8, 7),  # second epoch
        (FULL, {"early_stopping_patience": 5, "logging_steps": 1}, 7, 5),  # per-epoch checkpoints
    ],
    ids=["full-mid-epoch", "lora-epoch-end", "every-minutes-epoch-end", "group-by-length", "early-stopping"],
)
def test_a_run_stopped_and_resumed_equals_an_uninterrupted_one(
    experiment, injected, tmp_path, method, settings, stop, checkpoint
):
    experiment = _experiment(experiment, method, **settings)
    name = method["method"]
    injected.append(StopAt(stop))
    stopped = _run(experiment, tmp_path / "stopped", tmp_path)
    assert read_run(tmp_path / "stopped" / "tiny" / name).status == "interrupted", stopped.output
    injected.clear()
    assert _run(experiment, tmp_path / "stopped", tmp_path).exit_code == 0
    assert _run(experiment, tmp_path / "fresh", tmp_path).exit_code == 0
    (resumed, resumed_predictions) = _result(tmp_path / "stopped" / "tiny" / name)
    (uninterrupted, uninterrupted_predictions) = _result(tmp_path / "fresh" / "tiny" / name)

    assert resumed["resumed_from"]["checkpoint"] == f"checkpoint-{checkpoint}"
    assert resumed["logged_steps"] == uninterrupted["logged_steps"]  # every step's loss, before and after
    assert [row["step"] for row in resumed["logged_steps"] if "train_loss" in row][-1] >= 14
    assert resumed["history"] == uninterrupted["history"]
    assert _without_speeds(resumed["metrics"]["test"]) == _without_speeds(uninterrupted["metrics"]["test"])
    assert resumed_predictions == uninterrupted_predictions

    steps = resumed["efficiency"]["steps_trained"]
    assert uninterrupted["efficiency"]["train_seconds"] == steps == 15
    assert resumed["resumed_from"]["train_seconds_before"] == checkpoint  # the partial epoch kept
    assert resumed["resumed_from"]["train_seconds_resumed"] == steps - checkpoint  # lost work: once
    assert resumed["efficiency"]["train_seconds"] == steps


def test_a_stop_while_a_checkpoint_is_written_resumes_from_the_one_before(experiment, injected, tmp_path):
    experiment = _experiment(experiment, FULL, checkpoint_every=2, logging_steps=2)
    injected.append(StopAt(4, while_saving=True))  # checkpoint-4 saved, its clock not yet written
    _run(experiment, tmp_path / "stopped", tmp_path)
    trainer = tmp_path / "stopped" / "tiny" / "full" / "trainer"
    # The cut-short checkpoint goes at the stop; the complete one before it is still there to resume from.
    assert [folder.name for folder in trainer.glob("checkpoint-*")] == ["checkpoint-2"]
    assert (trainer / "checkpoint-2" / checkpoints.CLOCK_FILE).is_file()
    injected.clear()
    assert _run(experiment, tmp_path / "stopped", tmp_path).exit_code == 0
    assert _run(experiment, tmp_path / "fresh", tmp_path).exit_code == 0
    (redone, _), (uninterrupted, _) = (
        _result(tmp_path / folder / "tiny" / "full") for folder in ("stopped", "fresh")
    )
    assert redone["resumed_from"]["checkpoint"] == "checkpoint-2"
    assert redone["logged_steps"] == uninterrupted["logged_steps"]
    assert redone["efficiency"]["train_seconds"] == uninterrupted["efficiency"]["train_seconds"] == 15


def test_only_the_newest_complete_checkpoint_and_the_best_are_kept(tmp_path):
    for step, complete in ((2, True), (4, True), (6, True), (8, False)):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if complete:
            (tmp_path / f"checkpoint-{step}" / checkpoints.CLOCK_FILE).write_text("{}")
    checkpoints.keep_last(tmp_path, best=str(tmp_path / "checkpoint-2"))
    assert sorted(folder.name for folder in tmp_path.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-6"]
    checkpoints.keep_last(tmp_path)
    assert [folder.name for folder in tmp_path.glob("checkpoint-*")] == ["checkpoint-6"]


def test_group_by_length_draws_each_epochs_order_from_the_seed_and_the_epoch(
    experiment, monkeypatch, tmp_path
):
    """The order a resumed run rebuilds: seed + epoch, recomputed here with the Trainer's own grouping."""
    samplers, orders = [], []
    iterate = checkpoints.EpochSeededLengthSampler.__iter__

    def recorded(sampler):
        samplers.append(sampler)
        orders.append(list(iterate(sampler)))
        return iter(orders[-1])

    monkeypatch.setattr(checkpoints.EpochSeededLengthSampler, "__iter__", recorded)
    experiment = {**_experiment(experiment, FULL, logging_steps=1, group_by_length=True), "seed": 7}
    assert _run(experiment, tmp_path / "runs", tmp_path).exit_code == 0
    assert len(samplers) == 3 and samplers == [samplers[0]] * 3
    lengths, batch = samplers[0].lengths, samplers[0].batch_size
    seeded = [torch.Generator().manual_seed(7 + epoch) for epoch in range(3)]
    assert orders == [get_length_grouped_indices(lengths, batch, generator=g) for g in seeded]
    assert orders[0] != orders[1] != orders[2]
