"""The tables inspect, probe-batch and bench-inference print (peftbench.results.tables fits them to the
terminal), and the same figures as records for --json and --csv."""

from typing import TYPE_CHECKING

from peftbench.efficiency.memory_options import MemoryOptions
from peftbench.results.tables import Column, FitTable, bytes_short, count_short, mib

if TYPE_CHECKING:
    from peftbench.efficiency.estimate import Inspection
    from peftbench.efficiency.probe import Probe
    from peftbench.efficiency.probe_setup import ProbeSetup


def _settings(memory: MemoryOptions) -> str:
    return " · ".join(
        [
            f"optim {memory.optim}",
            *(["gradient checkpointing"] if memory.gradient_checkpointing else []),
            *([f"{memory.quantization.bits}-bit base"] if memory.quantization else []),
        ]
    )


def _bytes_column(header: str, values: list[int | None]) -> Column:
    """Bytes as MiB in full; in shorter units each cell carries its own unit (`4.6 GiB`)."""
    return Column(f"{header} MiB", [mib(v) for v in values], False, header, [bytes_short(v) for v in values])


def _count_column(header: str, values: list[int]) -> Column:
    return Column(header, [f"{v:,}" for v in values], short_cells=[count_short(v) for v in values])


def inspection_table(setup: "ProbeSetup", found: list["Inspection"]) -> FitTable:
    title = f"{setup.model} · {setup.task} · batch {setup.batch_size} x {setup.seq_len} tokens"
    parts = {
        "weights": [r.memory.weights for r in found],
        "gradients": [r.memory.gradients for r in found],
        "optimizer": [r.memory.optimizer for r in found],
        "activations": [r.memory.activations for r in found],
        "training total": [r.memory.total for r in found],
    }
    columns = [
        Column("method", [r.label for r in found], name=True),
        _count_column("total", [r.total_params for r in found]),
        _count_column("trainable", [r.trainable_params for r in found]),
        Column("%", [f"{r.trainable_percent:.3g}" for r in found]),
        Column("saved as", [r.artifact for r in found], name=True),
        _bytes_column("artifact", [r.artifact_bytes for r in found]),
        *(_bytes_column(header, values) for header, values in parts.items()),
    ]
    return FitTable(columns, title=f"{title} · {_settings(setup.memory)}")


def inspection_payload(setup: "ProbeSetup", precision: str, found: list["Inspection"]) -> dict:
    """inspect's figures, whole: the settings, then one record per method (bytes, not MiB)."""
    from peftbench.efficiency.estimate import METHOD

    payload = {"model": setup.model, "task": setup.task, "batch_size": setup.batch_size}
    payload |= {"seq_len": setup.seq_len, "precision": precision, "method": METHOD}
    return payload | {"memory_options": setup.memory.as_dict(), "methods": [r.as_dict() for r in found]}


def probe_table(setup: "ProbeSetup", probes: list["Probe"]) -> FitTable:
    title = f"largest training batch · {setup.model} · {setup.seq_len} tokens per example"
    first = probes[0].batch_size or None
    columns = [
        Column("method", [p.method for p in probes], name=True),
        Column("largest batch", [f"{p.batch_size:,}" for p in probes]),
        _bytes_column("memory", [p.memory_bytes for p in probes]),
        Column("x vs first", [f"{p.batch_size / first:.2g}x" if first else "–" for p in probes]),
    ]
    return FitTable(columns, title=f"{title} · {_settings(setup.memory)}")


def probe_payload(setup: "ProbeSetup", precision: str, limit: int, probes: list["Probe"]) -> dict:
    from dataclasses import asdict

    payload = {"model": setup.model, "task": setup.task, "seq_len": setup.seq_len, "precision": precision}
    payload |= {"limit": limit, "memory_options": setup.memory.as_dict()}
    return payload | {"methods": [asdict(p) for p in probes]}


def inference_table(report: dict) -> FitTable:
    """bench-inference's variants: latency, throughput and memory per variant."""
    variants = report["variants"]
    rate_key = next(k for k in variants[0] if k.endswith("_per_second"))
    iqrs = [row["batch_latency_ms_iqr"] for row in variants]
    columns = [
        Column("variant", [row["variant"] for row in variants], name=True),
        Column("batch latency ms (median)", [f"{row['batch_latency_ms_median']:,.1f}" for row in variants]),
        Column("IQR ms", [f"{iqr[0]:,.1f}–{iqr[1]:,.1f}" if iqr else "–" for iqr in iqrs]),
        Column(rate_key.replace("_", " "), [f"{row[rate_key]:,.1f}" for row in variants]),
        _bytes_column("weights", [row["weights_bytes"] for row in variants]),
        _bytes_column("peak memory", [row["peak_memory_bytes"] for row in variants]),
    ]
    title = f"inference · {report['run']} · {report['device']} · {report['precision']}"
    return FitTable(columns, title=title)
