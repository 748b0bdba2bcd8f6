"""Target-loss evaluation speed and logit memory: the model's own loss (full-vocabulary logits for the
whole batch, the way evaluation worked before `peftbench.training.chunked_loss`) against peftbench's chunked
target loss, on the same batches of SmolLM2-135M (or any causal LM peftbench loads).

Each batch is `--batch` rows of `--length` tokens of drug reviews; the first half of each row is prompt
(label -100), the second half target. Both paths run under torch.inference_mode in fp32 (this CPU has no
native bf16; pass --precision bf16 on one that has). Reported: target tokens per wall and per CPU
second (median over --repeats passes), the mean loss of each path (they must agree), and the bytes the
logits take: batch x length x vocabulary x 4 for the full path, at most CHUNK_ROWS x vocabulary x 4
for the chunked one.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/eval_throughput.py --batch 20 --length 160
"""

import argparse
import json
import statistics
import time

import torch

from peftbench.data.data import load_drugscom
from peftbench.models import models
from peftbench.training.chunked_loss import CHUNK_ROWS, IGNORE, target_loss_sum
from peftbench.training.training import autocast


def batches(tokenizer, count: int, size: int, length: int) -> list[dict]:
    texts = load_drugscom()["test"]["text"][: count * size]
    encoded = tokenizer(texts, max_length=length, truncation=True, padding="max_length", return_tensors="pt")
    labels = encoded["input_ids"].clone()
    labels[:, : length // 2] = IGNORE
    labels[encoded["attention_mask"] == 0] = IGNORE
    return [
        {key: tensor[start : start + size] for key, tensor in {**encoded, "labels": labels}.items()}
        for start in range(0, count * size, size)
    ]


def full_logits_loss(model, batch: dict) -> tuple[float, int]:
    """The model's own loss: logits for every position and vocabulary entry, then the mean over targets."""
    output = model(**batch)
    tokens = int((batch["labels"][:, 1:] != IGNORE).sum())
    return float(output.loss) * tokens, tokens


def timed(path, model, data: list[dict], precision: str) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    total, count = 0.0, 0
    with torch.inference_mode(), autocast(precision, torch.device("cpu")):
        for batch in data:
            summed, tokens = path(model, batch)
            total += summed
            count += tokens
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"loss": total / count, "tokens": count, "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--length", type=int, default=160)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    arguments = parser.parse_args()
    source = models.densify(models.resolve(arguments.model))
    tokenizer = models.load_tokenizer(source)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = models.load_language_model(source, False, tokenizer.pad_token_id).eval()
    data = batches(tokenizer, arguments.batches, arguments.batch, arguments.length)
    vocabulary = model.get_output_embeddings().weight.shape[0]
    paths = {
        "full logits (model's own loss)": (full_logits_loss, arguments.batch * arguments.length),
        "chunked target loss (peftbench)": (
            lambda m, b: target_loss_sum(m, b, encoder_decoder=False),
            min(CHUNK_ROWS, arguments.batch * arguments.length),
        ),
    }
    print(
        f"{arguments.model}, {arguments.batches} batches of {arguments.batch} x {arguments.length} tokens, "
        f"{arguments.precision}, {torch.get_num_threads()} threads, median of {arguments.repeats}"
    )
    print("| path | target tokens/s (wall) | tokens/s (cpu) | mean loss | logits MiB per batch |")
    print("|---|---|---|---|---|")
    for name, (path, logit_rows) in paths.items():
        timed(path, model, data[:1], arguments.precision)  # warm-up
        runs = [timed(path, model, data, arguments.precision) for _ in range(arguments.repeats)]
        wall = statistics.median(r["wall_s"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        tokens = runs[0]["tokens"]
        mib = logit_rows * vocabulary * 4 / 2**20
        print(f"| {name} | {tokens / wall:.0f} | {tokens / cpu:.0f} | {runs[0]['loss']:.5f} | {mib:.0f} |")
        print(json.dumps({"path": name, "tokens": tokens, "wall_s": wall, "cpu_s": cpu}), flush=True)


if __name__ == "__main__":
    main()
