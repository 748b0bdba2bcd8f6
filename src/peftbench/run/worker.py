"""Child-process entry point: `python -m peftbench.run.worker SPEC.json` runs one spec of a grid.

Running each spec in its own process keeps memory peaks per run and lets one crash (even one that
kills the process) leave the rest of the grid running. Exit code 0 only when every run completed."""

import atexit
import json
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from peftbench.grid.grid import RunSpec
from peftbench.inputs.experiment import build_config
from peftbench.inputs.run_inputs import RunInputs, prepare_inputs
from peftbench.run.baselines import run_baselines
from peftbench.run.interrupts import stop_on_signals
from peftbench.run.runner import run_method, run_search

# Fault injection for the tests of crash isolation: the named run's process dies as an OOM kill would.
CRASH_ENV = "PEFTBENCH_TEST_CRASH_RUN"


def spec_to_json(spec: RunSpec) -> str:
    payload = {
        "kind": spec.kind,
        "suffix": spec.suffix,
        "config_hash": spec.config_hash,
        "pause_at": spec.pause_at,
        "config": spec.config.model_dump(mode="json"),
    }
    return json.dumps(payload)


def spec_from_json(text: str) -> RunSpec:
    payload = json.loads(text)
    pause = payload.get("pause_at")
    config = build_config(payload["config"])
    return RunSpec(payload["kind"], payload["suffix"], config, tuple(pause) if pause else None)


def execute(spec: RunSpec, inputs: RunInputs | None = None) -> RunInputs:
    """Run `spec`, loading its inputs unless those for the same seed and data are given."""
    inputs = inputs or prepare_inputs(spec.config)
    inputs = replace(inputs, config=spec.config, suffix=spec.suffix, config_hash=spec.config_hash)
    if spec.kind == "baselines":
        run_baselines(inputs)
    elif spec.kind == "search":
        run_search(inputs, spec.entry, spec.pause_at)
    else:
        run_method(inputs, spec.entry)
    return inputs


def rank() -> int:
    """This process's rank under torchrun/accelerate (0 when run alone)."""
    return int(os.environ.get("RANK", "0"))


def main(argv: list[str]) -> int:
    stop_on_signals()
    try:
        spec = spec_from_json(Path(argv[1]).read_text())
    except KeyboardInterrupt:
        return 130
    if rank() > 0:  # only rank 0 writes results; the others run the same steps into a scratch folder
        scratch = tempfile.mkdtemp(prefix=f"peftbench-rank{rank()}-")
        spec = spec.writing_to(scratch)
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    if os.environ.get(CRASH_ENV) == spec.name:  # only here: inline runs share the parent's process
        os._exit(70)
    try:
        execute(spec)
    except KeyboardInterrupt as exc:  # already marked interrupted; the grid process says so in one line
        print(f"run {spec.name} interrupted ({exc or 'SIGINT'})", file=sys.stderr)
        return 130
    except Exception as exc:  # already recorded as failed in the run's status.json
        print(f"error: run {spec.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
