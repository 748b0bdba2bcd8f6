"""`peftbench run --executor ray`: every run of a grid as one Ray task, on a cluster or a local Ray.

A task runs the same worker process as a local grid, in a scratch folder on its node, and returns the
run folders it wrote as a tar archive; the driver unpacks them into the experiment folder. Nodes need
peftbench installed (and the data and models reachable), not a filesystem shared with the driver.
Which runs to do is decided before submission by the same cache rules as a local grid."""

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from peftbench.errors import PeftbenchError
from peftbench.grid import RunSpec
from peftbench.launch import RayOptions, launch_command
from peftbench.worker import spec_from_json, spec_to_json


def _run_remotely(spec_json: str, folders: list[str], experiment: str) -> tuple[int, bytes]:
    """On a Ray node: run the worker into a scratch output folder, return its exit code and the run
    folders as a tar archive (members relative to the experiment folder)."""
    with tempfile.TemporaryDirectory(prefix="peftbench-ray-") as scratch:
        spec = spec_from_json(spec_json)
        local = spec.writing_to(scratch)
        spec_file = Path(scratch) / "spec.json"
        spec_file.write_text(spec_to_json(local))
        code = subprocess.run(launch_command(local, spec_file), check=False, env=os.environ.copy()).returncode
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for folder in folders:
                path = Path(scratch) / experiment / folder
                if path.exists():
                    archive.add(path, arcname=folder)
        return code, buffer.getvalue()


def run_on_ray(
    work: list[tuple[RunSpec, list[str]]],
    directory: Path,
    options: RayOptions,
    report: Callable[[RunSpec, int, float], None],
) -> None:
    """Submit every (spec, run folders) pair as a task, unpack each result as it arrives and call
    report(spec, exit code, seconds) for it. A local Ray is started (and stopped) when no address is given."""
    try:
        import ray
    except ImportError:
        raise PeftbenchError("--executor ray needs Ray; run: pip install 'peftbench[ray]'") from None

    started = not ray.is_initialized()
    if started:
        ray.init(address=options.address, log_to_driver=False, include_dashboard=False)
    try:
        remote = ray.remote(num_cpus=options.cpus, num_gpus=options.gpus, max_retries=0)(_run_remotely)
        begun = time.perf_counter()
        futures = {remote.remote(spec_to_json(spec), folders, directory.name): spec for spec, folders in work}
        while futures:
            done, _ = ray.wait(list(futures), num_returns=1)
            spec = futures.pop(done[0])
            try:
                code, archive = ray.get(done[0])
            except ray.exceptions.RayError as exc:  # the task or its node died
                print(f"ray task for {spec.name} failed: {type(exc).__name__}", file=sys.stderr)
                code, archive = 1, b""
            if archive:
                with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as unpacked:
                    unpacked.extractall(directory, filter="data")
            report(spec, code, time.perf_counter() - begun)
    finally:
        if started:
            ray.shutdown()
