"""Two levers for training speed on an fp32 CPU, measured against the plain Trainer + PEFT script's setup.

`padding`: the tokens a pad-to-128 script processes against dynamic padding of random batches (what
peftbench does), and against no padding at all (packing), on train_throughput.py's 540 drug reviews.

`step`: CPU seconds per training step of MiniLM (batch 16 x 128, fused AdamW) with the model eager, under
torch.compile, or with another attention implementation; one process per variant, median of 6 steps
after 2 warm-up steps (compile time is reported with the warm-up).

    OMP_NUM_THREADS=1 python benchmarks/fp32_levers.py padding
    OMP_NUM_THREADS=1 python benchmarks/fp32_levers.py step --method full --variant compile
"""

import argparse
import statistics
import time

import numpy as np
import torch

BATCH, LENGTH, REVIEWS = 16, 128, 540


def padding() -> None:
    from transformers import AutoTokenizer

    from peftbench.data.data import load_drugscom
    from peftbench.models import models

    tokenizer = AutoTokenizer.from_pretrained(models.densify(models.resolve("minilm")).path)
    texts = list(load_drugscom()["train"]["text"])[:REVIEWS]
    lengths = np.array([min(LENGTH, len(tokenizer(t)["input_ids"])) for t in texts])
    rng = np.random.default_rng(0)
    shares = []
    for _ in range(200):
        order = rng.permutation(len(lengths))
        batches = [lengths[order[i : i + BATCH]] for i in range(0, len(order), BATCH)]
        shares.append(sum(b.max() * len(b) for b in batches) / (LENGTH * len(lengths)))
    full = (lengths == LENGTH).mean()
    print(f"reviews {len(lengths)}, mean length {lengths.mean():.1f}, share at {LENGTH}: {full:.3f}")
    print(f"dynamic padding / pad-to-{LENGTH}: {np.mean(shares):.3f} (min {min(shares):.3f}, 200 shuffles)")
    print(f"no padding (packing) / pad-to-{LENGTH} tokens: {lengths.sum() / (LENGTH * len(lengths)):.3f}")


def step(method: str, variant: str) -> None:
    from step_profile import METHODS, TARGETS, load

    from peftbench.config.config import MethodConfig
    from peftbench.methods import prepare_model
    from peftbench.models import models
    from peftbench.tasks import method_context

    if variant in ("eager", "sdpa"):
        models.attention_for = lambda *args, **kwargs: variant
    torch.manual_seed(0)
    task, model, source = load("minilm", "fp32")
    entry = MethodConfig(**METHODS[method](TARGETS["bert"]))
    model = prepare_model(model, entry, method_context(task, model, source.path, 100)).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, fused=True)
    forward = torch.compile(model) if variant == "compile" else model
    ids = torch.randint(1000, 20000, (BATCH, LENGTH))
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.randint(0, 3, (BATCH,)),
    }

    def one_step() -> float:
        start = time.process_time()
        forward(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return time.process_time() - start

    warmup = one_step() + one_step()
    steps = [one_step() for _ in range(6)]
    print(
        f"{method} {variant} (attention {model.config._attn_implementation}): median "
        f"{statistics.median(steps):.3f} CPU s per step {sorted(round(s, 3) for s in steps)}; "
        f"warm-up (2 steps, compile included) {warmup:.1f} CPU s; threads {torch.get_num_threads()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("padding")
    step_parser = commands.add_parser("step")
    step_parser.add_argument("--method", default="full", choices=["full", "lora-qv", "lora-all", "ia3"])
    step_parser.add_argument("--variant", default="eager", choices=["eager", "sdpa", "compile", "default"])
    args = parser.parse_args()
    padding() if args.command == "padding" else step(args.method, args.variant)


if __name__ == "__main__":
    main()
