"""Try a demo's settings: run one demo experiment (quick or full) with extra overrides in this process,
build its report, and print per run the learning metric, the strongest baseline, the paired p, the
trainable parameters and the seconds, plus wall and CPU time of the grid and of the report.

    PYTHONPATH=src python benchmarks/demo_settings.py classification --quick --out /tmp/s1 \\
        --set data.max_length=64 --set 'methods=[{method: ia3, learning_rate: 0.03}]'

docs/demos.md records what these runs found and which settings the demos took from them."""

import argparse
import os
import resource
import time

from rich.console import Console

from peftbench import report
from peftbench.config.config import apply_overrides
from peftbench.execution.demo import QUICK, demo_path
from peftbench.execution.executor import run_grid
from peftbench.inputs.experiment import build_config, read_yaml


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _row_line(row: dict) -> str:
    metric = row.get("baseline_metric") or "-"
    value, base, p = row.get(metric), row.get("baseline_value"), row.get("baseline_p")
    cells = [
        f"{row['run']:<22}",
        f"{metric}={value:.4g}" if isinstance(value, float) else f"{metric}=-",
        f"base={base:.4g}" if base is not None else "base=-",
        f"p={p:.3g}" if p is not None else "p=-",
        f"acc={row['accuracy']:.3f}" if row.get("accuracy") is not None else "",
        f"trainable={row.get('trainable_params')}",
        f"train_s={row.get('train_seconds')}",
    ]
    return "  ".join(c for c in cells if c)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("demo", choices=sorted(QUICK))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", required=True)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    overrides = [*(QUICK[args.demo] if args.quick else []), *args.overrides, f"output_dir={args.out}"]
    config = build_config(apply_overrides(read_yaml(demo_path(args.demo)), overrides))
    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), _cpu()
    directory, failed = run_grid(config, force=True, inline=True, console=Console(quiet=True))
    grid_s, grid_cpu = time.perf_counter() - start, _cpu() - cpu
    start, cpu = time.perf_counter(), _cpu()
    built = report.build(directory, "full")
    report.write(built, directory)
    report_s, report_cpu = time.perf_counter() - start, _cpu() - cpu
    print(f"settings: {' '.join(args.overrides) or '(as shipped)'}  failed: {failed or 'none'}")
    for row in built.rows:
        print(_row_line(row))
    for line in built.verdict[:2]:
        print(" ", line)
    print(
        f"grid {grid_s:.0f} s wall / {grid_cpu:.0f} s CPU; report {report_s:.1f} s wall / "
        f"{report_cpu:.1f} s CPU; load {load:.2f} at start, {os.getloadavg()[0]:.2f} at end"
    )


if __name__ == "__main__":
    main()
