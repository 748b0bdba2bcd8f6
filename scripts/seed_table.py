"""The table of docs/seeds.md: per example config (one per seed) and method, what peftbench computes
offline: parameters, artifact size, the training-memory estimate at the config's batch and length, and the
largest batch whose estimate fits a 24 GiB and an 80 GiB GPU. Models are built from their config alone on
the meta device (tests/data/offline_hub.yaml: no weights, no hub).

    PYTHONPATH=src python scripts/seed_table.py > table.md
"""

import copy
import re
import sys
import tempfile
from pathlib import Path

import yaml
from transformers import AutoConfig

from peftbench.config.config import MethodConfig, QuantizationConfig
from peftbench.efficiency.estimate import inspect_method, meta_model
from peftbench.efficiency.memory_options import MemoryOptions
from peftbench.efficiency.probe import probe_method
from peftbench.grid.grid import expand_methods
from peftbench.inputs.experiment import load_config
from peftbench.methods import METHODS
from peftbench.models import models
from peftbench.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
HUB = yaml.safe_load((ROOT / "tests" / "data" / "offline_hub.yaml").read_text())
GPUS_GIB = (24, 80)
LIMIT = 4096
HEADER = (
    "| config | method | trainable | trainable % | saved as | saved MiB | training GiB | weights / grads / "
    "Adam / activations GiB | with checkpointing | 4-bit base | batch on 24 GB | batch on 80 GB |"
)


def offline_sources(folder: Path) -> dict[str, models.ModelSource]:
    """A folder with only config.json per hub model the examples name."""
    found = {}
    for name, spec in HUB["models"].items():
        spec = dict(spec)
        target = folder / re.sub(r"\W", "_", name)
        AutoConfig.for_model(spec.pop("model_type"), **spec).save_pretrained(target)
        found[name] = models.resolve(str(target))
    return found


def offline(entry: MethodConfig) -> MethodConfig:
    """A soft prompt initialised from text needs the tokenizer (the hub); its size does not depend on it."""
    if str(entry.options.get("prompt_tuning_init", "")).upper() != "TEXT":
        return entry
    return MethodConfig(**{**entry.model_dump(), "prompt_tuning_init": "RANDOM"})


def variant_totals(base, task, entry: MethodConfig, path: str, shape: tuple) -> tuple[str, str]:
    """Training memory (GiB) with gradient checkpointing, and with a 4-bit NF4 base (adapters only:
    a method that trains the base's own weights cannot train a quantised base)."""
    checkpointed = inspect_method(base, task, entry, path, *shape, MemoryOptions(gradient_checkpointing=True))
    if METHODS.get(entry.method).saved_as != "adapter":
        return _gib(checkpointed.memory.total), "n/a (trains base weights)"
    nf4 = MemoryOptions(quantization=QuantizationConfig(bits=4))
    return _gib(checkpointed.memory.total), _gib(
        inspect_method(base, task, entry, path, *shape, nf4).memory.total
    )


def _gib(value: int) -> str:
    return f"{value / 2**30:.2f}"


def rows_for(path: Path, sources: dict[str, models.ModelSource]) -> list[str]:
    config = load_config(path)
    task = TASKS.get(config.task)
    source = sources[config.model.name]
    base = meta_model(source, task, HUB["datasets"].get(config.data.dataset, 2))
    batch, length, precision = config.training.batch_size, config.data.max_length, config.training.precision
    rows = []
    for entry in map(offline, expand_methods(config.methods)):
        found = inspect_method(base, task, entry, source.path, batch, length, precision)
        memory = found.memory
        parts = " / ".join(
            _gib(v) for v in (memory.weights, memory.gradients, memory.optimizer, memory.activations)
        )
        largest = [
            probe_method(
                lambda: copy.deepcopy(base), task, entry, source.path, length, LIMIT, gib * 2**30, precision
            ).batch_size
            for gib in GPUS_GIB
        ]
        variants = variant_totals(base, task, entry, source.path, (batch, length, precision))
        rows.append(
            f"| {path.stem} (batch {batch} x {length}, {precision}) | {found.method} | "
            f"{found.trainable_params:,} | {found.trainable_percent:.3g} | {found.artifact} | "
            f"{found.artifact_bytes / 2**20:,.2f} | {_gib(memory.total)} | {parts} | "
            f"{' | '.join(variants)} | {' | '.join(map(str, largest))} |"
        )
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        sources = offline_sources(Path(folder))
        lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
        for path in sorted((ROOT / "configs" / "examples").glob("*.yaml")):
            lines += rows_for(path, sources)
            print(f"done: {path.stem}", file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
