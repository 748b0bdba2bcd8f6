"""Workers forked from a process that has imported peftbench's worker once (multiprocessing's forkserver).

Each run of a grid still gets a process of its own, so its memory peak is its own (measured from its
start, as in a fresh process) and a crash or out-of-memory kill ends that run alone. What it no longer
pays for is the start-up: torch, transformers' Trainer, peft, datasets and scikit-learn are imported once
by the server (~13 CPU s on a 2-core EPYC) instead of once per run. The server forks before any run has
done a tensor operation or touched CUDA; on a machine with CUDA, and under torchrun or accelerate, the
grid starts fresh processes as before (a process forked after CUDA started cannot use it)."""

import multiprocessing
import os
import sys
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import TYPE_CHECKING

from peftbench.run.interrupts import PARENT_ENV, SignalGuard

if TYPE_CHECKING:
    from peftbench.config.config import ExperimentConfig

PRELOAD = ["peftbench.run.worker", "peftbench.cli"]  # cli: a child re-runs the `peftbench` script's imports
GPU_DEVICES = ("/dev/nvidia0", "/dev/kfd", "/dev/dxg")  # NVIDIA, ROCm, WSL
FRESH_ENV = "PEFTBENCH_FRESH_WORKERS"  # "1": start every worker as a new interpreter (to compare, or debug)
_context: ForkServerContext | None = None


def usable(config: "ExperimentConfig") -> bool:
    """Whether this run's worker can be forked: one local process, no CUDA, a platform with fork."""
    if config.launcher.kind != "local" or os.environ.get(FRESH_ENV) == "1":
        return False
    import torch  # here: the command line starts the server before it imports the rest

    return not torch.cuda.is_available() and "forkserver" in multiprocessing.get_all_start_methods()


def _server() -> ForkServerContext:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def start_server() -> None:
    """Start the server now, so its imports overlap with this process's own imports and loading."""
    from multiprocessing import forkserver

    _server()
    forkserver.ensure_running()


def start_early() -> None:
    """Start the server before the config is read (its validation imports most of the stack), unless
    this machine shows a GPU device or fresh workers were asked for. Whether each run is forked is still
    `usable`'s decision; a server that goes unused exits with the grid process."""
    if os.environ.get(FRESH_ENV) == "1" or any(os.path.exists(path) for path in GPU_DEVICES):
        return
    if "forkserver" in multiprocessing.get_all_start_methods():
        start_server()


def _child(spec_file: str, log: str | None, environment: dict, cwd: str) -> None:
    """The forked run: its own process group (a terminal's Ctrl-C reaches it once, through the grid),
    the grid's environment and folder, its output into `log`."""
    os.setpgid(0, 0)
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(cwd)
    if log is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(descriptor, 1)
        os.dup2(descriptor, 2)
        os.close(descriptor)
    from peftbench.run.worker import main

    sys.exit(main(["peftbench.run.worker", spec_file]))


def run(spec_file: Path, log: Path | None, guard: SignalGuard) -> int:
    """Run the spec in a forked worker and wait for it; its exit code as a subprocess's would be (a
    negative signal number when it was killed)."""
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, PARENT_ENV: str(os.getpid())}
    arguments = (str(spec_file), None if log is None else str(log), environment, os.getcwd())
    process = _server().Process(target=_child, args=arguments, name=f"peftbench-{spec_file.stem}")
    process.start()
    with guard.forwarding_to(process.pid):
        process.join()
    return process.exitcode
