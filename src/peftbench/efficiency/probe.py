"""`peftbench probe-batch`: the largest training batch that fits, per method. On CUDA each candidate batch
runs two real training steps (randomly initialised weights of the model's shapes; out-of-memory means it
does not fit); on a CPU the estimate from `estimate.py` is held against a memory budget."""

import gc
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from peftbench.config.config import MethodConfig
from peftbench.efficiency.estimate import DEFAULTS, estimate_memory, label
from peftbench.efficiency.memory_options import MemoryOptions
from peftbench.efficiency.weights import quantised_weights
from peftbench.errors import PeftbenchError
from peftbench.methods import check_quantized_base, prepare_model
from peftbench.tasks import Task, method_context
from peftbench.training.training import autocast


@dataclass(frozen=True)
class Probe:
    method: str
    batch_size: int  # 0: not even one example fits
    memory_bytes: int | None  # at that batch size: measured peak (CUDA) or estimate (CPU)
    how: str


def largest_fitting(fits: Callable[[int], bool], limit: int) -> int:
    """The largest batch size in [1, limit] for which fits() holds, assuming it is monotonic: doubling
    until a size fails, then bisecting between the last success and that failure."""
    if not fits(1):
        return 0
    good, bad = 1, None
    while bad is None:
        candidate = min(good * 2, limit)
        if candidate == good:
            return good
        if fits(candidate):
            good = candidate
        else:
            bad = candidate
    while bad - good > 1:
        middle = (good + bad) // 2
        if fits(middle):
            good = middle
        else:
            bad = middle
    return good


def _optimizer(model: nn.Module, optim: str) -> torch.optim.Optimizer:
    """The optimizer the Trainer would build for training.optim, over the trainable parameters."""
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(optim=optim, report_to="none")
    optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    return optimizer_cls([p for p in model.parameters() if p.requires_grad], **kwargs)


def _training_steps(
    model: nn.Module, inputs: dict, precision: str, steps: int = 2, optim: str = "adamw_torch"
) -> None:
    optimizer = _optimizer(model, optim)
    for _ in range(steps):  # the second step holds optimizer states and gradients at once
        with autocast(precision, inputs["input_ids"].device):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def cuda_fits(
    model: nn.Module,
    task: Task,
    seq_len: int,
    precision: str,
    peaks: dict[int, int],
    device: str = "cuda",
    optim: str = "adamw_torch",
):
    """fits(batch) by running real training steps on the GPU; an out-of-memory error means no."""

    def fits(batch_size: int) -> bool:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        try:
            _training_steps(model, task.example_batch(batch_size, seq_len, device), precision, optim=optim)
        except torch.OutOfMemoryError:
            model.zero_grad(set_to_none=True)
            gc.collect()
            torch.cuda.empty_cache()
            return False
        peaks[batch_size] = torch.cuda.max_memory_allocated()
        return True

    return fits


def estimate_fits(
    model: nn.Module,
    task: Task,
    seq_len: int,
    budget: int,
    estimates: dict[int, int],
    precision: str,
    options: MemoryOptions = DEFAULTS,
    quantised: set[int] = frozenset(),
):
    """fits(batch) by the meta-device estimate of training memory against `budget` bytes."""

    def fits(batch_size: int) -> bool:
        inputs = task.example_batch(batch_size, seq_len)
        estimates[batch_size] = estimate_memory(model, inputs, precision, options, quantised).total
        return estimates[batch_size] <= budget

    return fits


def probe_method(
    build: Callable[[], nn.Module],
    task: Task,
    entry: MethodConfig,
    model_path: str,
    seq_len: int,
    limit: int,
    budget: int | None,
    precision: str,
    options: MemoryOptions = DEFAULTS,
) -> Probe:
    """Largest batch for one method: measured on CUDA when `budget` is None, else estimated. `build`
    returns a fresh model (on the meta device to estimate, on the GPU to measure)."""
    check_quantized_base(entry.method, options.quantization)
    if budget is None and options.quantization:
        raise PeftbenchError(
            "probe-batch on a GPU trains randomly initialised weights built from the config and cannot "
            "quantise them; run `peftbench inspect` for the quantised estimate, or drop model.quantization"
        )
    model = build()
    quantised = quantised_weights(model) if options.quantization else frozenset()
    model = prepare_model(model, entry, method_context(task, model, model_path, 1000)).train()
    memory: dict[int, int] = {}
    if budget is None:
        if options.gradient_checkpointing:  # the estimate models checkpointing itself, from a plain pass
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        fits = cuda_fits(model, task, seq_len, precision, memory, optim=options.optim)
        found = largest_fitting(fits, limit)
        how = f"measured: 2 training steps on {torch.cuda.get_device_name(0)}, peak allocated"
    else:
        fits = estimate_fits(model, task, seq_len, budget, memory, precision, options, quantised)
        found = largest_fitting(fits, limit)
        how = f"estimated (meta device) against a {budget / 2**30:.1f} GiB budget"
    del model
    gc.collect()
    return Probe(label(entry), found, memory.get(found), how)
