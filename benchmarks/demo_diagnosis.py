"""Why did the classification demo's methods stay at the majority class? One factor at a time.

A plain transformers Trainer + PEFT script (no peftbench training code): MiniLM on the drugscom reviews
loaded by peftbench's own loaders, test split scored with scikit-learn. Prints one JSON line per run.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/demo_diagnosis.py --method lora --pooler trained
"""

import argparse
import json
import time
from collections import Counter

import numpy as np
import torch
from peft import IA3Config, LoraConfig, TaskType, get_peft_model
from sklearn.metrics import accuracy_score, f1_score
from torch import nn
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from peftbench.config.config import DataConfig
from peftbench.models import models
from peftbench.tasks.classification import load_labelled, tokenize


class CLSPooler(nn.Module):
    """The first token's hidden state, without BERT's dense + tanh."""

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden[:, 0]


class MeanPooler(nn.Module):
    """Masked mean over tokens (what sentence-transformers trained MiniLM's embeddings for)."""

    def __init__(self) -> None:
        super().__init__()
        self.mask: torch.Tensor | None = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        mask = self.mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


def with_pooler(model: nn.Module, pooler: str) -> nn.Module:
    if pooler == "cls":
        model.bert.pooler = CLSPooler()
    elif pooler == "mean":
        mean = MeanPooler()
        model.bert.pooler = mean

        def keep_mask(module, args, kwargs):
            mean.mask = kwargs["attention_mask"]

        model.bert.register_forward_pre_hook(keep_mask, with_kwargs=True)
    return model


def adapt(model: nn.Module, args) -> nn.Module:
    heads = ["classifier"] + (["pooler"] if args.pooler == "trained" else [])
    if args.method == "full":
        for name, p in model.named_parameters():
            p.requires_grad = not (args.pooler == "frozen" and ".pooler." in name)
        return model
    if args.method == "head":
        for name, p in model.named_parameters():
            p.requires_grad = any(f"{h}." in name for h in heads)
        return model
    if args.method == "lora":
        config = LoraConfig(
            task_type=TaskType.SEQ_CLS,
            r=args.r,
            lora_alpha=2 * args.r,
            target_modules=args.targets if args.targets != ["all-linear"] else "all-linear",
            modules_to_save=heads,
        )
    else:
        config = IA3Config(task_type=TaskType.SEQ_CLS, modules_to_save=heads)
    return get_peft_model(model, config)


def optimizer(model: nn.Module, args) -> torch.optim.Optimizer:
    head, body = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (head if ("classifier" in name or ".pooler." in name) else body).append(p)
    groups = [{"params": body, "lr": args.lr}, {"params": head, "lr": args.head_lr or args.lr}]
    return torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=0.0)


def weighted_loss(weights: torch.Tensor):
    def loss(outputs, labels, num_items_in_batch=None):
        return nn.functional.cross_entropy(outputs.logits.float(), labels, weight=weights)

    return loss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", choices=["full", "lora", "ia3", "head"], default="lora")
    poolers = ["default", "trained", "frozen", "cls", "mean"]
    parser.add_argument("--pooler", choices=poolers, default="default")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--head-lr", type=float, default=None)
    parser.add_argument("--train", type=int, default=160)
    parser.add_argument("--test", type=int, default=None)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=0.1)
    parser.add_argument("--r", type=int, default=8)
    parser.add_argument("--targets", nargs="+", default=["query", "value"])
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--class-weights", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    source = models.resolve("minilm")
    tokenizer = models.load_tokenizer(source)
    data_config = DataConfig(
        dataset="drugscom",
        max_length=args.max_length,
        max_train_samples=args.train,
        max_eval_samples=args.test,
    )
    splits, names = load_labelled(data_config, args.seed)
    splits = tokenize(splits, tokenizer, args.max_length).remove_columns(["text"])
    model = with_pooler(models.load_classifier(source, names, tokenizer.pad_token_id), args.pooler)
    model = adapt(model, args)

    counts = Counter(splits["train"]["label"])
    weights = torch.tensor([len(splits["train"]) / (len(names) * counts[i]) for i in range(len(names))])
    training = TrainingArguments(
        output_dir="/tmp/demo-diagnosis",
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch,
        per_device_eval_batch_size=64,
        learning_rate=args.lr,
        warmup_steps=args.warmup,
        lr_scheduler_type="linear",
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=args.seed,
        data_seed=args.seed,
        use_cpu=True,
        disable_tqdm=True,
        logging_steps=1000,
    )
    trainer = Trainer(
        model=model,
        args=training,
        train_dataset=splits["train"],
        data_collator=DataCollatorWithPadding(tokenizer),
        optimizers=(optimizer(model, args), None),
        compute_loss_func=weighted_loss(weights) if args.class_weights else None,
    )
    wall, cpu = time.time(), time.process_time()
    trainer.train()
    wall, cpu = time.time() - wall, time.process_time() - cpu
    logits = trainer.predict(splits["test"]).predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    predicted, labels = logits.argmax(-1), np.asarray(splits["test"]["label"])
    spread = Counter(names[i] for i in predicted)
    print(
        json.dumps(
            {
                **{k: v for k, v in vars(args).items() if v is not None},
                "accuracy": round(accuracy_score(labels, predicted), 3),
                "f1_macro": round(f1_score(labels, predicted, average="macro"), 3),
                "predicted": dict(spread),
                "train_s": round(wall, 1),
                "train_cpu_s": round(cpu, 1),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
