"""How a spec's worker process is started: its command line here, and what a Ray task asks for."""

import sys
from dataclasses import dataclass
from pathlib import Path

from peftbench.grid.grid import RunSpec


def launch_command(spec: RunSpec, spec_file: Path) -> list[str]:
    """The worker's command line: one process, or `num_processes` ranks through torchrun or accelerate."""
    launcher = spec.config.launcher
    worker = ["-m", "peftbench.run.worker", str(spec_file)]
    if launcher.kind == "torchrun":
        ranks = f"--nproc_per_node={launcher.num_processes}"
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", ranks, *worker]
    if launcher.kind == "accelerate":
        if launcher.config_file:
            options = ["--config_file", launcher.config_file]
        else:
            options = ["--num_processes", str(launcher.num_processes)]
            options += ["--multi_gpu"] if launcher.num_processes > 1 else []
        return [sys.executable, "-m", "accelerate.commands.launch", *options, *worker]
    return [sys.executable, *worker]


@dataclass(frozen=True)
class RayOptions:
    """Where the tasks go (None: start a local Ray) and what each run asks the cluster for."""

    address: str | None = None
    cpus: float = 1
    gpus: float = 0
