"""What a run measures: throughput over the epochs actually trained, when it started, memory by phase."""

import copy
import json
import time
from datetime import datetime

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, TrainerCallback, TrainerControl

from peftbench.inputs import run_inputs
from peftbench.inputs.experiment import build_config
from peftbench.measure.measure import MemoryPhases, PeakMemory
from peftbench.run import runner
from peftbench.training import training


class StopAfterFirstEpoch(TrainerCallback):
    def on_epoch_end(self, args, state, control, **kwargs):
        control.should_training_stop = True


@pytest.fixture
def stopped_early(experiment, monkeypatch):
    """A 3-epoch full fine-tuning run that stops after its first epoch, as early stopping would;
    training is held 2 s before it starts, so the start time is visibly before the end."""
    real_make_trainer, real_train = training.make_trainer, runner.train

    def make_trainer(*args, **kwargs):
        trainer = real_make_trainer(*args, **kwargs)
        trainer.add_callback(StopAfterFirstEpoch())
        return trainer

    def slow_train(*args, **kwargs):
        time.sleep(2)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(training, "make_trainer", make_trainer)
    monkeypatch.setattr(runner, "train", slow_train)
    experiment["training"]["epochs"] = 3
    config = build_config({**experiment, "methods": [{"method": "full"}]})
    workspace = run_inputs.prepare_inputs(config)
    run_dir = runner.run_method(workspace, config.methods[0])
    return json.loads((run_dir / "result.json").read_text()), workspace


def test_throughput_counts_the_epochs_actually_trained(stopped_early):
    result, workspace = stopped_early
    efficiency = result["efficiency"]
    train = workspace.data.splits["train"]
    assert efficiency["epochs_trained"] == 1 and len(efficiency["epoch_seconds"]) == 1
    assert efficiency["eval_process_peak_rss_bytes"] > 0  # the validation after the epoch had its own peak
    assert efficiency["steps_trained"] == -(-len(train) // 8)  # batch_size 8
    seconds = efficiency["train_seconds"]
    assert efficiency["train_samples_per_second"] == pytest.approx(len(train) / seconds)
    tokens = sum(len(ids) for ids in train["input_ids"])
    assert efficiency["train_tokens_per_second"] == pytest.approx(tokens / seconds)


def test_started_at_is_when_the_run_started(stopped_early):
    result, _ = stopped_early
    started, finished = (datetime.fromisoformat(result[k]) for k in ("started_at", "finished_at"))
    assert (finished - started).total_seconds() >= 2


def test_memory_is_split_into_training_and_validation_peaks():
    allocation = 300 * 2**20
    control = TrainerControl(should_evaluate=True)
    with PeakMemory(interval=0.005) as memory:
        phases = MemoryPhases(memory)
        phases.on_epoch_begin(None, None, control)
        time.sleep(0.05)
        phases.on_epoch_end(None, None, control)  # validation follows
        big = np.ones(allocation // 8)  # touched, so resident
        time.sleep(0.1)
        del big
        phases.on_evaluate(None, None, control)
        time.sleep(0.05)
    report = memory.report()
    assert report["eval_peak_rss_above_start_bytes"] >= allocation * 0.9
    assert report["eval_process_peak_rss_bytes"] >= report["baseline_rss_bytes"] + allocation * 0.9
    assert report["peak_rss_above_start_bytes"] < allocation / 2
    assert memory.peak_rss == report["process_peak_rss_bytes"]
    assert "validation" in report["memory_method"]


def test_no_validation_means_no_validation_peak():
    control = TrainerControl(should_evaluate=False)
    with PeakMemory(interval=0.005) as memory:
        MemoryPhases(memory).on_epoch_end(None, None, control)
        time.sleep(0.02)
    report = memory.report()
    assert report["eval_peak_rss_above_start_bytes"] is None and report["eval_process_peak_rss_bytes"] is None
    assert report["process_peak_rss_bytes"] > 0


@pytest.fixture
def tiny_lm(tiny_llama_lm):
    return AutoModelForCausalLM.from_pretrained(tiny_llama_lm)


def test_artifact_bytes_are_the_safetensors_weights_shipped(tiny_lm, tmp_path):
    adapter = get_peft_model(copy.deepcopy(tiny_lm), LoraConfig(r=2, target_modules=["q_proj"]))
    shipped = runner._save_artifact(adapter, "adapter", tmp_path, save_full=False)
    assert shipped["artifact_bytes"] == (tmp_path / "adapter" / "adapter_model.safetensors").stat().st_size
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()  # shipped, but not weights

    partly = copy.deepcopy(tiny_lm)
    for name, param in partly.named_parameters():
        param.requires_grad = name.endswith("bias") or "norm" in name
    shipped = runner._save_artifact(partly, "trainable", tmp_path, save_full=False)
    assert shipped["artifact_bytes"] == (tmp_path / "trainable" / "model.safetensors").stat().st_size

    kept = runner._save_artifact(tiny_lm, "full", tmp_path, save_full=True)
    assert kept["artifact_bytes"] == (tmp_path / "model" / "model.safetensors").stat().st_size
    assert all(r["artifact_definition"] == runner.ARTIFACT_DEFINITION for r in (shipped, kept))


def test_an_unkept_full_model_counts_what_saving_it_would_write(tiny_lm, tmp_path):
    (tmp_path / "kept").mkdir()
    (tmp_path / "unkept").mkdir()
    kept = runner._save_artifact(tiny_lm, "full", tmp_path / "kept", save_full=True)
    unkept = runner._save_artifact(tiny_lm, "full", tmp_path / "unkept", save_full=False)
    assert unkept["artifact_bytes"] == kept["artifact_bytes"] > 0
    assert unkept["artifact_path"] is None and not any((tmp_path / "unkept").iterdir())  # scratch removed


def test_cuda_peaks_are_read_and_reset_at_each_phase_change(monkeypatch):
    peak = {"allocated": 0}

    def use(size):  # the allocator's peak counter only rises until reset
        peak["allocated"] = max(peak["allocated"], size)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: peak["allocated"])
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda: 2 * peak["allocated"])
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: peak.update(allocated=0))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 0)  # samples for mean and p99
    control = TrainerControl(should_evaluate=True)
    with PeakMemory() as memory:
        phases = MemoryPhases(memory)
        use(100)  # training steps
        phases.on_epoch_end(None, None, control)
        use(500)  # validation with full-vocabulary logits
        phases.on_evaluate(None, None, control)
        phases.on_epoch_begin(None, None, control)
        use(120)  # the second epoch's training
    report = memory.report()
    assert report["cuda_peak_allocated_bytes"] == 120 and report["cuda_peak_reserved_bytes"] == 240
    assert report["eval_cuda_peak_allocated_bytes"] == 500 and report["eval_cuda_peak_reserved_bytes"] == 1000


def test_result_records_cpu_and_wall_time_and_utilisation(stopped_early):
    result, _ = stopped_early
    timing, efficiency = result["timing"], result["efficiency"]
    assert timing["wall_seconds"] == pytest.approx(efficiency["train_seconds"])
    assert len(timing["epochs"]) == 1 and timing["cpu_seconds"] > 0
    assert isinstance(timing["contended"], bool)
    utilisation = result["utilisation"]
    assert utilisation["achieved_flops"] == pytest.approx(
        utilisation["model_flops_per_token"] * efficiency["train_tokens_per_second"]
    )
    assert efficiency["model_flops_utilisation"] == pytest.approx(
        utilisation["achieved_flops"] / utilisation["peak"]["peak_flops"]
    )
    assert result["metrics"]["test"]["eval_tokens_per_second"] > 0
