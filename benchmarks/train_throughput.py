"""Training throughput: peftbench against a plain Trainer + PEFT script written the way the seeds do it.

Both sides train the same model (MiniLM), on the same rows (drugscom: the same train and test examples),
with the same method, epochs, batch size, learning rate, warm-up and seed. The plain script pads every
example to max_length, trains in fp32 and draws random batches; peftbench uses its defaults on this
machine (precision auto, dynamic padding, length-grouped batches, tokenised data cached).

Training throughput = training examples x epochs / training seconds (evaluation excluded on both sides);
wall time = the whole path, from loading the model to the test metrics.

    .venv/bin/python benchmarks/train_throughput.py --seeds 1 2 --epochs 2 --method full
    .venv/bin/python benchmarks/train_throughput.py --seeds 1 2 --epochs 3 --method lora   # or lora-all, ia3
"""

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from peft import IA3Config, LoraConfig, get_peft_model
from rich.console import Console
from sklearn.metrics import accuracy_score, f1_score
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

from peftbench.execution.executor import run_grid
from peftbench.inputs.experiment import build_config
from peftbench.measure.timing import EpochTimer
from peftbench.models import models
from peftbench.tasks.classification import load_labelled

MAX_LENGTH = 128
# One adapter config per benchmarked method, given to peftbench as options and to the plain script as
# the PEFT config class's own arguments: the same adapter on both sides.
ADAPTERS = {
    "full": None,
    "lora": ("lora", LoraConfig, {"r": 8, "lora_alpha": 16, "target_modules": ["query", "value"]}),
    "lora-all": ("lora", LoraConfig, {"r": 8, "lora_alpha": 16, "target_modules": "all-linear"}),
    "ia3": ("ia3", IA3Config, {}),
}


def experiment(args, seed: int, output_dir: str) -> dict:
    adapter = ADAPTERS[args.method]
    method = {"method": "full"} if adapter is None else {"method": adapter[0], **adapter[2]}
    return {
        "name": f"throughput-{args.method}-seed{seed}",
        "model": "minilm",
        "data": {"dataset": "drugscom", "max_length": MAX_LENGTH, "max_train_samples": args.train_samples},
        "training": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "warmup_ratio": 0.1,
        },
        "methods": [method],
        "baselines": False,
        "seed": seed,
        "output_dir": output_dir,
    }


def run_peftbench(raw: dict) -> dict:
    start = time.perf_counter()
    directory, failed = run_grid(build_config(raw), inline=True, console=Console(quiet=True))
    wall = time.perf_counter() - start
    if failed:
        raise SystemExit(f"peftbench run failed: {failed}")
    result = json.loads(next(directory.glob("*/result.json")).read_text())
    efficiency, test, timing = result["efficiency"], result["metrics"]["test"], result["timing"]
    return {
        "train_cpu_seconds": timing["cpu_seconds"],
        "contended": timing["contended"],
        "utilisation": efficiency["model_flops_utilisation"],
        "train_seconds": efficiency["train_seconds"],
        "train_samples_per_second": efficiency["train_samples_per_second"],
        "wall_seconds": wall,
        "accuracy": test["accuracy"],
        "f1_macro": test["f1_macro"],
        "precision": result["training"]["precision"],
    }


def run_plain(raw: dict, method: str, output_dir: str, bf16: bool = False) -> dict:
    """The seeds' way: tokenise with padding to max_length, fp32 Trainer, random batches. `bf16`
    (an ablation, --plain-bf16) turns on bf16 autocast alone, to separate its share from padding's."""
    start = time.perf_counter()
    config = build_config(raw)
    splits, names, _ = load_labelled(config.data)  # the same rows peftbench trains on
    path = models.resolve("minilm").path
    tokenizer = AutoTokenizer.from_pretrained(path)

    def encode(split):
        rows = splits[split]
        encoded = tokenizer(list(rows["text"]), padding="max_length", truncation=True, max_length=MAX_LENGTH)
        return Dataset.from_dict({**encoded, "labels": list(rows["label"])})

    train, test = encode("train"), encode("test")
    torch.manual_seed(config.seed)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(names))
    adapter = ADAPTERS[method]
    if adapter is not None:
        _, config_cls, options = adapter
        model = get_peft_model(model, config_cls(task_type="SEQ_CLS", **options))
    training = config.training
    arguments = TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=training.epochs,
        per_device_train_batch_size=training.batch_size,
        per_device_eval_batch_size=64,
        learning_rate=training.learning_rate,
        warmup_steps=training.warmup_ratio,
        eval_strategy="no",
        save_strategy="no",
        report_to=[],
        seed=config.seed,
        use_cpu=not torch.cuda.is_available(),
        bf16=bf16,
    )
    trainer = Trainer(model=model, args=arguments, train_dataset=train)
    epochs = EpochTimer()  # the clock peftbench's own runs use
    trainer.add_callback(epochs)
    trainer.train()
    timing = epochs.report()
    train_seconds = timing["wall_seconds"]
    predicted = np.argmax(trainer.predict(test).predictions, axis=-1)
    return {
        "train_seconds": train_seconds,
        "train_samples_per_second": len(train) * training.epochs / train_seconds,
        "wall_seconds": time.perf_counter() - start,
        "train_cpu_seconds": timing["cpu_seconds"],
        "contended": timing["contended"],
        "accuracy": float(accuracy_score(test["labels"], predicted)),
        "f1_macro": float(f1_score(test["labels"], predicted, average="macro")),
        "precision": "bf16" if bf16 else "fp32",
    }


def summary(rows: list[dict], key: str) -> str:
    values = [row[key] for row in rows]
    spread = f" ± {statistics.stdev(values):.3g}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.4g}{spread}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--method", choices=list(ADAPTERS), default="full")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--train-samples", type=int, default=None)
    parser.add_argument(
        "--plain-bf16", action="store_true", help="Ablation: the plain script with bf16 autocast"
    )
    parser.add_argument("--json", type=Path, help="Also write every measurement here")
    args = parser.parse_args()
    measured = {"peftbench": [], "plain": []}
    with tempfile.TemporaryDirectory() as scratch:
        for seed in args.seeds:
            raw = experiment(args, seed, scratch)
            measured["plain"].append(run_plain(raw, args.method, f"{scratch}/plain", args.plain_bf16))
            measured["peftbench"].append(run_peftbench(raw))
            print(f"seed {seed}: {json.dumps({k: v[-1] for k, v in measured.items()})}")
    ratio = [
        p["train_samples_per_second"] / q["train_samples_per_second"]
        for p, q in zip(measured["peftbench"], measured["plain"], strict=True)
    ]
    cpu = [
        q["train_cpu_seconds"] / p["train_cpu_seconds"]
        for p, q in zip(measured["peftbench"], measured["plain"], strict=True)
    ]
    wall = [
        q["wall_seconds"] / p["wall_seconds"]
        for p, q in zip(measured["peftbench"], measured["plain"], strict=True)
    ]
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}"
    )
    print(
        f"method {args.method}, {args.epochs:g} epochs, batch {args.batch_size}, "
        f"lr {args.learning_rate:g}, seeds {args.seeds}"
    )
    for side, rows in measured.items():
        print(
            f"{side:>9}: {summary(rows, 'train_samples_per_second')} train samples/s, "
            f"train {summary(rows, 'train_seconds')} s (CPU {summary(rows, 'train_cpu_seconds')} s, "
            f"contended: {[row['contended'] for row in rows]}), wall {summary(rows, 'wall_seconds')} s, "
            f"accuracy {summary(rows, 'accuracy')}, macro-F1 {summary(rows, 'f1_macro')} "
            f"({rows[0]['precision']})"
        )
    print(
        f"throughput ratio (peftbench / plain): {statistics.fmean(ratio):.2f}x; "
        f"wall-time ratio (plain / peftbench): {statistics.fmean(wall):.2f}x; "
        f"training CPU-time ratio (plain / peftbench): {statistics.fmean(cpu):.2f}x"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"args": vars(args) | {"json": str(args.json)}, **measured}, indent=2)
        )


if __name__ == "__main__":
    main()
