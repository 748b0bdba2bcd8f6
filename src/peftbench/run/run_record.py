"""The parts of result.json every run writes: provenance (model, data, environment), its config, and
the evaluation written last."""

import platform
import time
from importlib.metadata import version
from pathlib import Path

import torch

from peftbench import RESULT_SCHEMA_VERSION, __version__
from peftbench.config.config import ExperimentConfig, MethodConfig
from peftbench.grid.grid import cell_of
from peftbench.inputs.run_inputs import RunInputs
from peftbench.models import quantization
from peftbench.results import results
from peftbench.run import provenance
from peftbench.tasks import Evaluation, write_files


def environment() -> dict:
    packages = {name: version(name) for name in ("torch", "transformers", "peft", "datasets", "accelerate")}
    cpu = f"cpu ({platform.processor() or platform.machine()})"
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else cpu
    return {
        "device": device,
        "cuda": torch.cuda.is_available(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
        "peftbench": __version__,
        "peftbench_git": provenance.git_state(),
        "hardware": provenance.hardware(),
    }


def base_result(inputs: RunInputs, run: str, kind: str, started_at: str) -> dict:
    return {
        "schema_version": RESULT_SCHEMA_VERSION,
        "status": "complete",
        "experiment": inputs.config.name,
        "run": run + inputs.suffix,
        "cell": cell_of(run + inputs.suffix),
        "config_hash": inputs.config_hash,
        "kind": kind,
        "task": inputs.config.task,
        "seed": inputs.config.seed,
        "model": {
            "name": inputs.config.model.name,
            "path": inputs.source.path,
            "gguf_file": inputs.source.gguf_file,
            "attention": getattr(inputs.base_model.config, "_attn_implementation", None),
            "quantization": quantization.used(inputs.config.model.quantization),
            "fingerprint": provenance.model_fingerprint(inputs.config.model),
        },
        "data": {
            "dataset": inputs.config.data.dataset,
            **inputs.data.metadata,
            "sizes": {k: len(v) for k, v in inputs.data.splits.items()},
            "evaluated_on": "test",
            "fingerprint": provenance.data_fingerprint(inputs.config.data),
        },
        "environment": environment(),
        "started_at": started_at,
    }


def finish(run_dir: Path, result: dict, evaluation: Evaluation) -> None:
    """Write the evaluation's files, then result.json last (atomically)."""
    write_files(run_dir, evaluation)
    result.update({"metrics": {"test": evaluation.metrics}, **evaluation.result_fields})
    results.write_json(run_dir / results.RESULT_FILE, {**result, "finished_at": results.now()})


def run_config(config: ExperimentConfig, entry: MethodConfig) -> dict:
    """One run's whole config: the experiment without its method list, this method, its training."""
    return results.redact(
        {
            **config.model_dump(mode="json", exclude={"methods"}),
            "method": entry.model_dump(mode="json"),
            "training": config.method_training(entry).model_dump(mode="json"),
        }
    )


def run_seconds(started: float, evaluation: float) -> dict:
    """The run's wall seconds so far (from `started`, a perf_counter reading) and its test evaluation's."""
    return {
        "run": time.perf_counter() - started,
        "evaluation": evaluation,
        "how": "perf_counter; run: from the run's start to just before result.json is written; evaluation: "
        "the test split's metrics (generation included), forgetting and the alpha curve excluded",
    }
