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
from peftbench.execution.launch import RayOptions, launch_command
from peftbench.grid.grid import RunSpec
from peftbench.results.progress import LOG_FILE, PROGRESS_FILE
from peftbench.run.worker import spec_from_json, spec_to_json

RELAY_SECONDS = 0.5


def _relay(process: subprocess.Popen, experiment: Path, folders: list[str], send: Callable) -> int:
    """While the worker runs: each run's progress.json, whenever it changes, to send(folder, text)."""
    sent: dict[str, str] = {}
    while process.poll() is None:
        time.sleep(RELAY_SECONDS)
        for folder in folders:
            try:
                text = (experiment / folder / PROGRESS_FILE).read_text()
            except OSError:
                continue
            if text != sent.get(folder):
                sent[folder] = text
                send(folder, text)
    return process.returncode


def _run_remotely(spec_json: str, folders: list[str], experiment: str, queue=None) -> tuple[int, bytes]:
    """On a Ray node: run the worker into a scratch output folder (its output into the first run's
    train.log, its progress to the driver through `queue`), return its exit code and the run folders as
    a tar archive (members relative to the experiment folder)."""
    with tempfile.TemporaryDirectory(prefix="peftbench-ray-") as scratch:
        spec = spec_from_json(spec_json)
        local = spec.writing_to(scratch)
        spec_file = Path(scratch) / "spec.json"
        spec_file.write_text(spec_to_json(local))
        log = Path(scratch) / experiment / folders[0] / LOG_FILE
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as output:
            command = launch_command(local, spec_file)
            process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, env=os.environ.copy()
            )
            send = (lambda folder, text: queue.put_nowait((spec.name, folder, text))) if queue else _ignore
            code = _relay(process, Path(scratch) / experiment, folders, send)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for folder in folders:
                path = Path(scratch) / experiment / folder
                if path.exists():
                    archive.add(path, arcname=folder)
        return code, buffer.getvalue()


def _ignore(*args) -> None:
    pass


def _drain(queue, specs: dict[str, RunSpec], progress: Callable) -> None:
    for name, folder, text in queue.get_nowait_batch(queue.qsize()):
        progress(specs[name], folder, text)


def run_on_ray(
    work: list[tuple[RunSpec, list[str]]],
    directory: Path,
    options: RayOptions,
    report: Callable[[RunSpec, int, float], None],
    progress: Callable[[RunSpec, str, str], None] = _ignore,
) -> None:
    """Submit every (spec, run folders) pair as a task, unpack each result as it arrives and call
    report(spec, exit code, seconds) for it; meanwhile progress(spec, run folder, progress.json text) as
    the runs train. A local Ray is started (and stopped) when no address is given."""
    try:
        import ray
    except ImportError:
        raise PeftbenchError("--executor ray needs Ray; run: pip install 'peftbench[ray]'") from None

    started = not ray.is_initialized()
    if started:
        ray.init(address=options.address, log_to_driver=False, include_dashboard=False)
    try:
        from ray.util.queue import Queue

        remote = ray.remote(num_cpus=options.cpus, num_gpus=options.gpus, max_retries=0)(_run_remotely)
        queue = Queue(actor_options={"num_cpus": 0})
        begun = time.perf_counter()
        futures = {
            remote.remote(spec_to_json(spec), folders, directory.name, queue): spec for spec, folders in work
        }
        specs = {spec.name: spec for spec, _ in work}
        while futures:
            done, _ = ray.wait(list(futures), num_returns=1, timeout=RELAY_SECONDS)
            _drain(queue, specs, progress)
            if not done:
                continue
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
