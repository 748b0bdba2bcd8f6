"""Efficiency measurements. Figures a device cannot give are None, never a crash."""

import threading
import time
from pathlib import Path

import psutil
import torch
from torch import nn
from transformers import TrainerCallback


def count_parameters(model: nn.Module) -> dict:
    """Counted the way PEFT's get_nb_trainable_parameters counts them (every registered parameter)."""
    total = trainable = 0
    for param in model.parameters():
        count = param.numel()
        total += count
        if param.requires_grad:
            trainable += count
    return {
        "total_params": total,
        "trainable_params": trainable,
        "trainable_percent": 100.0 * trainable / total if total else 0.0,
    }


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def weights_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


class PeakMemory:
    """Peak process RSS sampled on a thread (every 50 ms) plus CUDA's own peak counters when present."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.process = psutil.Process()
        self.peak_rss = self.baseline_rss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)

    def __enter__(self) -> "PeakMemory":
        self.baseline_rss = self.peak_rss = self.process.memory_info().rss
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)

    def report(self) -> dict:
        cuda = torch.cuda.is_available()
        return {
            "peak_rss_bytes": self.peak_rss,
            "baseline_rss_bytes": self.baseline_rss,
            "cuda_peak_allocated_bytes": torch.cuda.max_memory_allocated() if cuda else None,
            "cuda_peak_reserved_bytes": torch.cuda.max_memory_reserved() if cuda else None,
            "memory_method": "process RSS sampled every 50 ms during training (includes the loaded model)"
            + ("; CUDA peak counters reset at train start" if cuda else ""),
        }


class EpochTimer(TrainerCallback):
    """Training time per epoch, measured between on_epoch_begin and on_epoch_end, so evaluation
    (which the Trainer runs after on_epoch_end) is excluded."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self._start = 0.0

    def _sync(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._sync()
        self._start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self._sync()
        self.epoch_seconds.append(time.perf_counter() - self._start)
