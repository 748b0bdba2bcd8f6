"""benchmarks/gpu_check.sh without a GPU: its dry run lists the steps; its summary reads runs as written."""

import importlib.util
import json
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _helper():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_lists_every_step_and_runs_nothing(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"],
        capture_output=True,
        text=True,
        env={"OUT": str(out), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    steps = [line for line in done.stdout.splitlines() if "(limit " in line]
    assert len(steps) == 7
    assert sum(int(line.split("(limit ")[1].split(" s)")[0]) for line in steps) <= 8 * 60
    assert "--executor ray --gpus-per-run 1" in done.stdout and "quantization: {bits: 4}" in done.stdout
    assert not out.exists()


def test_without_cuda_it_says_so_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _helper().cuda() == 2
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


def _result(folder: Path, run: str, method: str, peak: int) -> None:
    folder.mkdir(parents=True)
    efficiency = {
        "cuda_peak_allocated_bytes": peak,
        "train_tokens_per_second": 1e5,
        "model_flops_utilisation": 0.2,
    }
    result = {
        "run": run,
        "method": {"name": method},
        "efficiency": efficiency,
        "training": {"precision": "bf16"},
    }
    (folder / "result.json").write_text(json.dumps(result))


def test_summary_sets_measured_peaks_against_the_estimates(tmp_path):
    for name, methods in (("dense", ["full", "lora"]), ("qlora", ["lora"])):
        records = [{"method": m, "memory": {"total": 100 * 2**20}} for m in methods]
        (tmp_path / f"inspect-{name}.json").write_text(json.dumps({"methods": records}))
    _result(tmp_path / "runs" / "gpu-check" / "full", "full", "full", 150 * 2**20)
    _result(tmp_path / "runs" / "gpu-check" / "lora", "lora", "lora", 50 * 2**20)
    _result(tmp_path / "runs" / "gpu-check-qlora" / "lora", "lora", "lora", 80 * 2**20)
    for seed in range(4):
        _result(tmp_path / "runs" / "gpu-check-ray" / f"lora@{seed}", "lora", "lora", 1)
    assert _helper().summary(tmp_path) == 0
    rows = json.loads((tmp_path / "gpu_check.json").read_text())["memory_and_throughput"]
    assert [(r["run"], r["measured_over_estimate"]) for r in rows] == [
        ("full", 1.5),
        ("lora", 0.5),
        ("qlora (4-bit base)", 0.8),
    ]
