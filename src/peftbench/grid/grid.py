"""Expand an experiment into runs: method entries x sweep values x seeds x data fractions.

A run is keyed by a hash of its resolved config, so a repeated experiment skips what it already did."""

import hashlib
import json
from dataclasses import dataclass, replace
from itertools import product
from typing import Literal

from peftbench import RESULT_SCHEMA_VERSION
from peftbench.config.config import ExperimentConfig, MethodConfig
from peftbench.config.schema import check_name
from peftbench.errors import PeftbenchError
from peftbench.results.results import redact_text

SEARCH_FOLDER = "lr-search"  # learning-rate search runs, apart from the runs they choose for
SHORT_KEYS = {
    "learning_rate": "lr",
    "head_learning_rate": "hlr",
    "lora_alpha": "alpha",
    "alpha": "alpha",
    "target_modules": "tm",
}


@dataclass(frozen=True)
class RunSpec:
    """One unit of work for a worker: one method run, or the baselines of one seed and data fraction."""

    kind: Literal["method", "baselines", "search"]
    suffix: str  # "@seed1", "@frac0.5@seed1" or "" for a single seed and fraction
    config: ExperimentConfig  # methods holds exactly one entry
    # search runs of a halving search: stop at checkpoints.pause_step(max_steps, warmup, num, den) with a
    # checkpoint, to go on from there later (the run's schedule stays the full run's); not in the config hash
    pause_at: tuple[int, int] | None = None

    @property
    def entry(self) -> MethodConfig:
        return self.config.methods[0]

    @property
    def name(self) -> str:
        return ("baselines" if self.kind == "baselines" else self.entry.run_name) + self.suffix

    def folders(self, baselines: list[str]) -> list[str]:
        """The run folders this spec writes (baselines: one per baseline)."""
        if self.kind == "baselines":
            return [f"{name}{self.suffix}" for name in baselines]
        if self.kind == "search":
            return [f"{SEARCH_FOLDER}/{self.name}"]
        return [self.name]

    def writing_to(self, output_dir: str) -> "RunSpec":
        """The same spec writing under another folder (same config hash: output_dir is not part of it)."""
        return replace(self, config=self.config.model_copy(update={"output_dir": output_dir}))

    @property
    def config_hash(self) -> str:
        """Of the config with secret environment values redacted, as the worker reads it from its spec
        file: the grid process and the worker give a run the same hash."""
        unset = {"retention"} if self.config.retention is None else set()  # hashes from before it existed
        identity = self.config.model_dump(mode="json", exclude={"output_dir", *unset})
        identity["kind"], identity["schema"] = self.kind, RESULT_SCHEMA_VERSION
        text = redact_text(json.dumps(identity, sort_keys=True))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _label(value) -> str:
    if isinstance(value, list | tuple):
        return "+".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def expand_methods(methods: list[MethodConfig]) -> list[MethodConfig]:
    """One entry per sweep combination, named after the values it sets (e.g. lora-r8-lr0.0003)."""
    expanded = []
    for entry in methods:
        if not entry.sweep:
            expanded.append(entry)
            continue
        keys = list(entry.sweep)
        for values in product(*(entry.sweep[k] for k in keys)):
            data = entry.model_dump(exclude={"sweep"}) | dict(zip(keys, values, strict=True))
            suffix = "-".join(f"{SHORT_KEYS.get(k, k)}{_label(v)}" for k, v in zip(keys, values, strict=True))
            name = check_name(f"{entry.run_name}-{suffix}", "run name from sweep values")
            expanded.append(MethodConfig(**{**data, "name": name}))
    return expanded


def expand(config: ExperimentConfig) -> list[RunSpec]:
    methods = expand_methods(config.methods)
    names = [m.run_name for m in methods]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise PeftbenchError(
            f"run names repeat after expanding sweeps: {repeated}; give entries distinct names"
        )
    specs = []
    for fraction in config.data_fractions or [config.data.data_fraction]:
        for seed in config.seeds or [config.seed]:
            suffix = (f"@frac{fraction:g}" if config.data_fractions else "") + (
                f"@seed{seed}" if config.seeds else ""
            )
            base = config.model_copy(
                update={
                    "seed": seed,
                    "seeds": None,
                    "data_fractions": None,
                    "data": config.data.model_copy(update={"data_fraction": fraction}),
                }
            )
            if config.baselines:
                specs.append(RunSpec("baselines", suffix, base.model_copy(update={"methods": methods[:1]})))
            for entry in methods:
                single = base.model_copy(update={"methods": [entry], "baselines": False})
                specs.append(RunSpec("method", suffix, single))
    return specs


def cell_of(folder: str) -> str:
    """The configuration a run folder belongs to, without its seed: what the report averages over."""
    return folder.split("@seed")[0]
