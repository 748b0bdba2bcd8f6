"""`peftbench demo`: the embedded default experiments, offline on a CPU, each followed by its report."""

import time
from importlib.resources import files
from pathlib import Path

from rich.console import Console

from peftbench.config.config import ExperimentConfig, apply_overrides
from peftbench.execution.wall_split import record
from peftbench.inputs.experiment import build_config, read_yaml

DEMOS = ("classification", "generation")
# --quick: the classification task, smaller, for a first look in about two minutes on 2 cores. The
# generation slice cost 100 s on its own (SmolLM2's zero-shot pass 18 s, one LoRA run 84 s), more than the
# budget left; the full demo has it. docs/demos.md has the measurements behind each choice.
QUICK = {
    "classification": [
        "name=demo-classification-quick",
        "data.max_length=64",  # the condition is named early in a review; 64 tokens cost half of 128
        "training.epochs=2",
        "methods=[{method: full}, {method: lora, r: 8, alpha: 16, target_modules: [query, value], "
        "learning_rate: 0.003}, {method: ia3, learning_rate: 0.03}]",
        "interpolation=false",  # the α curve: a validation pass per point and method
    ],
}


def demo_path(name: str) -> Path:
    return Path(str(files("peftbench.demos") / f"{name}.yaml"))


def demo_config(name: str, quick: bool, output_dir: str) -> ExperimentConfig:
    overrides = [*(QUICK[name] if quick else []), f"output_dir={output_dir}"]
    return build_config(apply_overrides(read_yaml(demo_path(name)), overrides))


def run_demo(
    quick: bool, output_dir: str, console: Console, verbose: bool = False, since: float | None = None
) -> list[Path]:
    """Run every demo experiment and write its report; returns the report folders. Each experiment's
    time split (time_split.json) covers its wall time from `since` (default: now), then from the end of
    the experiment before."""
    from peftbench import report
    from peftbench.execution.executor import run_grid

    folders = []
    since = time.time() if since is None else since
    for name in QUICK if quick else DEMOS:
        config = demo_config(name, quick, output_dir)
        console.rule(f"demo: {config.name}")
        # one process for every run: a worker's start-up and model load cost ~25 s per run, and memory is
        # measured from each run's own start (peak RSS above start), so runs still compare
        directory, failed = run_grid(config, inline=True, console=console, verbose=verbose)
        for line in failed:
            console.print(f"[red]error:[/red] run {line}", highlight=False, soft_wrap=True)
        report.write(report.build(directory, "full"), directory)
        console.print(record(directory, since).line(), highlight=False)
        since = time.time()
        folders.append(directory)
    return folders
