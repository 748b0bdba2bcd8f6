"""Helpers of benchmarks/gpu_check.sh: is there a CUDA device, and the summary of what the check ran.

    python benchmarks/gpu_check.py cuda               one line; exit 0 with a GPU, 2 without
    python benchmarks/gpu_check.py peak OUT           the GPU's bf16 matrix-product peak, measured
    python benchmarks/gpu_check.py summary OUT        OUT/gpu_check.json and OUT/gpu_check.md

The summary sets each run's CUDA peak memory (result.json, training) against `peftbench inspect`'s
estimate for the same model, method, batch, length and precision, and reports each run's bf16 training
throughput and model-FLOPs utilisation against the measured peak; the Ray grid's runs and time split last.
"""

import json
import sys
from pathlib import Path

MIB = 2**20


def cuda() -> int:
    import torch

    if not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device here (torch {torch.__version__}); run it on a machine with a GPU")
        return 2
    print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    return 0


def peak(out: Path) -> int:
    import torch

    from peftbench.measure.hardware import matmul_peak

    found = matmul_peak(torch.device("cuda"), "bf16")
    (out / "peak_bf16.json").write_text(json.dumps(found, indent=2))
    print(f"bf16 matrix-product peak: {found['peak_flops'] / 1e12:.1f} TFLOP/s ({found['method']})")
    return 0


def _results(folder: Path) -> list[dict]:
    found = []
    for path in sorted(folder.glob("*/result.json")):
        found.append(json.loads(path.read_text()))
    return found


def _estimates(path: Path) -> dict[str, int]:
    if not path.is_file():
        return {}
    payload = json.loads(path.read_text())
    return {m["method"]: m["memory"]["total"] for m in payload["methods"]}


def _row(label: str, result: dict, estimate: int | None) -> dict:
    efficiency = result.get("efficiency") or {}
    measured = efficiency.get("cuda_peak_allocated_bytes")
    utilisation = result.get("utilisation") or {}
    return {
        "run": label,
        "cuda_peak_allocated_mib": measured / MIB if measured else None,
        "inspect_estimate_mib": estimate / MIB if estimate else None,
        "measured_over_estimate": measured / estimate if measured and estimate else None,
        "train_tokens_per_second": efficiency.get("train_tokens_per_second"),
        "model_flops_utilisation": efficiency.get("model_flops_utilisation"),
        "peak_tflops": (utilisation.get("peak_flops") or 0) / 1e12 or None,
        "precision": (result.get("training") or {}).get("precision"),
        "device": (result.get("environment") or {}).get("device"),
    }


def _cell(value) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def summary(out: Path) -> int:
    rows = []
    dense = _estimates(out / "inspect-dense.json")
    for result in _results(out / "runs" / "gpu-check"):
        rows.append(_row(result["run"], result, dense.get(result["method"]["name"])))
    quantised = _estimates(out / "inspect-qlora.json")
    for result in _results(out / "runs" / "gpu-check-qlora"):
        rows.append(_row("qlora (4-bit base)", result, quantised.get(result["method"]["name"])))
    ray_runs = _results(out / "runs" / "gpu-check-ray")
    split = out / "runs" / "gpu-check-ray" / "time_split.json"
    payload = {
        "memory_and_throughput": rows,
        "peak": json.loads((out / "peak_bf16.json").read_text())
        if (out / "peak_bf16.json").is_file()
        else None,
        "ray_grid": {
            "complete_runs": len(ray_runs),
            "devices": sorted({(r.get("environment") or {}).get("device") or "?" for r in ray_runs}),
            "time_split": json.loads(split.read_text()) if split.is_file() else None,
        },
    }
    (out / "gpu_check.json").write_text(json.dumps(payload, indent=2))
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] if rows else []
    lines += ["| " + " | ".join(_cell(v) for v in row.values()) + " |" for row in rows]
    lines.append(f"\nRay grid: {len(ray_runs)} of 4 runs complete on {payload['ray_grid']['devices']}")
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if rows and len(ray_runs) == 4 else 1


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["cuda"]
    if command == "cuda":
        sys.exit(cuda())
    sys.exit({"peak": peak, "summary": summary}[command](Path(rest[0])))
