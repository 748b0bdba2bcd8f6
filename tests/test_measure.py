"""Efficiency measurements on objects whose true sizes, memory and durations are known."""

import time

import numpy as np
import pytest
import torch
from torch import nn

from peftbench.measure.measure import PeakMemory, count_parameters, safetensors_bytes, weights_bytes
from peftbench.measure.timing import EpochTimer


def test_count_parameters_counts_frozen_and_trainable():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))  # 3*4+4 = 16 and 4*2+2 = 10 parameters
    model[0].requires_grad_(False)
    assert count_parameters(model) == {
        "total_params": 26,
        "trainable_params": 10,
        "trainable_percent": pytest.approx(100 * 10 / 26),
    }
    assert count_parameters(nn.Module()) == {
        "total_params": 0,
        "trainable_params": 0,
        "trainable_percent": 0.0,
    }


def test_weights_bytes_uses_each_parameters_dtype():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2).to(torch.bfloat16))
    assert weights_bytes(model) == 16 * 4 + 10 * 2


def test_safetensors_bytes_sums_weight_files_at_any_depth(tmp_path):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "a.safetensors").write_bytes(b"x" * 100)
    (tmp_path / "adapter" / "b.safetensors").write_bytes(b"y" * 23)
    (tmp_path / "adapter" / "adapter_config.json").write_bytes(b"z" * 7)  # not weights
    (tmp_path / "empty").mkdir()
    assert safetensors_bytes(tmp_path) == 123
    assert safetensors_bytes(tmp_path / "adapter") == 23


def test_peak_memory_catches_a_peak_that_is_gone_by_the_end():
    size = 300 * 2**20
    with PeakMemory(interval=0.01) as memory:
        block = bytearray(size)  # zero-filled: the pages are really touched
        time.sleep(0.3)
        del block  # freed before __exit__, so only the sampling thread can have seen it
        time.sleep(0.05)
    report = memory.report()
    assert report["peak_rss_above_start_bytes"] > 0.8 * size
    absolute, start = report["process_peak_rss_bytes"], report["baseline_rss_bytes"]
    assert absolute - start == report["peak_rss_above_start_bytes"]
    assert report["baseline_rss_bytes"] > 0
    if torch.cuda.is_available():
        assert report["memory_method"].endswith("at each phase change")
    else:
        assert report["memory_method"].startswith("process RSS sampled every 10 ms, split by phase")
        assert "CUDA" not in report["memory_method"]
        assert report["cuda_peak_allocated_bytes"] is None and report["cuda_peak_reserved_bytes"] is None
    assert not memory._thread.is_alive()


def test_epoch_timer_measures_each_epoch():
    timer = EpochTimer()
    for pause in (0.05, 0.15):
        timer.on_epoch_begin(None, None, None)
        time.sleep(pause)
        timer.on_epoch_end(None, None, None)
    first, second = timer.epoch_seconds
    assert 0.05 <= first < 0.15 <= second < 0.5


class ScriptedProcess:
    """A process whose RSS readings are given in advance, one per call."""

    def __init__(self, readings):
        self.readings = iter(readings)

    def memory_info(self):
        return type("Info", (), {"rss": next(self.readings)})()


def scripted_memory(monkeypatch, rss, reserved=None):
    """A PeakMemory whose sampling thread never fires; readings come from the lists in call order."""
    if reserved is not None:
        readings, peak = iter(reserved), {"reserved": 0}

        def memory_reserved(device):
            assert device == 3  # the run's device, not the sampling thread's default
            value = next(readings)
            peak["reserved"] = max(peak["reserved"], value)
            return value

        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
        monkeypatch.setattr(torch.cuda, "memory_reserved", memory_reserved)
        monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda: peak["reserved"])
        monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: peak["reserved"])
        monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: peak.update(reserved=0))
    memory = PeakMemory(interval=3600)
    memory.process = ScriptedProcess(rss)
    return memory


def test_memory_mean_and_p99_per_phase_are_numpys_over_the_samples(monkeypatch):
    base = 1000
    train = [base, base + 50, base + 400, base + 30, base + 10]  # the start, three samples, the switch
    evaluation = [base + 700, base + 20, base + 5]  # two samples and the one at the end
    reserved_train, reserved_eval = [0, 64, 512, 128, 96], [2048, 256, 256]
    memory = scripted_memory(monkeypatch, [*train, *evaluation], [*reserved_train, *reserved_eval])
    with memory:
        for _ in range(3):
            memory._record_rss()
        memory.switch("eval")
        for _ in range(2):
            memory._record_rss()
    report = memory.report()
    for prefix, rss, reserved in (("", train, reserved_train), ("eval_", evaluation, reserved_eval)):
        above = np.array(rss) - base
        assert report[f"{prefix}mean_rss_above_start_bytes"] == round(above.mean())
        assert report[f"{prefix}p99_rss_above_start_bytes"] == round(np.percentile(above, 99))
        assert report[f"{prefix}cuda_mean_reserved_bytes"] == round(np.mean(reserved))
        assert report[f"{prefix}cuda_p99_reserved_bytes"] == round(np.percentile(reserved, 99))
        assert report[f"{prefix}p99_rss_above_start_bytes"] <= report[f"{prefix}peak_rss_above_start_bytes"]
        assert report[f"{prefix}cuda_p99_reserved_bytes"] <= report[f"{prefix}cuda_peak_reserved_bytes"]
    assert report["p99_rss_above_start_bytes"] == 400 - 0.04 * (400 - 50)  # by hand: 99% of the way, 4 gaps
    assert report["peak_rss_above_start_bytes"] == 400 and report["eval_peak_rss_above_start_bytes"] == 700


def test_memory_spread_is_none_where_nothing_was_sampled():
    with PeakMemory(interval=3600) as memory:
        pass
    report = memory.report()
    assert report["mean_rss_above_start_bytes"] is not None  # the start and the end
    assert report["eval_mean_rss_above_start_bytes"] is None
    assert report["eval_p99_rss_above_start_bytes"] is None
    if not torch.cuda.is_available():
        assert report["cuda_mean_reserved_bytes"] is None and report["cuda_p99_reserved_bytes"] is None


def test_memory_p99_never_exceeds_the_peak_on_a_sampled_run():
    with PeakMemory(interval=0.002) as memory:
        blocks = []
        for _ in range(10):
            blocks.append(bytearray(8 * 2**20))
            time.sleep(0.01)
        del blocks
    report = memory.report()
    assert len(memory.rss_samples["train"]) > 10
    assert 0 < report["p99_rss_above_start_bytes"] <= report["peak_rss_above_start_bytes"]
    assert report["mean_rss_above_start_bytes"] <= report["p99_rss_above_start_bytes"]
