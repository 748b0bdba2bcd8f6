"""How close a run came to the machine: its matrix-product FLOPs per token times tokens per second,
against this machine's measured matrix-product peak at the run's precision. The peak is measured once
per machine, thread count, torch version and precision, and cached under the peftbench cache dir."""

import json
import platform
import time
from pathlib import Path

import torch
from torch import nn

from peftbench.models.models import cache_root

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
SIZES = {"cpu": 1024, "cuda": 8192}  # square products big enough to reach the library's best kernels
MIN_SECONDS = 0.3  # time each size for at least this long; the best of REPEATS rounds is kept
REPEATS = 5


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cache_file(device: torch.device, precision: str) -> Path:
    threads = torch.get_num_threads() if device.type == "cpu" else 0
    key = f"{device_name(device)}-{threads}threads-torch{torch.__version__}-{precision}"
    safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in key)
    return cache_root() / "hardware" / f"{safe}.json"


def _time_products(a: torch.Tensor, b: torch.Tensor) -> tuple[int, float, float]:
    """(products, wall seconds, process CPU seconds) for as many products as fill MIN_SECONDS."""
    sync = torch.cuda.synchronize if a.is_cuda else (lambda: None)
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while True:
        torch.mm(a, b)
        count += 1
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_SECONDS:
            return count, elapsed, time.process_time() - cpu


def measure_peak(device: torch.device, precision: str, size: int | None = None) -> dict:
    """FLOP/s of a square matrix product at `precision`, the best of REPEATS timed rounds. On a CPU
    shared with other processes, wall time undercounts the machine; there the rate per CPU second times
    the thread count (what the threads reach on cores of their own) is the peak, and the measurement is
    marked contended."""
    size = size or SIZES.get(device.type, 1024)
    dtype = DTYPES[precision]
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.mm(a, b)  # warm-up: kernel selection, first-touch allocation
    flops = 2 * size**3
    wall_rate = cpu_rate = 0.0
    for _ in range(REPEATS):
        count, seconds, cpu = _time_products(a, b)
        wall_rate = max(wall_rate, flops * count / seconds)
        cpu_rate = max(cpu_rate, flops * count / cpu if cpu > 0 else 0.0)
    threads = torch.get_num_threads()
    per_core = cpu_rate * threads if device.type == "cpu" else 0.0
    return {
        "peak_flops": max(wall_rate, per_core),
        "wall_flops": wall_rate,
        "contended": per_core > wall_rate / 0.8,
        "device": device_name(device),
        "precision": precision,
        "torch_threads": threads,
        "torch": torch.__version__,
        "method": f"torch.mm of two {size}x{size} {precision} matrices, 2*n^3 FLOPs per product, "
        f"best of {REPEATS} rounds of at least {MIN_SECONDS} s; on a CPU the larger of the wall-time rate "
        "and the rate per process CPU second x torch threads",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def matmul_peak(device: torch.device, precision: str) -> dict:
    """The cached peak for this machine and precision, measured on first use."""
    path = _cache_file(device, precision)
    if path.is_file():
        return json.loads(path.read_text())
    peak = measure_peak(device, precision)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(peak, indent=2))
    return peak


def _linear_shapes(model: nn.Module):
    """(weight elements, weight trains) of every matrix product a token goes through. Embedding lookups
    are not products; an output layer tied to the embedding is a Linear module and is counted. PEFT's
    modules_to_save keep the original layer beside the trained copy; only the copy runs."""
    for name, module in model.named_modules():
        if "original_module" in name.split("."):
            continue
        weight = getattr(module, "weight", None)
        if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D":  # GPT-2's Conv1D
            yield weight.numel(), weight.requires_grad


def attention_flops(model: nn.Module, tokens_per_sequence: float) -> float:
    """Forward FLOPs per token of the attention scores and the weighted sum (2 * 2 * layers * T * width)."""
    config = getattr(model, "config", None)
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", 0) or 0
    width = getattr(config, "hidden_size", None) or getattr(config, "n_embd", 0) or 0
    return 4.0 * layers * tokens_per_sequence * width


def training_flops_per_token(model: nn.Module, tokens_per_sequence: float) -> dict:
    """Forward 2 FLOPs per weight; backward 2 more for the input gradient and, only where the weight
    trains, 2 for its gradient: a frozen layer costs 4 per weight, a trained one 6. Attention products
    have no weights and cost three times their forward. Layers below the lowest trainable one need no
    input gradient either, so adapter methods are, if anything, counted high."""
    forward = backward = 0.0
    for elements, trains in _linear_shapes(model):
        forward += 2 * elements
        backward += (4 if trains else 2) * elements
    attention = attention_flops(model, tokens_per_sequence)
    return {"forward": forward + attention, "training": forward + backward + 3 * attention}


def utilisation(
    model: nn.Module, tokens_per_second: float, tokens_per_sequence: float, precision: str, device
) -> dict:
    """Achieved matrix-product FLOP/s of training against this machine's measured peak."""
    device = torch.device(device)
    peak = matmul_peak(device, precision)
    flops = training_flops_per_token(model, tokens_per_sequence)
    achieved = flops["training"] * tokens_per_second
    return {
        "model_flops_per_token": flops["training"],
        "forward_flops_per_token": flops["forward"],
        "achieved_flops": achieved,
        "peak_flops": peak["peak_flops"],
        "utilisation": achieved / peak["peak_flops"] if peak["peak_flops"] else None,
        "peak": peak,
        "method": "training FLOPs per token (linear layers: 6 per trained weight, 4 per frozen one; "
        "attention: 12 * layers * mean tokens per sequence * width) x training tokens/s, over the "
        "cached matrix-product peak of this machine at this precision",
    }


def run_utilisation(model: nn.Module, outcome) -> dict:
    """utilisation() for a finished TrainOutcome, at the precision its Trainer ran (tokens per
    sequence: its tokens over its samples)."""
    args, timing = outcome.trainer.args, outcome.timing
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    per_sequence = outcome.train_tokens_per_second / outcome.train_samples_per_second
    report = utilisation(model, outcome.train_tokens_per_second, per_sequence, precision, args.device)
    if args.device.type == "cpu" and timing.get("cpu_seconds"):
        # What the run reached per core-second it was given: on a shared machine, the honest figure.
        tokens = outcome.train_tokens_per_second * timing["wall_seconds"]
        per_thread_seconds = timing["cpu_seconds"] / timing["torch_threads"]
        report["utilisation_of_cpu_time"] = (
            report["model_flops_per_token"] * tokens / per_thread_seconds / report["peak_flops"]
        )
    return report
