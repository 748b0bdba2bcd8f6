"""Workers forked from a warm server: a run of its own in a process of its own, with the caller's
environment and folder, its output in its log, and its memory measured from its own start."""

import json

import pytest

from peftbench.execution import warm_worker
from peftbench.grid.grid import expand
from peftbench.inputs.experiment import build_config
from peftbench.results.run_folder import read_run
from peftbench.run.interrupts import SignalGuard
from peftbench.run.worker import CRASH_ENV, spec_to_json


def _spec_file(experiment, tmp_path):
    experiment["methods"] = [{"method": "lora", "r": 2, "target_modules": ["query"]}]
    spec = next(s for s in expand(build_config(experiment)) if s.kind == "method")
    path = tmp_path / "spec.json"
    path.write_text(spec_to_json(spec))
    return spec, path


@pytest.mark.slow
def test_a_forked_worker_runs_the_spec_in_a_process_of_its_own(experiment, tmp_path, monkeypatch):
    spec, spec_file = _spec_file(experiment, tmp_path)
    log = tmp_path / "logs" / "train.log"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PEFTBENCH_TEST_MARKER", "seen")
    with SignalGuard() as guard:
        code = warm_worker.run(spec_file, log, guard)
    folder = tmp_path / "runs" / "tiny" / spec.name
    assert code == 0, log.read_text()
    assert read_run(folder).status == "complete"
    memory = json.loads((folder / "result.json").read_text())["efficiency"]
    assert memory["peak_rss_above_start_bytes"] > 0
    above_start = memory["peak_rss_above_start_bytes"]
    assert memory["process_peak_rss_bytes"] == memory["baseline_rss_bytes"] + above_start
    assert log.stat().st_size > 0  # the run's output went to its log, not to this process's streams


@pytest.mark.slow
def test_a_forked_worker_sees_the_environment_of_the_call_not_of_the_servers_start(
    experiment, tmp_path, monkeypatch
):
    warm_worker.start_server()
    spec, spec_file = _spec_file(experiment, tmp_path)
    monkeypatch.setenv(CRASH_ENV, spec.name)  # set after the server started
    with SignalGuard() as guard:
        assert warm_worker.run(spec_file, None, guard) == 70


def test_only_a_single_local_process_is_forked(experiment, monkeypatch):
    config = build_config(experiment)
    assert warm_worker.usable(config)
    monkeypatch.setenv(warm_worker.FRESH_ENV, "1")
    assert not warm_worker.usable(config)
    monkeypatch.delenv(warm_worker.FRESH_ENV)
    experiment["launcher"] = {"kind": "torchrun", "num_processes": 2}
    assert not warm_worker.usable(build_config(experiment))
