"""Forward / backward / optimizer time per training step, per method, on peftbench's own model and
method code (the classification head or language-model head the task adds, PEFT's copied head), with
the optimizer the Trainer builds (its default: fused AdamW).

Each phase is timed as wall time and as process CPU time; on a shared machine compare CPU time (and
run with OMP_NUM_THREADS=1 so one step's CPU time does not depend on how many cores were free).
--profile adds torch.profiler's operators by self CPU time for one step of each method.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/step_profile.py --model minilm --batch 32 --length 64
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/step_profile.py --model smollm2-135m --batch 8 --length 64
"""

import argparse
import dataclasses
import json
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from transformers import Trainer, TrainingArguments

from peftbench.config.config import MethodConfig
from peftbench.measure.hardware import matmul_peak, training_flops_per_token
from peftbench.methods import prepare_model
from peftbench.models import models
from peftbench.tasks import TASKS, method_context

TARGETS = {  # q/v projections by model family
    "bert": ["query", "value"],
    "llama": ["q_proj", "v_proj"],
}
METHODS = {
    "full": lambda qv: {"method": "full"},
    "lora-qv": lambda qv: {"method": "lora", "r": 8, "alpha": 16, "dropout": 0.0, "target_modules": qv},
    "lora-all": lambda qv: {
        "method": "lora",
        "r": 8,
        "alpha": 16,
        "dropout": 0.0,
        "target_modules": "all-linear",
    },
    "ia3": lambda qv: {"method": "ia3"},
}
PHASES = ("forward", "backward", "optimizer")


def load(name: str, precision: str):
    """(task, model, source) the way peftbench loads them: a 3-label classifier or a causal LM, with
    the attention implementation peftbench would pick."""
    source = models.densify(models.resolve(name))
    config = models.load_config(source)
    attention = models.attention_for(config, precision, torch.cuda.is_available())
    source = dataclasses.replace(source, attention=attention)
    if config.model_type == "bert":
        return TASKS.get("classification"), models.load_classifier(source, ["a", "b", "c"], None), source
    return TASKS.get("causal_lm"), models.load_language_model(source, False, config.eos_token_id), source


def batch_for(model, task_name: str, batch: int, length: int) -> dict:
    vocab = model.config.vocab_size
    ids = torch.randint(5, vocab, (batch, length), generator=torch.Generator().manual_seed(0))
    labels = ids.clone() if task_name == "causal_lm" else torch.randint(0, 3, (batch,))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def optimizer_for(model) -> torch.optim.Optimizer:
    args = TrainingArguments(
        output_dir="/tmp/step-profile", use_cpu=not torch.cuda.is_available(), report_to=[]
    )
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    return cls([p for p in model.parameters() if p.requires_grad], **kwargs)


class Clock:
    def __init__(self) -> None:
        self.times: dict[str, list[tuple[float, float]]] = {p: [] for p in PHASES}

    def phase(self, name: str, work):
        wall, cpu = time.perf_counter(), time.process_time()
        out = work()
        self.times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
        return out

    def median(self, name: str, skip: int) -> tuple[float, float]:
        kept = self.times[name][skip:]
        return statistics.median(w for w, _ in kept), statistics.median(c for _, c in kept)


def step(model, batch, optimizer, precision: str, clock: Clock) -> None:
    bf16 = precision == "bf16"
    cast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()

    def forward():
        with cast:
            return model(**batch).loss

    loss = clock.phase("forward", forward)
    clock.phase("backward", loss.backward)

    def update():
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    clock.phase("optimizer", update)


def profile_method(name: str, spec: dict, args) -> dict:
    task, base, source = load(args.model, args.precision)
    qv = TARGETS.get(base.config.model_type, TARGETS["llama"])
    entry = MethodConfig(**METHODS[name](qv))
    context = method_context(task, base, source.path, 100)
    model = prepare_model(base, entry, context).train()
    batch = batch_for(
        model, "causal_lm" if task is TASKS.get("causal_lm") else "classification", args.batch, args.length
    )
    optimizer = optimizer_for(model)
    clock = Clock()
    for _ in range(args.warmup + args.steps):
        step(model, batch, optimizer, args.precision, clock)
    row = {"method": name, "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    for phase in PHASES:
        row[f"{phase}_wall_s"], row[f"{phase}_cpu_s"] = clock.median(phase, args.warmup)
    step_cpu = sum(row[f"{p}_cpu_s"] for p in PHASES)
    step_wall = sum(row[f"{p}_wall_s"] for p in PHASES)
    row["samples_per_cpu_second"] = args.batch / step_cpu
    row["samples_per_second"] = args.batch / step_wall
    flops = training_flops_per_token(model, args.length)["training"] * args.batch * args.length
    row["flops_per_step"] = flops
    if args.profile:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step(model, batch, optimizer, args.precision, Clock())
        row["top_ops"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--profile", type=int, default=0, help="Also list this many top operators per method")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    peak = matmul_peak(torch.device("cpu"), args.precision)["peak_flops"]
    rows = [profile_method(name, METHODS[name], args) for name in args.methods]
    print(
        f"{args.model}, batch {args.batch} x {args.length} tokens, {args.precision}, "
        f"{torch.get_num_threads()} threads; median of {args.steps} steps; "
        f"matmul peak {peak / 1e9:.0f} GFLOP/s"
    )
    print(
        "| method | trainable | forward ms (cpu) | backward ms (cpu) | optimizer ms (cpu) "
        "| samples/s (cpu) | utilisation (cpu) |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        cpu = sum(row[f"{p}_cpu_s"] for p in PHASES)
        print(
            f"| {row['method']} | {row['trainable']:,} | "
            + " | ".join(f"{row[f'{p}_wall_s'] * 1e3:.0f} ({row[f'{p}_cpu_s'] * 1e3:.0f})" for p in PHASES)
            + f" | {row['samples_per_second']:.0f} ({row['samples_per_cpu_second']:.0f})"
            + f" | {row['flops_per_step'] / cpu / peak:.0%} |"
        )
    for row in rows:
        if "top_ops" in row:
            print(f"\n{row['method']}:\n{row.pop('top_ops')}")
    if args.json:
        args.json.write_text(
            json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
