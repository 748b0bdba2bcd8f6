"""Efficiency measurements. Figures a device cannot give are None, never a crash."""

import ctypes
import gc
import threading
from array import array
from pathlib import Path

import numpy as np
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


def safetensors_bytes(folder: Path) -> int:
    """Bytes of the .safetensors files under `folder` (every shard), nothing else."""
    return sum(f.stat().st_size for f in Path(folder).rglob("*.safetensors") if f.is_file())


def weights_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


PHASES = ("train", "eval")


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc's malloc_trim; nothing elsewhere),
    so the RSS at a run's start holds what is live, not what an earlier run in the process freed."""
    gc.collect()
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):  # not glibc (macOS, musl, Windows)
        return
    trim(0)


def spread(samples, baseline: int = 0) -> dict:
    """Mean and 99th percentile (numpy's linear interpolation) of `samples` minus `baseline`, floored at 0;
    None for both without samples."""
    if not len(samples):
        return {"mean": None, "p99": None}
    values = np.maximum(np.asarray(samples, dtype=np.float64) - baseline, 0.0)
    return {"mean": int(round(float(values.mean()))), "p99": int(round(float(np.percentile(values, 99))))}


class PeakMemory:
    """Peak process RSS sampled on a thread (every 50 ms) plus CUDA's own peak counters, kept per phase:
    samples count for `phase` ('train' unless switched, e.g. by MemoryPhases), and the CUDA counters are
    read and reset at every switch. The comparable figure is the peak above the RSS at the start: runs that
    share a process (--inline) would otherwise each carry what the earlier runs left resident. Every sample
    (RSS, and CUDA reserved on a GPU) is kept per phase for the mean and the 99th percentile; a lock keeps
    a sample and a phase switch apart, so a sample never lands in a phase whose CUDA peak is folded."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.process = psutil.Process()
        self.phase = "train"
        self.device: int | None = None  # the run's CUDA device, read by the sampling thread too
        self.baseline_rss = 0
        self.rss = dict.fromkeys(PHASES, 0)
        self.cuda_allocated: dict[str, int | None] = dict.fromkeys(PHASES)
        self.cuda_reserved: dict[str, int | None] = dict.fromkeys(PHASES)
        self.rss_samples = {phase: array("q") for phase in PHASES}
        self.reserved_samples = {phase: array("q") for phase in PHASES}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def peak_rss(self) -> int:
        """The process's absolute training peak (everything resident, earlier runs' leftovers included)."""
        return self.rss["train"]

    @property
    def peak_above_start(self) -> int:
        return max(0, self.rss["train"] - self.baseline_rss)

    def _record_rss(self) -> None:
        with self._lock:
            phase, rss = self.phase, self.process.memory_info().rss
            self.rss[phase] = max(self.rss[phase], rss)
            self.rss_samples[phase].append(rss)
            if torch.cuda.is_available():
                self.reserved_samples[phase].append(torch.cuda.memory_reserved(self.device))

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._record_rss()

    def _fold_cuda(self) -> None:
        if not torch.cuda.is_available():
            return
        phase = self.phase
        self.cuda_allocated[phase] = max(self.cuda_allocated[phase] or 0, torch.cuda.max_memory_allocated())
        self.cuda_reserved[phase] = max(self.cuda_reserved[phase] or 0, torch.cuda.max_memory_reserved())
        torch.cuda.reset_peak_memory_stats()

    def switch(self, phase: str) -> None:
        """Close the current phase (its last RSS sample and CUDA peaks) and count what follows for `phase`."""
        if phase == self.phase:
            return
        self._record_rss()
        with self._lock:
            self._fold_cuda()
            self.phase = phase

    def __enter__(self) -> "PeakMemory":
        release_freed_memory()
        if torch.cuda.is_available():
            self.device = torch.cuda.current_device()  # a thread's own current device is device 0
            torch.cuda.reset_peak_memory_stats()
        self._record_rss()
        self.baseline_rss = self.rss[self.phase]
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._record_rss()
        self._fold_cuda()

    def spreads(self) -> dict:
        """Mean and p99 per phase: RSS above the start, and CUDA reserved (None without a GPU)."""
        found = {}
        for phase in PHASES:
            prefix = "eval_" if phase == "eval" else ""
            rss = spread(self.rss_samples[phase], self.baseline_rss)
            reserved = spread(self.reserved_samples[phase]) if torch.cuda.is_available() else spread([])
            for stat in ("mean", "p99"):
                found[f"{prefix}{stat}_rss_above_start_bytes"] = rss[stat]
                found[f"{prefix}cuda_{stat}_reserved_bytes"] = reserved[stat]
        return found

    def report(self) -> dict:
        cuda = torch.cuda.is_available()
        evaluated = self.rss["eval"] > 0
        return {
            **self.spreads(),
            "peak_rss_above_start_bytes": self.peak_above_start,
            "process_peak_rss_bytes": self.rss["train"],
            "baseline_rss_bytes": self.baseline_rss,
            "cuda_peak_allocated_bytes": self.cuda_allocated["train"],
            "cuda_peak_reserved_bytes": self.cuda_reserved["train"],
            "eval_peak_rss_above_start_bytes": max(0, self.rss["eval"] - self.baseline_rss)
            if evaluated
            else None,
            "eval_process_peak_rss_bytes": self.rss["eval"] if evaluated else None,
            "eval_cuda_peak_allocated_bytes": self.cuda_allocated["eval"],
            "eval_cuda_peak_reserved_bytes": self.cuda_reserved["eval"],
            "memory_method": f"process RSS sampled every {self.interval * 1000:g} ms, split by phase: "
            "training steps vs per-epoch validation (from on_epoch_end to on_evaluate); eval_* are the "
            "validation peaks, None when no validation ran. *_above_start: the peak minus baseline_rss, the "
            "RSS when training started (garbage collected and freed heap returned first; the prepared model "
            "is in it), comparable between runs that share a process; process_*: the absolute RSS, which "
            "includes whatever the process held before the run. RSS keeps memory the allocator has not "
            "returned, so a phase's peak can include what an earlier phase left. mean_*/p99_*: the mean and "
            "99th percentile (numpy, linear) of the phase's samples"
            + ("; CUDA peak counters read and reset at train start and at each phase change" if cuda else ""),
        }


class MemoryPhases(TrainerCallback):
    """Attributes memory samples to validation between on_epoch_end (the Trainer evaluates right after
    it) and on_evaluate, and to training otherwise."""

    def __init__(self, memory: PeakMemory) -> None:
        self.memory = memory

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.memory.switch("train")

    def on_epoch_end(self, args, state, control, **kwargs):
        if control.should_evaluate:  # set just before by the Trainer's flow callback
            self.memory.switch("eval")

    def on_evaluate(self, args, state, control, **kwargs):
        self.memory.switch("train")
